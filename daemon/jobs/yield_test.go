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

// A replica that let a lease go (NATS did not answer its renewal) and
// takes it back while its job still runs: the new claim waits for that
// job, and the old lease's late Lost leaves the new claim alone (it used
// to delete it, and the next request failed "does not hold the
// connector").
func TestTakeBackWhileAJobRuns(t *testing.T) {
	// The job's plugin stops only when told: the earlier lane outlives
	// its lease until then.
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}, stubborn: make(chan struct{})}
	e := startEnvWith(t, d, func(r *Runner) { r.UseLeases("a", campaign{}, &forwards{}) })
	first, endFirst := context.WithCancel(context.Background())
	if err := e.runner.Acquired(first, "demo", 1); err != nil {
		t.Fatal(err)
	}
	claimed, _ := e.runner.Holding("demo")
	id, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(id, events.StateRetrieving)
	testenv.Eventually(t, 30*time.Second, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.reqs) == 0 {
			return errors.New("the connector has not been asked to sync yet")
		}
		return nil
	})
	endFirst() // the renewal failed
	second, endSecond := context.WithCancel(context.Background())
	defer endSecond()
	took := make(chan error, 1)
	go func() { took <- e.runner.Acquired(second, "demo", 2) }()
	testenv.Eventually(t, 30*time.Second, func() error {
		e.runner.mu.Lock()
		defer e.runner.mu.Unlock()
		if !e.runner.taking["demo"] {
			return errors.New("the take-over has not begun")
		}
		return nil
	})
	if now, _ := e.runner.Holding("demo"); now != claimed {
		t.Errorf("claimed at %d while the earlier lane's job ran; want the claim %d kept until it ended", now, claimed)
	}
	close(d.stubborn)
	e.waitFinal(id)
	if err := <-took; err != nil {
		t.Fatal(err)
	}
	e.runner.Lost("demo", 1, errors.New("renewal failed")) // late, as the lease campaign may call it
	if now, ok := e.runner.Holding("demo"); !ok || now <= claimed {
		t.Fatalf("holding demo at %d (%v) after the late Lost; want a claim above %d", now, ok, claimed)
	}
	next, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test"})
	if err != nil {
		t.Fatalf("a request after the take-back: %v", err)
	}
	if j := e.waitFinal(next); j.State != events.StateCompleted {
		t.Errorf("the next job ended %s (%s)", j.State, j.Reason)
	}
}
