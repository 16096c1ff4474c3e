package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events"
)

// Errors an operator can act on: an unknown connector lists the
// configured ones and suggests the closest name, wherever a connector is
// named (a sync, a filter); cancelling a finished job says what became
// of it. The bodies are exactly what a client reads.
func TestOperatorMessages(t *testing.T) {
	s, m := newTestServer(t)
	for _, st := range []string{events.StatePending, events.StateStarted, events.StateCompleted} {
		m.apply(events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, testTime(),
			events.SyncState{JobID: "j1", Connector: "demo", State: st}))
	}
	tests := []struct {
		method, target string
		code           int
		body           string
	}{
		{http.MethodPost, "/v1/connectors/dmeo/sync", http.StatusNotFound,
			`{"error":"unknown connector \"dmeo\"; did you mean \"demo\"? (configured in plugins.hcl: demo)"}`},
		{http.MethodPost, "/v1/connectors/contoso/sync", http.StatusNotFound,
			`{"error":"unknown connector \"contoso\" (configured in plugins.hcl: demo)"}`},
		{http.MethodPost, "/v1/connectors/dem/test", http.StatusNotFound,
			`{"error":"unknown connector \"dem\"; did you mean \"demo\"? (configured in plugins.hcl: demo)"}`},
		{http.MethodGet, "/v1/recipients?connector=nosuch", http.StatusNotFound,
			`{"error":"unknown connector \"nosuch\" (configured in plugins.hcl: demo)"}`},
		{http.MethodGet, "/v1/recipients/export?format=csv&connector=Demo", http.StatusNotFound,
			`{"error":"unknown connector \"Demo\"; did you mean \"demo\"? (configured in plugins.hcl: demo)"}`},
		{http.MethodGet, "/v1/groups?connector=nosuch", http.StatusNotFound,
			`{"error":"unknown connector \"nosuch\" (configured in plugins.hcl: demo)"}`},
		{http.MethodGet, "/v1/jobs?connector=nosuch", http.StatusNotFound,
			`{"error":"unknown connector \"nosuch\" (configured in plugins.hcl: demo)"}`},
		{http.MethodPost, "/v1/jobs/j1/cancel", http.StatusConflict,
			`{"error":"job j1 is already COMPLETED: there is nothing to cancel"}`},
		{http.MethodPost, "/v1/jobs/j9/cancel", http.StatusNotFound,
			`{"error":"no such job \"j9\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.code || compact(t, rec.Body.Bytes()) != tt.body {
				t.Errorf("%d %s\nwant %d %s", rec.Code, compact(t, rec.Body.Bytes()), tt.code, tt.body)
			}
		})
	}
}
