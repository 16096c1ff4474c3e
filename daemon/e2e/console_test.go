package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/internal/headless"
	"github.com/dirsync/dirsync/internal/testenv"
)

// ScreenshotsEnv names the folder the console test saves its screenshots
// in; `make console-screenshots` sets it to docs/console, whose pictures
// README.md shows. Without it they go to the test's temporary folder.
const screenshotsEnv = "DIRSYNC_CONSOLE_SCREENSHOTS"

// browserSession is one Chromium tab on the console with the checks every
// step makes: the page never shows the API token, and a screenshot of it
// is saved.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	token string
	n     int
}

// do runs steps with a deadline for a loaded machine.
func (b *browserSession) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, b.html())
	}
}

// text returns the text of the first element sel matches.
func (b *browserSession) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v\npage:\n%s", sel, err, b.html())
	}
	return strings.TrimSpace(s)
}

// eval returns a script's value, as JSON decodes it.
func (b *browserSession) eval(expr string) any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// html is the page's markup as the browser holds it now.
func (b *browserSession) html() string {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// step checks the page for the token and saves a screenshot named for
// the step.
func (b *browserSession) step(name string) {
	b.t.Helper()
	if strings.Contains(b.html(), b.token) {
		b.t.Errorf("%s: the page holds the API token", name)
	}
	if c, _ := b.eval("document.cookie").(string); strings.Contains(c, "dirsync_session") || strings.Contains(c, b.token) {
		b.t.Errorf("%s: script can read the session cookie (%q): it must be HttpOnly", name, c)
	}
	// Every field has a label a screen reader announces, and the page
	// says its language.
	if unlabelled := b.eval(`Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))
		.filter(e => e.labels.length === 0 && !e.getAttribute("aria-label")).map(e => e.name || e.id).join(", ")`); unlabelled != "" {
		b.t.Errorf("%s: fields without a label: %v", name, unlabelled)
	}
	if lang := b.eval(`document.documentElement.lang`); lang != "en" {
		b.t.Errorf("%s: <html lang=%q>", name, lang)
	}
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	// What a laptop screen shows (headless.Width x Height), as PNG.
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot of %s: %v", name, err)
	}
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitText waits until the text of sel satisfies ok, without reloading
// the page, and returns it.
func (b *browserSession) waitText(sel string, timeout time.Duration, ok func(string) error) string {
	b.t.Helper()
	var last string
	testenv.Eventually(b.t, timeout, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(
			`(() => { const e = document.querySelector(%q); return e ? e.textContent.trim() : "" })()`, sel)))
		if err != nil {
			return err
		}
		last = s
		return ok(s)
	})
	return last
}

