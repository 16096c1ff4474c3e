package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

var _ Retirer = (*jobs.Runner)(nil)

// retirer answers as jobs.Runner does for demo (configured), old (gone
// from plugins.hcl) and anything else (never known), and records what
// it was asked.
type retirer struct {
	got []string
}

func (r *retirer) RetireConnector(_ context.Context, name string, ret jobs.Retire, allow bool, by string) (string, error) {
	switch {
	case name == "demo":
		return "", fmt.Errorf("%w: connector demo: remove its block from plugins.hcl", jobs.ErrConfigured)
	case name != "old":
		return "", fmt.Errorf("%w %q", jobs.ErrUnknownConnector, name)
	case ret.OnRemoved == "keep":
		return "", fmt.Errorf("%w: on_removed %q", jobs.ErrInvalidRetire, ret.OnRemoved)
	}
	r.got = append(r.got, fmt.Sprintf("%s %s %v %s", name, ret.OnRemoved, allow, by))
	return "job-retire", nil
}

func TestRetireRoute(t *testing.T) {
	m := &models{t: t, st: projections.NewState()}
	m.apply(events.New(events.TypeSyncState, events.SyncSubject("old", "job-retire"), "old", "job-retire", 0, testTime(),
		events.SyncState{JobID: "job-retire", Connector: "old", State: events.StatePending, RequestedBy: "api"}))
	rt := &retirer{}
	s := NewServer(&runner{}, m, zaptest.NewLogger(t)).WithRetire(rt)
	tests := []struct {
		name, path, body string
		code             int
		want             string // in the body
		asked            string // what the runner was asked, "" for nothing
	}{
		{"archive by default", "/v1/connectors/old/retire", "", http.StatusAccepted, `"id": "job-retire"`, "old  false api"},
		{"delete with confirmation", "/v1/connectors/old/retire", `{"onRemoved":"delete","allowMassRemoval":true}`, http.StatusAccepted, `"connector": "old"`, "old delete true api"},
		{"keep refused", "/v1/connectors/old/retire", `{"onRemoved":"keep"}`, http.StatusBadRequest, "on_removed", ""},
		{"unknown field", "/v1/connectors/old/retire", `{"force":true}`, http.StatusBadRequest, "invalid retire request body", ""},
		{"still configured", "/v1/connectors/demo/retire", "", http.StatusConflict, "remove its block from plugins.hcl", ""},
		{"never known", "/v1/connectors/nope/retire", "", http.StatusNotFound, "retire takes a connector removed from plugins.hcl", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt.got = nil
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tt.code, tt.want)
			}
			if got := strings.Join(rt.got, ";"); got != tt.asked {
				t.Errorf("runner asked %q, want %q", got, tt.asked)
			}
		})
	}
	rec := httptest.NewRecorder()
	NewServer(&runner{}, m, zaptest.NewLogger(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/connectors/old/retire", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("without WithRetire: %d, want 501", rec.Code)
	}
}

// TestStatusShowsUnconfigured: a connector that only the read models know
// (removed from plugins.hcl) is in the status with configured false and
// its active recipients; a configured one says configured true.
func TestStatusShowsUnconfigured(t *testing.T) {
	s, m := newTestServer(t)
	for i := range 3 {
		m.putRecipient(events.Recipient{Connector: "old", ObjectID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@contoso.com", i)})
	}
	rec := get(t, s, "/v1/status")
	st := decode[Status](t, rec)
	got := map[string]ConnectorStatus{}
	for _, c := range st.Connectors {
		got[c.Connector] = c
	}
	if c, ok := got["old"]; !ok || c.Configured || c.Recipients != 3 {
		t.Errorf("old: %+v (present %v), want configured false with 3 recipients", c, ok)
	}
	if c, ok := got["demo"]; !ok || !c.Configured {
		t.Errorf("demo: %+v (present %v), want configured true", c, ok)
	}
	if !strings.Contains(rec.Body.String(), `"configured": false`) {
		t.Errorf("the JSON has no configured false: %s", rec.Body)
	}
}

// A sync of a connector gone from plugins.hcl says so and names the
// retire command, rather than calling it unknown.
func TestSyncOfUnconfiguredNamesRetire(t *testing.T) {
	s, m := newTestServer(t)
	m.putRecipient(events.Recipient{Connector: "old", ObjectID: "u1", Email: "u1@contoso.com"})
	for name, want := range map[string]string{
		"old":  `connector \"old\" is no longer in plugins.hcl (configured: demo); its active recipients stay until it is retired: dirsync connector retire old`,
		"nope": `unknown connector \"nope\"`,
	} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/connectors/"+name+"/sync", nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("sync %s: %d %s, want 404 with %s", name, rec.Code, rec.Body, want)
		}
	}
}
