package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The event log cannot be purged nor have a message deleted, by anyone,
// the daemon's own credential included; a stream made by a release that
// allowed both is updated by Open, so an upgrade gets the same
// protection.
func TestStreamDeniesPurgeAndDelete(t *testing.T) {
	tests := []struct {
		name string
		// before creates the stream as an older release did, or not at all.
		before bool
	}{
		{name: "new stream"},
		{name: "stream of an older release", before: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := testenv.JetStream(t, "")
			if tt.before {
				old := store.StreamConfig(1)
				old.DenyPurge, old.DenyDelete = false, false
				if _, err := b.JS.CreateStream(ctx, old); err != nil {
					t.Fatal(err)
				}
				if _, err := b.JS.Publish(ctx, "dirsync.sync.demo.old", []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.Open(ctx, b.JS, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := b.JS.Publish(ctx, "dirsync.sync.demo.new", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			st, err := b.JS.Stream(ctx, store.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			if c := st.CachedInfo().Config; !c.DenyPurge || !c.DenyDelete {
				t.Fatalf("after Open: DenyPurge %v DenyDelete %v; want both", c.DenyPurge, c.DenyDelete)
			}
			before := st.CachedInfo().State.Msgs
			if err := st.Purge(ctx); err == nil || !strings.Contains(err.Error(), "purge") {
				t.Errorf("purge with the daemon's credential: %v; want refused", err)
			}
			if err := st.DeleteMsg(ctx, 1); err == nil {
				t.Error("message delete with the daemon's credential succeeded; want refused")
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != before || info.State.FirstSeq != 1 {
				t.Errorf("after the refusals: %d messages from %d; want %d from 1", info.State.Msgs, info.State.FirstSeq, before)
			}
			// The flags cannot be cleared again: an older release's
			// config is refused rather than silently dropping them.
			old := store.StreamConfig(1)
			old.DenyPurge, old.DenyDelete = false, false
			if _, err := b.JS.UpdateStream(ctx, old); err == nil || !strings.Contains(err.Error(), "can not cancel deny") {
				t.Errorf("update clearing DenyPurge and DenyDelete: %v; want refused", err)
			}
		})
	}
}