// TestConsoleInABrowser is the admin's round in the web console, in
// Debian's Chromium against a real dirsyncd and graphsim: log in, see the
// demo connector, test a connection with a wrong secret and read the
// fix, preview a sync (dry run) and read its change list, run it and
// watch its state reach COMPLETED without reloading, open a recipient's
// history and explanation, log out. Every page is checked for the API
// token and photographed.
func TestConsoleInABrowser(t *testing.T) {
	if _, err := headless.Find(); err != nil {
		t.Skip(err.Error())
	}
	addr := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
api {
  listen     = %q
  token_file = "./api-token"
}`, addr))
	write(t, filepath.Join(f.dir, "api-token"), apiToken+"\n", 0o600)
	f.start()

	shots := os.Getenv(screenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browserSession{t: t, ctx: headless.Browser(t), base: "http://" + addr, shots: shots, token: apiToken}

	// Log in: the console sends a visitor without a session to its login page.
	b.do("opening the console", chromedp.Navigate(b.base+"/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.step("login")
	b.do("logging in",
		chromedp.SendKeys(chromedp.CSS("#token"), apiToken),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-connector="demo"]`)))
	if got := b.text(`[data-connector="demo"] a`); got != "demo" {
		t.Errorf("the demo connector's row links %q", got)
	}
	b.step("connectors")

	// A wrong secret: the check fails and names the fix.
	b.do("testing the wrong connector",
		chromedp.Navigate(b.base+"/console/connectors/wrong"),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Test connection"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-check]`)))
	checks := b.text(`#checks`)
	if !strings.Contains(checks, "FAIL") || !strings.Contains(checks, "secret") || !strings.Contains(checks, "Value") {
		t.Errorf("the connection test of a wrong secret does not fail naming the secret's Value:\n%s", checks)
	}
	b.step("test-connection")

	// A dry run on the demo connector: the change list of a first sync
	// creates every expected recipient and nothing else.
	want := expectedRecipients(f.sim)
	b.do("previewing a sync",
		chromedp.Navigate(b.base+"/console/connectors/demo"),
		chromedp.SendKeys(chromedp.CSS(`input[name="tags"]`), "browser"),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Preview (dry run)"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#changes`)))
	created := b.waitText(`[data-count="created"]`, 2*time.Minute, func(s string) error {
		if s != strconv.Itoa(len(want)) {
			return fmt.Errorf("the dry run's created count is %q; want %d", s, len(want))
		}
		return nil
	})
	if rows := b.eval(`document.querySelectorAll("#changes tbody tr").length`); rows != float64(len(want)) {
		t.Errorf("the dry run lists %v changes; want %d (created %s)", rows, len(want), created)
	}
	if n := len(recipientsByID(t, f)); n != 0 {
		t.Errorf("the dry run stored %d recipients", n)
	}
	b.step("dry-run")

	// The real sync, from the preview. Graph is down while the page
	// first shows the job, so the state it shows first is one a running
	// job has; once Graph is back, the same page reaches COMPLETED by
	// itself: a mark set in the page survives, so it was not reloaded.
	f.sim.SetFaults(graphsim.Faults{Down: true, RetryAfter: "1"})
	b.do("running the sync", chromedp.Click(chromedp.Search(`//button[normalize-space()="Run this sync"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-field="state"]`)))
	first := b.waitText(`[data-field="state"]`, time.Minute, func(s string) error {
		switch s {
		case "PENDING", "STARTED", "RETRIEVING":
			return nil
		}
		return fmt.Errorf("the job page shows state %q; want a running job's", s)
	})
	b.eval(`window.dirsyncMark = "not reloaded"`)
	b.step("sync-running")
	f.sim.SetFaults(graphsim.Faults{})
	b.waitText(`[data-field="state"]`, 3*time.Minute, func(s string) error {
		if s != "COMPLETED" {
			return fmt.Errorf("state %q (first %q)", s, first)
		}
		return nil
	})
	if mark := b.eval(`window.dirsyncMark || ""`); mark != "not reloaded" {
		t.Errorf("the job page was reloaded to show COMPLETED (mark %q)", mark)
	}
	b.step("sync-completed")
	// Each change says why: the explanation of the user it is about.
	jobURL, _ := b.eval(`location.href`).(string)
	why, _ := b.eval(`document.querySelector("#changes a.why").href`).(string)
	b.do("explaining a change", chromedp.Navigate(why), chromedp.WaitVisible(chromedp.CSS(`#explain table`)))
	if ex := b.text(`#explain`); !strings.Contains(ex, "included") {
		t.Errorf("the explanation of a user the sync created does not say included:\n%s", ex)
	}
	b.do("back to the job", chromedp.Navigate(jobURL), chromedp.WaitVisible(chromedp.CSS(`#changes`)))
	if got := len(recipientsByID(t, f)); got != len(want) {
		t.Errorf("%d recipients after the sync; want %d", got, len(want))
	}

	// A recipient's history and explanation.
	b.do("listing recipients",
		chromedp.Navigate(b.base+"/console/recipients"),
		chromedp.WaitVisible(chromedp.CSS(`#recipients tbody tr a`)))
	b.step("recipients")
	b.do("opening a recipient",
		chromedp.Click(chromedp.CSS(`#recipients tbody tr a`)),
		chromedp.WaitVisible(chromedp.CSS(`#history`)),
		chromedp.WaitVisible(chromedp.CSS(`#explain`)))
	if h := b.text(`#history`); !strings.Contains(h, "created") {
		t.Errorf("the recipient's history does not show its creation:\n%s", h)
	}
	b.step("recipient")

	// Log out: the session ends, and the console asks for the token again.
	b.do("logging out",
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Log out"]`)),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.Navigate(b.base+"/console/recipients"),
		chromedp.WaitVisible(chromedp.CSS("#token")))
	b.step("logged-out")
	assertNoSecret(t, "dirsyncd log", f.log.String())
	if strings.Contains(f.log.String(), apiToken) {
		t.Error("the daemon logged the API token")
	}
}
