package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// campaign is a lease campaign that holds what the test gives it.
type campaign struct{}

func (campaign) TryAcquire(context.Context, string) (bool, error) { return false, nil }
func (campaign) Drop(string, error)                               {}

// forwards records the requests passed to the replica holding a
// connector.
type forwards struct {
	mu   sync.Mutex
	reqs []Request
}

func (f *forwards) Request(_ context.Context, _ string, req Request) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	return "forwarded", nil
}

func (f *forwards) Cancel(context.Context, string, string) error { return nil }

func (f *forwards) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// A replica hands a connector to another only while it runs no job for
// it, and once it has agreed to, a request for it goes to the new
// holder instead of joining a queue the handover would fail (a sync
// requested during a rebalance ended FAILED "lease lost").
func TestYieldFailsNoJob(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}, block: make(chan struct{})}
	fw := &forwards{}
	e := startEnvWith(t, d, func(r *Runner) { r.UseLeases("a", campaign{}, fw) })
	lease, endLease := context.WithCancel(context.Background())
	defer endLease()
	if err := e.runner.Acquired(lease, "demo", 1); err != nil {
		t.Fatal(err)
	}
	if !e.runner.Yield("other") {
		t.Error("Yield of a connector this replica does not run: false; want true")
	}

	id, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(id, events.StateRetrieving)
	if e.runner.Yield("demo") {
		t.Fatal("Yield while a job runs: true; want false")
	}
	// A request being recorded makes the connector busy too: its job
	// was accepted here.
	e.runner.reqMu.Lock()
	busy := e.runner.Yield("demo")
	e.runner.reqMu.Unlock()
	if busy {
		t.Fatal("Yield while a request is recorded: true; want false")
	}
	close(d.block)
	if j := e.waitFinal(id); j.State != events.StateCompleted {
		t.Fatalf("job ended %s (%s); want COMPLETED", j.State, j.Reason)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if !e.runner.Yield("demo") {
			return errors.New("Yield once the job ended: false; want true")
		}
		return nil
	})

	// Yielded: a request is passed on, and nothing is queued here.
	got, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test"})
	if err != nil || got != "forwarded" || fw.count() != 1 {
		t.Fatalf("request after Yield: %q, %v, %d forwarded; want the holder's job", got, err, fw.count())
	}
	// One passed on to this replica is refused as not held, which its
	// sender hears as "ask the next holder".
	if _, err := e.runner.Request(context.Background(), "demo", Request{Forwarded: true}); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("forwarded request after Yield: %v; want ErrNotHolder", err)
	}
	e.runner.mu.Lock()
	queued := len(e.runner.lanes["demo"].queue)
	e.runner.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d requests joined the queue of a yielded connector", queued)
	}
	endLease()
	e.runner.Lost("demo", 1, errors.New("handed over"))
	if e.runner.Running("demo") {
		t.Error("still running demo after Lost")
	}
}
