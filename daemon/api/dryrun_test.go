package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// dryRunner is the test runner whose dry-run store answers as told.
type dryRunner struct {
	*runner
	changes []projections.Change
	kept    bool
	err     error
}

func (r *dryRunner) DryRunChanges(context.Context, string) ([]projections.Change, bool, error) {
	return r.changes, r.kept, r.err
}

// A final dry run's changes: the kept list, 410 once evicted (naming how
// many are kept), 503 when the store cannot be read (saying what to do).
func TestDryRunChangesAnswers(t *testing.T) {
	planned := []projections.Change{{JobID: "d1", Kind: "created", RecipientID: "demo.u1", ObjectID: "u1", Email: "a@contoso.com"}}
	tests := []struct {
		name  string
		r     *dryRunner
		code  int
		words []string
	}{
		{"kept", &dryRunner{changes: planned, kept: true}, http.StatusOK, []string{`"recipientId": "demo.u1"`}},
		{"kept empty", &dryRunner{changes: []projections.Change{}, kept: true}, http.StatusOK, []string{`"changes": []`}},
		{"evicted", &dryRunner{}, http.StatusGone, []string{"dry run d1", "no longer kept", "the last 100 dry runs", "run it again"}},
		{"store down", &dryRunner{err: errors.New("nats: timeout")}, http.StatusServiceUnavailable,
			[]string{"dry run d1", "nats: timeout", "check that NATS is reachable", "try again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &models{t: t, st: projections.NewState()}
			for i, st := range []string{events.StatePending, events.StateCompleted} {
				d := events.SyncState{JobID: "d1", Connector: "demo", State: st}
				if st == events.StatePending {
					d.Options = &events.JobOptions{DryRun: true}
				}
				m.apply(events.New(events.TypeSyncState, events.SyncSubject("demo", "d1"), "demo", "d1", i, testTime(), d))
			}
			tt.r.runner = &runner{}
			s := NewServer(tt.r, m, zaptest.NewLogger(t))
			rec := get(t, s, "/v1/jobs/d1/changes")
			if rec.Code != tt.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.code)
			}
			for _, w := range tt.words {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("the answer does not say %q: %s", w, rec.Body)
				}
			}
		})
	}
}
