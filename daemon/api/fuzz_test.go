package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequests feeds arbitrary query strings and bodies to the API's
// request parsing (recipients paging and filters, export, sync options):
// nothing may panic, and a bad request gets a 4xx, never a 5xx.
func FuzzRequests(f *testing.F) {
	f.Add("limit=10&cursor=eyJlIjoiYSIsImkiOiJiIn0", `{"full":true,"tags":["q4"],"tagMode":"append"}`)
	f.Add("status=archived&tag=q4&group=Sales", `{"dryRun":true}`)
	f.Add("limit=-1&cursor=%%%", `{"tags":[""]}`)
	f.Add("format=xml", `{"unknown":1}`)
	f.Add("cursor="+strings.Repeat("A", 200), `[`)
	f.Fuzz(func(t *testing.T, query, body string) {
		s, m := newTestServer(t)
		fill(m, 30)
		// The query goes in raw, as a client may send it.
		req := func(method, path string, body string) *http.Request {
			r := httptest.NewRequest(method, path, strings.NewReader(body))
			r.URL.RawQuery = query
			return r
		}
		for _, path := range []string{"/v1/recipients", "/v1/recipients/export", "/v1/groups", "/v1/jobs"} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req("GET", path, ""))
			if rec.Code >= 500 {
				t.Fatalf("GET %s?%s: %d %s", path, query, rec.Code, rec.Body)
			}
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req("POST", "/v1/connectors/demo/sync", body))
		if rec.Code >= 500 {
			t.Fatalf("POST sync %q: %d %s", body, rec.Code, rec.Body)
		}
	})
}
