package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
