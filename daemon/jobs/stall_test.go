package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// A request whose job state is stored while the read models are stalled
// fails with a reason once its deadline passes, and the runner answers
// everything else (connectors, progress, a second connector's
// cancellation) meanwhile: it holds no lock across the store and the
// wait for the read models. Before, one stalled request hung `status`
// and /metrics for good.
func TestRequestDoesNotHoldRunnerWhileReadModelsStall(t *testing.T) {
	e := startEnv(t, &dir{})
	// A reader that does not return stalls the fold: the projector waits
	// for its write lock.
	release := make(chan struct{})
	stalled := make(chan struct{})
	go e.proj.View(func(*projections.State) {
		close(stalled)
		<-release
	})
	<-stalled
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.runner.Request(ctx, "demo", Request{RequestedBy: "test"})
		done <- err
	}()

	// The PENDING event is stored: the request now waits for the read
	// models (before, holding the runner's lock).
	testenv.Eventually(t, 30*time.Second, func() error {
		if seq, err := e.st.LastSeq(context.Background()); err != nil || seq == 0 {
			return fmt.Errorf("the request's PENDING event is not stored yet (%d, %v)", seq, err)
		}
		return nil
	})
	answered := make(chan struct{})
	go func() {
		for range 50 {
			_ = e.runner.Connectors()
			_, _ = e.runner.Progress("none")
			_ = e.runner.Cancel(context.Background(), "none")
		}
		close(answered)
	}()
	select {
	case <-answered:
	case err := <-done:
		t.Fatalf("the runner's readers waited until the stalled request gave up (%v): a lock is held across the store and the read models", err)
	case <-time.After(time.Minute):
		t.Fatal("the runner's readers blocked while a request waited for the stalled read models")
	}

	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "read models") {
			t.Fatalf("request during the stall: %v; want a deadline error naming the read models", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the request outlived its deadline")
	}
}

// Stalled names a queue whose head waits while its connector runs
// nothing, and a running job silent for longer than the limit; a job
// reading the directory (bounded by the plugin's idle_timeout) or in a
// retry wait the connector announced is not stalled.
func TestStalled(t *testing.T) {
	t0 := time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)
	const limit = 2 * time.Minute
	later := t0.Add(limit + time.Second)
	tests := []struct {
		name string
		lane *lane
		want string // "" : not stalled
	}{
		{"idle", &lane{}, ""},
		{"queued, not yet long", &lane{queue: []*job{{id: "j1", queued: t0.Add(2 * time.Second)}}}, ""},
		{"queued too long, nothing running", &lane{queue: []*job{{id: "j1", queued: t0}}}, "job j1 has waited 2m1s to start"},
		{"queued behind a running job", &lane{queue: []*job{{id: "j2", queued: t0}},
			current: &job{id: "j1", state: events.StateRetrieving, touched: t0}}, ""},
		{"saving, silent", &lane{current: &job{id: "j1", state: events.StateSaving, touched: t0}}, "job j1 has been SAVING for 2m1s without progress"},
		{"saving, progressing", &lane{current: &job{id: "j1", state: events.StateSaving, touched: later.Add(-time.Second)}}, ""},
		{"retrieving, silent", &lane{current: &job{id: "j1", state: events.StateRetrieving, touched: t0}}, ""},
		{"processing, in an announced retry wait", &lane{current: &job{id: "j1", state: events.StateProcessing, touched: t0,
			progress: Progress{Retrying: &Retrying{Since: t0, WaitMS: (limit + time.Minute).Milliseconds()}}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Runner{lanes: map[string]*lane{"demo": tt.lane}}
			err := r.Stalled(later, limit)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Stalled = %v; want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "connector demo")):
				t.Errorf("Stalled = %v; want one naming connector demo and %q", err, tt.want)
			}
		})
	}
}

// A job whose final state is stored never gets a second one: a failure
// after COMPLETED (the wait for the read models cut short by a stop) is
// logged, not recorded as FAILED.
func TestNoSecondFinalState(t *testing.T) {
	e := startEnv(t, &dir{})
	id := e.sync().ID
	ctx := context.Background()
	before, err := e.st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	j := &job{id: id, connector: "demo", state: events.StateCompleted}
	e.runner.recordFinal(ctx, j, events.StateFailed, "interrupted: dirsyncd stopped while the job was COMPLETED", nil, e.runner.log)
	after, err := e.st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("recording FAILED for a COMPLETED job stored %d events", after-before)
	}
	if got := e.waitFinal(id); got.State != events.StateCompleted {
		t.Errorf("the job is %s; want COMPLETED", got.State)
	}
}
