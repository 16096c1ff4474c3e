package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
)

// A job and its summary agree, in the events downstream services read:
// the "full" of every event from RETRIEVING on and the summary's fullRead
// say the read the job did, asked for or not; a FAILED job's summary
// counts the requests and retries its plugin reported before failing (or,
// failing in a retry wave without counts, at least that wave's attempts).
func TestJobAgreesWithSummary(t *testing.T) {
	retryFailure := errors.New("Graph answered 503 Service Unavailable, still after 4 attempts over 9s")
	tests := []struct {
		name string
		// run returns the job whose events are checked.
		run  func(t *testing.T) (*env, string)
		want []string
	}{
		{"first sync, no --full asked", func(t *testing.T) (*env, string) {
			e := startEnv(t, &dir{users: manyUsers(2)})
			return e, e.sync().ID
		}, []string{
			"PENDING", "STARTED", "RETRIEVING full", "PROCESSING full", "SAVING full",
			"COMPLETED full summary{fullRead requests=0 retries=0}",
		}},
		{"incremental sync the connector turned into a full read", func(t *testing.T) (*env, string) {
			d := &dir{users: manyUsers(2)}
			e := startEnv(t, d)
			e.sync()
			d.mu.Lock()
			d.resync = "the delta token expired"
			d.mu.Unlock()
			return e, e.sync().ID
		}, []string{
			"PENDING", "STARTED", "RETRIEVING", "PROCESSING full", "SAVING full",
			"COMPLETED full summary{fullRead requests=0 retries=0}",
		}},
		{"failure after retries, counts sent with it", func(t *testing.T) (*env, string) {
			e := startEnv(t, &dir{})
			e.usePlugin(&script{batches: []*connectorv1.SyncBatch{
				{Progress: &connectorv1.Progress{Requests: 5, Retries: 2, Retrying: &connectorv1.Retrying{Cause: "503", Attempt: 3, WaitMs: 1}}},
				{Progress: &connectorv1.Progress{Requests: 7, Retries: 3, ThrottleWaitMs: 4000}},
			}, err: retryFailure})
			return e, e.sync().ID
		}, []string{
			"PENDING", "STARTED", "RETRIEVING full",
			"FAILED full summary{fullRead requests=7 retries=3}",
		}},
		{"failure in a retry wave, no counts", func(t *testing.T) (*env, string) {
			e := startEnv(t, &dir{})
			e.usePlugin(&script{batches: []*connectorv1.SyncBatch{
				{Progress: &connectorv1.Progress{Retrying: &connectorv1.Retrying{Cause: "503", Attempt: 4, WaitMs: 1}}},
			}, err: retryFailure})
			return e, e.sync().ID
		}, []string{
			"PENDING", "STARTED", "RETRIEVING full",
			"FAILED full summary{fullRead requests=4 retries=3}",
		}},
		{"failure of an incremental sync", func(t *testing.T) (*env, string) {
			d := &dir{users: manyUsers(2), delta: []*connectorv1.SyncBatch{{}}}
			e := startEnv(t, d)
			e.sync()
			d.mu.Lock()
			d.delta = nil
			d.fail = errors.New("directory unreachable")
			d.mu.Unlock()
			return e, e.sync().ID
		}, []string{
			"PENDING", "STARTED", "RETRIEVING",
			"FAILED summary{requests=0 retries=0}",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, id := tt.run(t)
			got := syncStates(t, e, id)
			if !slices.Equal(got, tt.want) {
				t.Errorf("events of job %s:\n%q\nwant\n%q", id, got, tt.want)
			}
			// The read model folds them into one answer.
			j := e.waitFinal(id)
			if j.Summary == nil || j.Full != j.Summary.FullRead {
				t.Errorf("job full %v, summary %+v", j.Full, j.Summary)
			}
		})
	}
}

// syncStates describes a job's stored sync-state events, in order: the
// state, "full" when the event says so, and the summary's fields this
// test is about.
func syncStates(t *testing.T, e *env, jobID string) []string {
	t.Helper()
	var out []string
	for _, raw := range e.storedEvents(1) {
		var ev struct {
			Type string           `json:"type"`
			Data events.SyncState `json:"data"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != events.TypeSyncState || ev.Data.JobID != jobID {
			continue
		}
		s := ev.Data.State
		if ev.Data.Full {
			s += " full"
		}
		if sum := ev.Data.Summary; sum != nil {
			full := ""
			if sum.FullRead {
				full = "fullRead "
			}
			s += fmt.Sprintf(" summary{%srequests=%d retries=%d}", full, sum.GraphRequests, sum.Retries)
		}
		out = append(out, s)
	}
	return out
}
