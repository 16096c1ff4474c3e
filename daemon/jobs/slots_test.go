package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/readmodels"
)

// slowTest is a connector whose connection test waits for release.
type slowTest struct {
	dir
	release chan struct{}
}

func (s *slowTest) TestConnection(ctx context.Context, _ *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	select {
	case <-s.release:
		return &connectorv1.TestConnectionResponse{Ok: true}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Connection tests and syncs of one plugin share PluginSlots processes:
// many concurrent tests never run more at once; one that finds no slot
// within TestSlotWait gets ErrPluginBusy; a sync waits for a slot and
// then runs; once the tests end, the slots are free again.
func TestPluginSlots(t *testing.T) {
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	proj := readmodels.Start(t, b.JS, st)
	conn := &slowTest{release: make(chan struct{})}
	var running, peak atomic.Int64
	launch := func(context.Context, string, ...zap.Field) (connector.Connector, func(), error) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return conn, func() { running.Add(-1) }, nil
	}
	specs := []Spec{{Name: "a", Plugin: "azuread", Config: &connectorv1.Config{}, Policy: policy.Default()},
		{Name: "b", Plugin: "azuread", Config: &connectorv1.Config{}, Policy: policy.Default()}}
	r := New(st, proj.Projector, launch, specs, zaptest.NewLogger(t))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)

	const tests = 3 * PluginSlots
	var wg sync.WaitGroup
	errs := make(chan error, tests)
	for i := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.TestConnection(ctx, specs[i%2].Name)
			errs <- err
		}()
	}
	// The rest wait TestSlotWait and are refused; then the slow ones end.
	busy := 0
	for range tests - PluginSlots {
		err := <-errs
		if !errors.Is(err, ErrPluginBusy) {
			t.Fatalf("a test beyond the slots: %v; want ErrPluginBusy", err)
		}
		busy++
	}
	// A sync waits for a slot meanwhile.
	id, err := r.Request(ctx, "a", Request{RequestedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != PluginSlots {
		t.Errorf("%d plugin processes at once; want at most (and here exactly) %d", p, PluginSlots)
	}
	close(conn.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a test within the slots: %v", err)
		}
	}
	e := &env{t: t, proj: proj}
	if j := e.waitFinal(id); j.State != "COMPLETED" {
		t.Errorf("the sync that waited for a slot: %s %s", j.State, j.Reason)
	}
	if p := peak.Load(); p > PluginSlots {
		t.Errorf("%d plugin processes at once; want at most %d", p, PluginSlots)
	}
	// The worker stops the plugin after it records COMPLETED, which the
	// read models may show first.
	testenv.Eventually(t, 10*time.Second, func() error {
		if n := running.Load(); n != 0 {
			return fmt.Errorf("%d plugin processes left running after the jobs ended", n)
		}
		return nil
	})
	t.Logf("%d of %d concurrent connection tests refused as busy", busy, tests)
}
