package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fakeDisk is a store.Disk whose free space the test sets, and which
// counts syncs and checks that each one comes after the acks it covers.
type fakeDisk struct {
	mu     sync.Mutex
	free   []int64 // successive answers of Free; the last one repeats
	frees  int
	syncs  int
	synced []uint64 // the stream's last sequence at each Sync
	st     *store.Store
}

func (d *fakeDisk) Sync(ctx context.Context, stream string) error {
	if stream != store.StreamName {
		return fmt.Errorf("synced stream %q", stream)
	}
	seq, err := d.st.LastSeq(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.syncs++
	d.synced = append(d.synced, seq)
	return nil
}

func (d *fakeDisk) Free(context.Context) (int64, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.free[min(d.frees, len(d.free)-1)]
	d.frees++
	return f, "the test's limit", nil
}

// open starts an embedded server and opens the store on it with d.
func open(t *testing.T, d *fakeDisk, opts broker.Options) (*store.Store, *broker.Broker) {
	t.Helper()
	ctx := context.Background()
	b := testenv.JetStreamWith(t, opts)
	var o []store.Option
	if d != nil {
		o = append(o, store.WithDisk(d))
	}
	st, err := store.Open(ctx, b.JS, 1, o...)
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		d.st = st
	}
	return st, b
}

// directoryEvents returns n user-changed events of a job, each about size
// bytes of data.
func directoryEvents(job string, n, size int) []events.Event {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	evs := make([]events.Event, n)
	for i := range evs {
		id := fmt.Sprintf("0000%04d-0000-0000-0000-000000000000", i)
		evs[i] = events.New(events.TypeUserChanged, events.DirectorySubject("c", "user", id), "c", job, 0, at,
			events.User{ID: id, DisplayName: strings.Repeat("x", size), AccountEnabled: true})
	}
	return evs
}

// state returns a job's state event.
func state(job, st string) events.Event {
	return events.New(events.TypeSyncState, events.SyncSubject("c", job), "c", job, 0, time.Now(),
		events.SyncState{JobID: job, Connector: "c", State: st, Reason: "test"})
}

func TestAppendSyncsAfterTheAcks(t *testing.T) {
	d := &fakeDisk{free: []int64{1 << 40}}
	st, _ := open(t, d, broker.Options{})
	ctx := context.Background()
	for i, n := range []int{1, store.MaxPending*2 + 10} {
		last, err := st.Append(ctx, directoryEvents(fmt.Sprintf("job%d", i), n, 100))
		if err != nil {
			t.Fatal(err)
		}
		if d.syncs != i+1 || d.synced[i] != last {
			t.Fatalf("after append %d: %d syncs at sequences %v; want one per append, at the last acknowledged sequence %d", i, d.syncs, d.synced, last)
		}
	}
	if _, err := st.Append(ctx, nil); err != nil || d.syncs != 2 {
		t.Errorf("an empty append: %v, %d syncs; want no sync", err, d.syncs)
	}
}

func TestAppendChecksSpace(t *testing.T) {
	const job = "job1"
	tests := []struct {
		name string
		free []int64
		evs  []events.Event
		// stored is how many of evs must be stored, -1 for all.
		stored int
		want   string
	}{
		{name: "fits", free: []int64{100 << 20}, evs: directoryEvents(job, 100, 200), stored: -1},
		{name: "would eat the headroom", free: []int64{store.Headroom + 10<<10}, evs: directoryEvents(job, 100, 200), stored: 0,
			want: "JetStream storage is full: 100 events need about "},
		{name: "a final state may use the headroom", free: []int64{10 << 10}, evs: []events.Event{state(job, events.StateFailed)}, stored: -1},
		{name: "other states may not", free: []int64{10 << 10}, evs: []events.Event{state(job, events.StatePending)}, stored: 0,
			want: "with 1.0 MiB kept free for the job's final state, but only 10.0 KiB more can be stored, bounded by the test's limit"},
		{name: "a final state that does not fit", free: []int64{100}, evs: []events.Event{state(job, events.StateCompleted)}, stored: 0,
			want: "but only 100 B more can be stored"},
		{name: "space runs out midway", free: []int64{100 << 20, 100 << 20, store.Headroom}, evs: directoryEvents(job, store.MaxPending*3, 10), stored: store.MaxPending * 2,
			want: fmt.Sprintf("%d of its %d events were stored before that", store.MaxPending*2, store.MaxPending*3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDisk{free: tt.free}
			st, _ := open(t, d, broker.Options{})
			ctx := context.Background()
			_, err := st.Append(ctx, tt.evs)
			last, lerr := st.LastSeq(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			want := uint64(tt.stored)
			if tt.stored < 0 {
				want = uint64(len(tt.evs))
			}
			if last != want {
				t.Errorf("%d events stored, want %d", last, want)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, store.ErrStorageFull) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want ErrStorageFull saying %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "Make room, then run the sync again") {
				t.Errorf("error does not say what to do: %v", err)
			}
		})
	}
}

