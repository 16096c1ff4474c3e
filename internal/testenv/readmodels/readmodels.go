// Package readmodels starts the daemon's read models (a
// projections.Projector following the event store) for tests. It is a
// package of its own, not part of testenv, so that projections' and
// store's own tests may import testenv without an import cycle.
package readmodels

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// readyGuard bounds the replay of a test's stream: a few events take
// milliseconds, so reaching it means the projector is stuck, not slow.
const readyGuard = 2 * time.Minute

// Models is a running Projector and the end of its Run.
type Models struct {
	*projections.Projector
	done chan error
	err  error
	ran  bool
}

// Start creates the read models on js, runs them following st, and
// returns once they have replayed the stream (Ready). They stop when
// the test ends; an error Run returned other than the cancellation
// fails the test.
func Start(t testing.TB, js jetstream.JetStream, st *store.Store) *Models {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := projections.New(ctx, js, st, 1, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatalf("creating the read models: %v", err)
	}
	m := &Models{Projector: p, done: make(chan error, 1)}
	go func() { m.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if _, err := m.Exited(true); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the read models stopped with: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-m.done:
		m.err, m.ran = err, true
		t.Fatalf("the read models stopped before they were ready: %v", err)
	case <-time.After(readyGuard):
		t.Fatalf("the read models did not replay the stream within %s", readyGuard)
	}
	return m
}

// Exited reports whether Run has returned, and its error; with wait it
// waits for that. Tests call it without wait to check that the read
// models still follow the stream. It is for the test's goroutine only.
func (m *Models) Exited(wait bool) (bool, error) {
	if m.ran {
		return true, m.err
	}
	if wait {
		m.err, m.ran = <-m.done, true
		return true, m.err
	}
	select {
	case m.err = <-m.done:
		m.ran = true
		return true, m.err
	default:
		return false, nil
	}
}
