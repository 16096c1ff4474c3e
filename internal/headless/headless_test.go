package headless_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dirsync/dirsync/internal/headless"
)

// TestBrowserRendersALoopbackPage proves the kit: Chromium starts with
// the flags of this machine kind and runs a page's script.
func TestBrowserRendersALoopbackPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><title>t</title><p id="out">static</p><script>document.getElementById("out").textContent = "scripted"</script>`))
	}))
	defer srv.Close()
	ctx := headless.Browser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#out")))
	if err != nil {
		t.Fatal(err)
	}
	if got != "scripted" {
		t.Fatalf("#out = %q; want the text the page's script set", got)
	}
}
