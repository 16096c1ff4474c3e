package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The start warns about what the event log's settings do not keep: an
// embedded server that syncs lazily, a one-replica stream on a cluster;
// and not about the settings that keep it.
func TestWarnDurability(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if w := warnDurability(ctx, nil, true, broker.SyncInterval, zap.NewNop()); len(w) != 1 || !strings.Contains(w[0], `sync = "interval"`) {
		t.Errorf("embedded, sync interval: warnings %q; want one naming the setting", w)
	}
	for _, policy := range []string{broker.SyncAppend, broker.SyncAlways} {
		if w := warnDurability(ctx, nil, true, policy, zap.NewNop()); len(w) != 0 {
			t.Errorf("embedded, sync %s: warnings %q; want none", policy, w)
		}
	}
	c := testenv.StartCluster(t, 3)
	_, js := c.Connect(t)
	if _, err := store.Open(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if w := warnDurability(ctx, js, false, "", zap.NewNop()); len(w) != 1 || !strings.Contains(w[0], "nats { replicas = 3 }") {
		t.Errorf("R1 stream on a cluster: warnings %q; want one saying to set replicas = 3", w)
	}
	if _, err := store.Open(ctx, js, 3); err != nil {
		t.Fatal(err)
	}
	if w := warnDurability(ctx, js, false, "", zap.NewNop()); len(w) != 0 {
		t.Errorf("R3 stream on a cluster: warnings %q; want none", w)
	}
}