// The estimate that decides before a SAVING must be close to what the
// server then stores, or the check refuses syncs that fit (too high) or
// lets through syncs that fill the disk (too low).
func TestEstimateIsClose(t *testing.T) {
	for _, size := range []int{10, 300, 3000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			d := &fakeDisk{free: []int64{1 << 40}}
			st, b := open(t, d, broker.Options{})
			ctx := context.Background()
			evs := directoryEvents("job1", 3000, size)
			if _, err := st.Append(ctx, evs); err != nil {
				t.Fatal(err)
			}
			js, err := b.JS.Stream(ctx, store.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			info, err := js.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := store.Estimate(evs)
			if stored := int64(info.State.Bytes); got < stored || got > stored*13/10 {
				t.Errorf("estimate %d bytes; the server stored %d (want from 1× to 1.3×)", got, stored)
			}
		})
	}
}

// A server that refuses for want of room (its JetStream storage limit)
// yields ErrStorageFull, with the remedy, even without a Disk.
func TestServerLimitIsStorageFull(t *testing.T) {
	for _, tt := range []struct {
		name   string
		disk   *fakeDisk
		remedy string
	}{
		{name: "embedded", disk: &fakeDisk{free: []int64{1 << 40}}, remedy: "raise nats { max_store } in plugins.hcl"},
		{name: "external", remedy: "ask the NATS server's administrator for room"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := open(t, tt.disk, broker.Options{MaxStore: 2 << 20})
			_, err := st.Append(context.Background(), directoryEvents("job1", 1000, 4000))
			if !errors.Is(err, store.ErrStorageFull) || !strings.Contains(err.Error(), tt.remedy) {
				t.Fatalf("append past the server's limit: %v; want ErrStorageFull saying %q", err, tt.remedy)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 64 << 20: "64.0 MiB", 3 << 40: "3.0 TiB"} {
		if got := store.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q; want %q", n, got, want)
		}
	}
}

// Large events go out in chunks bounded by bytes, not only by count: 24
// events of 700 KiB (close to the largest recipient event) are stored in
// chunks of at most store.MaxPendingBytes, each acknowledged before the
// next is sent, and all are stored once.
func TestAppendChunksLargeEventsByBytes(t *testing.T) {
	st, _ := open(t, nil, broker.Options{})
	ctx := context.Background()
	evs := directoryEvents("job1", 24, 700<<10)
	var reports []int
	last, err := st.AppendProgress(ctx, evs, func(stored int) { reports = append(reports, stored) })
	if err != nil {
		t.Fatal(err)
	}
	if last != uint64(len(evs)) {
		t.Errorf("last sequence %d; want %d", last, len(evs))
	}
	perChunk := int(store.MaxPendingBytes / (700 << 10))
	if len(reports) < len(evs)/(perChunk+1) || reports[len(reports)-1] != len(evs) {
		t.Errorf("progress %v: want chunks of at most about %d events (%d bytes), ending at %d", reports, perChunk, store.MaxPendingBytes, len(evs))
	}
	for i := 1; i < len(reports); i++ {
		if n := reports[i] - reports[i-1]; n > perChunk+1 {
			t.Errorf("a chunk of %d events of 700 KiB: more than %d bytes in flight", n, store.MaxPendingBytes)
		}
	}
}

// AppendProgress frees a job's events as it sends them (each entry of its
// slice is zeroed once encoded), while Append leaves its caller's slice
// as it was: SAVING must not hold every planned event to its end.
func TestAppendProgressReleasesEvents(t *testing.T) {
	st, _ := open(t, nil, broker.Options{})
	ctx := context.Background()
	kept := directoryEvents("job1", store.MaxPending+10, 100)
	if _, err := st.Append(ctx, kept); err != nil {
		t.Fatal(err)
	}
	for i, e := range kept {
		if e.ID == "" {
			t.Fatalf("Append cleared event %d of its caller's slice", i)
		}
	}
	evs := directoryEvents("job2", store.MaxPending+10, 100)
	last, err := st.AppendProgress(ctx, evs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(2 * (store.MaxPending + 10)); last != want {
		t.Errorf("last sequence %d; want %d", last, want)
	}
	for i, e := range evs {
		if e.ID != "" || e.Data != nil {
			t.Fatalf("AppendProgress kept event %d (%s) after sending it", i, e.ID)
		}
	}
}

// A NATS server whose max_payload is below the stream's largest message
// is refused when the store opens, naming the setting, rather than when
// a sync first meets a large event.
func TestOpenRefusesSmallMaxPayload(t *testing.T) {
	ns := testenv.StartNATSWith(t, "small-payload", func(o *server.Options) { o.MaxPayload = 512 << 10 })
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Open(context.Background(), js, 1)
	if err == nil || !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "524288") {
		t.Fatalf("Open on a server with max_payload 512 KiB: %v; want a refusal naming max_payload", err)
	}
	if _, err := js.Stream(context.Background(), store.StreamName); err == nil {
		t.Error("the refused Open created the stream anyway")
	}
}

// FollowOwn hands the follower the events this Store appended as they
// were built (typed data, no decoding), and decodes everything else: the
// events another process appended, and its own that it read too late to
// still hold. Only one FollowOwn runs on a Store.
func TestFollowOwn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := testenv.JetStream(t, "")
	mine, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(ctx, b.JS, 1) // another process's Store
	if err != nil {
		t.Fatal(err)
	}
	user := func(id string) events.Event {
		return events.New(events.TypeUserChanged, events.DirectorySubject("demo", "user", id), "demo", "job1", 0, time.Unix(1_790_000_000, 0),
			events.User{ID: id, Mail: id + "@contoso.com"})
	}
	// Stored before FollowOwn starts: decoded.
	if _, err := mine.Append(ctx, []events.Event{user("before")}); err != nil {
		t.Fatal(err)
	}
	type got struct {
		id    string
		typed bool
	}
	seen := make(chan got, 16)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		first := true
		done <- mine.FollowOwn(fctx, 1, func(m store.Message) error {
			if first {
				first = false
				close(started)
			}
			if m.Err != nil {
				return m.Err
			}
			_, typed := m.Event.Data.(events.User)
			var u events.User
			if err := m.Event.DecodeData(&u); err != nil {
				return err
			}
			seen <- got{u.ID, typed}
			return nil
		})
	}()
	<-started
	if err := mine.FollowOwn(ctx, 1, func(store.Message) error { return nil }); err == nil {
		t.Error("a second FollowOwn on the same Store started")
	}
	if _, err := mine.Append(ctx, []events.Event{user("mine")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, []events.Event{user("other")}); err != nil {
		t.Fatal(err)
	}
	want := []got{{"before", false}, {"mine", true}, {"other", false}}
	for _, w := range want {
		select {
		case g := <-seen:
			if g != w {
				t.Errorf("followed %+v; want %+v", g, w)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", w.id, ctx.Err())
		}
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("FollowOwn ended with %v", err)
	}
}
