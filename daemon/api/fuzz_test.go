package api

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// FuzzRequests feeds arbitrary query strings and bodies to the API's
// request parsing (recipients paging and filters, export, sync options):
// nothing may panic, and a bad request gets a 4xx, never a 5xx. A sync
// request that is accepted queues options within their bounds; one that
// is refused is told why without a raw character of the request.
func FuzzRequests(f *testing.F) {
	f.Add("limit=10&cursor=eyJlIjoiYSIsImkiOiJiIn0", `{"full":true,"tags":["q4"],"tagMode":"append"}`)
	f.Add("status=archived&tag=q4&group=Sales", `{"dryRun":true}`)
	f.Add("limit=-1&cursor=%%%", `{"tags":[""]}`)
	f.Add("format=xml", `{"unknown":1}`)
	f.Add("cursor="+strings.Repeat("A", 200), `[`)
	f.Add("", `{"tags":["q4","x\u202Ey"," q4 ","Q4"]}{"full":true}`)
	f.Add("cursor=", `{"tags":["\u200b","a\u2028b"],"tagMode":"append"}`)
	f.Fuzz(func(t *testing.T, query, body string) {
		m := &models{t: t, st: projections.NewState()}
		r := &runner{}
		s := NewServer(r, m, zaptest.NewLogger(t))
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
		if rec.Code >= 400 && strings.ContainsFunc(rec.Body.String(), func(r rune) bool { return !unicode.IsPrint(r) && r != '\n' }) {
			t.Fatalf("POST sync %q: the answer carries a raw character: %q", body, rec.Body)
		}
		if rec.Code == 202 && len(r.requested) == 1 && r.requested[0].Options != nil {
			o := r.requested[0].Options
			if again, err := o.Validated(); err != nil || !slices.Equal(again.Tags, o.Tags) || len(o.Tags) > events.MaxJobTags {
				t.Fatalf("POST sync %q queued options %+v that are not within their bounds: %v", body, o, err)
			}
		}
	})
}
