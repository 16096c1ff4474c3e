package leases_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/leases"
	"github.com/dirsync/dirsync/internal/testenv"
)

// recorder is a Handler that keeps what it heard.
type recorder struct {
	mu   sync.Mutex
	held map[string]uint64
	log  []string
}

func (r *recorder) Acquired(_ context.Context, c string, epoch uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[c] = epoch
	r.log = append(r.log, fmt.Sprintf("+%s@%d", c, epoch))
	return nil
}

func (r *recorder) Lost(c string, epoch uint64, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A lease taken again may be Acquired before the old one is Lost.
	if r.held[c] == epoch {
		delete(r.held, c)
	}
	r.log = append(r.log, fmt.Sprintf("-%s@%d", c, epoch))
}

// Yield: the recorder runs no jobs.
func (r *recorder) Yield(string) bool { return true }

func (r *recorder) holds() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]uint64{}
	for c, e := range r.held {
		out[c] = e
	}
	return out
}

// replica is one campaign running until its stop is called.
type replica struct {
	l    *leases.Leases
	rec  *recorder
	stop func()
}

func start(t *testing.T, js jetstream.JetStream, name, identity string, want []string) *replica {
	t.Helper()
	rec := &recorder{held: map[string]uint64{}}
	l, err := leases.Open(context.Background(), js, leases.Options{Replica: name, Identity: identity, TTL: leases.MinTTL}, rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Want(want)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx)
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return &replica{l: l, rec: rec, stop: stop}
}

// Two replicas share the connectors, each held by exactly one of them at
// a time; when one stops, the other takes its connectors at a higher
// epoch, at once (a clean stop lets the leases go).
func TestTwoReplicasShareAndFailOver(t *testing.T) {
	b := testenv.JetStream(t, "")
	want := []string{"c1", "c2", "c3", "c4"}
	a := start(t, b.JS, "a", "host-a:/var/lib/dirsync", want)
	z := start(t, b.JS, "z", "host-z:/var/lib/dirsync", want)
	testenv.Eventually(t, 20*time.Second, func() error {
		ha, hz := a.rec.holds(), z.rec.holds()
		for _, c := range want {
			_, inA := ha[c]
			_, inZ := hz[c]
			if inA == inZ {
				return fmt.Errorf("%s held by a: %v, by z: %v", c, inA, inZ)
			}
		}
		if len(ha) == 0 || len(hz) == 0 {
			return fmt.Errorf("a holds %v and z holds %v: not spread", ha, hz)
		}
		return nil
	})
	before := a.rec.holds()
	a.stop()
	testenv.Eventually(t, 10*time.Second, func() error {
		hz := z.rec.holds()
		if len(hz) != len(want) {
			return fmt.Errorf("z holds %v", hz)
		}
		for c, e := range before {
			if hz[c] <= e {
				return fmt.Errorf("%s taken over at epoch %d, not above a's %d", c, hz[c], e)
			}
		}
		return nil
	})
	for c, le := range z.l.Holders() {
		if le.Replica != "z" {
			t.Errorf("Holders()[%s] = %+v, want z", c, le)
		}
	}
}

// A replica restarted on the same identity (its data directory) takes
// its predecessor's leases at once instead of waiting out their TTL: the
// data directory's lock says the predecessor is gone.
func TestRestartTakesOwnLeasesBack(t *testing.T) {
	b := testenv.JetStream(t, "")
	js := b.JS
	// The predecessor took c1 and died without letting it go.
	dead := &recorder{held: map[string]uint64{}}
	l, err := leases.Open(context.Background(), js, leases.Options{Replica: "a", Identity: "host-a:/d", TTL: time.Minute}, dead, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Want([]string{"c1"})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = l.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() error {
		if _, ok := dead.holds()["c1"]; !ok {
			return fmt.Errorf("predecessor holds %v", dead.holds())
		}
		return nil
	})
	old := dead.holds()["c1"]
	// Killed: its leases stay in the bucket (no release). A context that
	// never ends stands for the process that no longer runs.
	_ = cancel

	other := start(t, b.JS, "z", "host-z:/d", []string{"c1"})
	again := start(t, b.JS, "a", "host-a:/d", []string{"c1"})
	testenv.Eventually(t, 10*time.Second, func() error {
		if e := again.rec.holds()["c1"]; e <= old {
			return fmt.Errorf("restarted replica holds c1 at %d (predecessor %d)", e, old)
		}
		return nil
	})
	if h := other.rec.holds(); len(h) != 0 {
		t.Errorf("another replica took the lease: %v", h)
	}
	if !slices.Contains(again.l.Replicas(), "z") {
		t.Errorf("Replicas() = %v, want z among them", again.l.Replicas())
	}
}

// A replica that let a lease go because renewing it failed (NATS did not
// answer in time), and whose lease no other replica has taken, takes it
// back at once at a new epoch, instead of leaving the connector unrun
// for the rest of the TTL (a sync asked meanwhile found no holder).
func TestOwnLostLeaseTakenBack(t *testing.T) {
	b := testenv.JetStream(t, "")
	rec := &recorder{held: map[string]uint64{}}
	l, err := leases.Open(context.Background(), b.JS, leases.Options{Replica: "a", Identity: "host-a:/d", TTL: time.Minute}, rec, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Want([]string{"c1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	var first uint64
	testenv.Eventually(t, 10*time.Second, func() error {
		var ok bool
		if first, ok = rec.holds()["c1"]; !ok {
			return fmt.Errorf("a holds %v", rec.holds())
		}
		return nil
	})
	// What a failed renewal does: the lease is let go here, and stays in
	// the bucket for the rest of its TTL (a minute).
	l.Drop("c1", errors.New("renewal failed"))
	testenv.Eventually(t, 10*time.Second, func() error {
		if e := rec.holds()["c1"]; e <= first {
			return fmt.Errorf("c1 held at epoch %d; want it taken back above %d well within the TTL", e, first)
		}
		return nil
	})
}
