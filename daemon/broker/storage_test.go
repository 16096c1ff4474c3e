package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
)

// startStorage starts an embedded server with opts and a stream S of file
// storage, and returns the broker.
func startStorage(t *testing.T, opts Options) *Broker {
	t.Helper()
	opts.Listen, opts.DataDir = "127.0.0.1:0", t.TempDir()
	b, err := Start(context.Background(), opts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if _, err := b.JS.CreateStream(context.Background(), jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	return b
}

func publish(t *testing.T, b *Broker, n, size int) {
	t.Helper()
	for i := range n {
		if _, err := b.JS.Publish(context.Background(), fmt.Sprintf("s.%d", i), bytes.Repeat([]byte("x"), size)); err != nil {
			t.Fatal(err)
		}
	}
}

// Sync fsyncs exactly the block files that changed, as they are on disk
// after the acks: its marks record each block's size, which must be the
// file's size, and a second Sync after more writes must cover them.
func TestSyncCoversWhatWasAcknowledged(t *testing.T) {
	b := startStorage(t, Options{})
	ctx := context.Background()
	publish(t, b, 50, 1000)
	if err := b.Storage().Sync(ctx, "S"); err != nil {
		t.Fatal(err)
	}
	st := b.storage
	check := func(when string) {
		t.Helper()
		blocks, _ := filepath.Glob(filepath.Join(st.dir, "*", "streams", "S", "msgs", "*.blk"))
		if len(blocks) == 0 {
			t.Fatalf("%s: no block file of stream S under %s", when, st.dir)
		}
		for _, p := range blocks {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := st.marks[p]; !ok || m.size != fi.Size() || m.size == 0 {
				t.Errorf("%s: %s is %d bytes; Sync last covered %+v (present %v)", when, filepath.Base(p), fi.Size(), m, ok)
			}
		}
		if !st.laidOut["S"] {
			t.Errorf("%s: the stream's directories were not synced", when)
		}
	}
	check("first sync")
	publish(t, b, 50, 1000)
	if err := b.Storage().Sync(ctx, "S"); err != nil {
		t.Fatal(err)
	}
	check("second sync")
}

func TestSyncPolicies(t *testing.T) {
	tests := []struct {
		sync       string
		syncAlways bool
		marks      bool
	}{
		{sync: "", marks: true},
		{sync: SyncAppend, marks: true},
		{sync: SyncAlways, syncAlways: true},
		{sync: SyncInterval},
	}
	for _, tt := range tests {
		t.Run(tt.sync, func(t *testing.T) {
			b := startStorage(t, Options{Sync: tt.sync})
			publish(t, b, 5, 100)
			if err := b.Storage().Sync(context.Background(), "S"); err != nil {
				t.Fatal(err)
			}
			if got := b.srv.JetStreamConfig().SyncAlways; got != tt.syncAlways {
				t.Errorf("nats-server sync always = %v; want %v", got, tt.syncAlways)
			}
			if got := len(b.storage.marks) > 0; got != tt.marks {
				t.Errorf("Sync synced files: %v; want %v (only the append policy syncs itself)", got, tt.marks)
			}
		})
	}
	if _, err := Start(context.Background(), Options{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Sync: "sometimes"}, zaptest.NewLogger(t)); err == nil ||
		!strings.Contains(err.Error(), "append, always, interval") {
		t.Errorf("an unknown policy: %v; want an error listing the policies", err)
	}
}

func TestSyncUnknownStream(t *testing.T) {
	b := startStorage(t, Options{})
	err := b.Storage().Sync(context.Background(), "NOPE")
	if err == nil || !strings.Contains(err.Error(), "finding stream NOPE") {
		t.Errorf("Sync of a stream that does not exist: %v", err)
	}
}

// Free is bounded by max_store, names it, and shrinks as JetStream fills.
func TestFreeUnderMaxStore(t *testing.T) {
	b := startStorage(t, Options{MaxStore: 32 << 20})
	ctx := context.Background()
	before, bound, err := b.Storage().Free(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before > 32<<20 || before < 30<<20 || !strings.Contains(bound, "max_store") {
		t.Fatalf("Free = %d, %q; want just under 32 MiB, bounded by max_store", before, bound)
	}
	publish(t, b, 100, 10_000)
	after, _, err := b.Storage().Free(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before-after < 1_000_000 {
		t.Errorf("Free went from %d to %d after storing 1 MB", before, after)
	}
}

// Without max_store, Free is the file system's (or JetStream's default
// limit, three quarters of it, whichever is smaller).
func TestFreeWithoutLimit(t *testing.T) {
	b := startStorage(t, Options{})
	free, bound, err := b.Storage().Free(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if free <= 0 || !(strings.Contains(bound, "file system under") || strings.Contains(bound, "three quarters")) {
		t.Errorf("Free = %d, %q", free, bound)
	}
}

func TestExternalHasNoStorage(t *testing.T) {
	b := &Broker{}
	if b.Storage() != nil {
		t.Error("a broker without an embedded server returned a Storage")
	}
}
