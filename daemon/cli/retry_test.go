package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/projections"
)

// While the connector waits to retry its directory, `sync --wait` says
// so at once, in the words an operator needs: what failed, when the next
// attempt comes, and how long until the job gives up.
func TestRetryLine(t *testing.T) {
	tests := []struct {
		name string
		r    *jobs.Retrying
		want string
	}{
		{"none", nil, ""},
		{"with a budget", &jobs.Retrying{Cause: "Graph answered 503 Service Unavailable", Attempt: 3, WaitMS: 4000, BudgetLeftMS: 581_400},
			"retrying: Graph answered 503 Service Unavailable (attempt 3); next attempt in 4s; 9m41s of the retry budget left, then the job fails"},
		{"fractional wait", &jobs.Retrying{Cause: "Graph answered 429 Too Many Requests", Attempt: 1, WaitMS: 2128, BudgetLeftMS: 600_000},
			"retrying: Graph answered 429 Too Many Requests (attempt 1); next attempt in 2.1s; 10m0s of the retry budget left, then the job fails"},
		{"no budget", &jobs.Retrying{Cause: "connection reset", Attempt: 1, WaitMS: 300},
			"retrying: connection reset (attempt 1); next attempt in 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryLine(tt.r); got != tt.want {
				t.Errorf("retryLine = %q\nwant       %q", got, tt.want)
			}
		})
	}
}

// Off a terminal, each new wait is printed at once, even within the
// second that limits the count lines, and a wait seen again on the next
// poll is not printed twice.
func TestLineViewRetrying(t *testing.T) {
	var out bytes.Buffer
	at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.Local)
	v := &lineView{out: &out, now: func() time.Time { return at }} // all within one second
	wait := func(attempt, budget int64) jobs.Progress {
		return jobs.Progress{Phase: "users and groups", Users: 10, Requests: 2,
			Retrying: &jobs.Retrying{Cause: "Graph answered 503 Service Unavailable", Attempt: attempt, WaitMS: 1000, BudgetLeftMS: budget}}
	}
	v.state(projections.StateChange{State: "RETRIEVING", At: at})
	v.progress(wait(1, 600_000))
	v.progress(wait(1, 600_000)) // the next poll: the same wait
	v.progress(wait(2, 598_900))
	v.progress(jobs.Progress{Phase: "users and groups", Users: 10, Requests: 4}) // over
	v.progress(wait(1, 597_000))                                                 // a new outage
	want := strings.Join([]string{
		"  09:00:00.000  RETRIEVING",
		"           retrying: Graph answered 503 Service Unavailable (attempt 1); next attempt in 1s; 10m0s of the retry budget left, then the job fails",
		"           users and groups: 10 users, 0 groups, 0 memberships, 2 directory requests",
		"           retrying: Graph answered 503 Service Unavailable (attempt 2); next attempt in 1s; 9m59s of the retry budget left, then the job fails",
		"           retrying: Graph answered 503 Service Unavailable (attempt 1); next attempt in 1s; 9m57s of the retry budget left, then the job fails",
		"",
	}, "\n")
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
