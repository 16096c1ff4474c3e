package cli

import (
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// The jobs table shows every kind of change a job made, and keeps long
// reasons to their first sentence.
func TestJobRow(t *testing.T) {
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.Local)
	job := func(state, reason string, sum *events.Summary) api.Job {
		return api.Job{Job: projections.Job{ID: "20261204T090000000-ab", Connector: "demo", State: state, RequestedAt: at,
			RequestedBy: "cli", Reason: reason, Summary: sum}}
	}
	long := "Microsoft Graph kept failing (Graph 503 serviceNotAvailable: Service unavailable), still after 4 attempts over 9m58s. To fix: Nothing was changed: the next sync starts again from the last good cursor."
	tests := []struct {
		name string
		j    api.Job
		want string
	}{
		{"every kind", job(events.StateCompleted, "", &events.Summary{RecipientsCreated: 4, RecipientsUpdated: 16, RecipientsArchived: 7, RecipientsRestored: 1}),
			"20261204T090000000-ab\tdemo\tCOMPLETED\t" + fmtTime(&at) + "\tcli\t4 created, 16 updated, 7 archived, 1 restored\t-"},
		{"deleted", job(events.StateCompleted, "", &events.Summary{RecipientsRemoved: 2}),
			"20261204T090000000-ab\tdemo\tCOMPLETED\t" + fmtTime(&at) + "\tcli\t2 deleted\t-"},
		{"nothing", job(events.StateCompleted, "", &events.Summary{RecipientsUnchanged: 9}),
			"20261204T090000000-ab\tdemo\tCOMPLETED\t" + fmtTime(&at) + "\tcli\tno change\t-"},
		{"long reason", job(events.StateFailed, long, &events.Summary{}),
			"20261204T090000000-ab\tdemo\tFAILED\t" + fmtTime(&at) + "\tcli\t-\tMicrosoft Graph kept failing (Graph 503 serviceNotAvailable: Service unavailable), still after 4 at…"},
		{"one short sentence", job(events.StateCanceled, "canceled by an operator", nil),
			"20261204T090000000-ab\tdemo\tCANCELED\t" + fmtTime(&at) + "\tcli\t-\tcanceled by an operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jobRow(tt.j); got != tt.want {
				t.Errorf("row:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if got := firstSentence("Graph is down. Try later."); got != "Graph is down.…" {
		t.Errorf("firstSentence = %q", got)
	}
}
