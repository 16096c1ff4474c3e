package projections_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/readmodels"
	"github.com/dirsync/dirsync/projections"
)

// A large append while the projector follows and writes KV: everything is
// folded and mirrored. The two share the connection's window of
// unacknowledged publishes (broker.MaxAsyncPending); under a loaded
// server, a window smaller than both writers' bounds failed with "stalled
// with too many outstanding async published messages" (seen by make bench
// at 1,000,000 events; this fast in-process server does not reproduce the
// stall, so the bound itself is checked too).
func TestLargeAppendWhileFollowing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40,000 events")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := readmodels.Start(t, b.JS, st)

	if broker.MaxAsyncPending < 2*store.MaxPending {
		t.Fatalf("the async publish window (%d) cannot hold the store's and the projector's writes (%d each)", broker.MaxAsyncPending, store.MaxPending)
	}
	const n = 40_000
	t0 := time.Unix(1_790_000_000, 0)
	evs := make([]events.Event, 0, n)
	for i := range n {
		id := fmt.Sprintf("u%06d", i)
		r := events.Recipient{ID: projections.RecipientKey("demo", id), Connector: "demo", ObjectID: id,
			Email: id + "@contoso.com", Status: events.RecipientActive, UpdatedAt: t0}
		evs = append(evs, events.New(events.TypeRecipientCreated, events.RecipientSubject("demo", id), "demo", "job1", 0, t0,
			events.RecipientChange{Recipient: r, Reason: "test"}))
	}
	// Two rounds: the second runs while the projector flushes the first.
	for round := range 2 {
		if round == 1 {
			for i := range evs {
				evs[i].ID += "-again"
				evs[i].Type = events.TypeRecipientUpdated
			}
		}
		seq, err := st.Append(ctx, evs)
		if err != nil {
			t.Fatalf("round %d: append: %v", round, err)
		}
		if err := p.WaitFor(ctx, seq); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if exited, err := p.Exited(false); exited {
			t.Fatalf("projector stopped: %v", err)
		}
	}
	var got int
	p.View(func(s *projections.State) { got = len(s.Recipients["demo"]) })
	if got != n {
		t.Errorf("%d recipients folded; want %d", got, n)
	}
}

// A replica writes to KV only the entries of the connectors it holds
// (WriteKVFor), and brings a connector's entries in line when it takes
// it over (ReconcileConnector).
func TestWriteKVForHeldConnectorsOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, st, p := startWriting(t, ctx, zaptest.NewLogger(t), func(c string) projections.KVWrite {
		if c == "mine" {
			return projections.KVWriteNow
		}
		return projections.KVSkip
	})
	t0 := time.Unix(1_790_000_000, 0)
	var evs []events.Event
	for _, c := range []string{"mine", "theirs"} {
		r := events.Recipient{ID: projections.RecipientKey(c, "u1"), Connector: c, ObjectID: "u1", Email: c + "@contoso.com",
			Status: events.RecipientActive, UpdatedAt: t0}
		evs = append(evs, events.New(events.TypeRecipientCreated, events.RecipientSubject(c, "u1"), c, "job1", 0, t0,
			events.RecipientChange{Recipient: r, Reason: "test"}))
	}
	seq, err := st.Append(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	kv, err := b.JS.KeyValue(ctx, projections.BucketRecipients)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, projections.RecipientKey("mine", "u1")); err != nil {
		t.Errorf("the held connector's recipient is not in KV: %v", err)
	}
	if _, err := kv.Get(ctx, projections.RecipientKey("theirs", "u1")); err == nil {
		t.Error("the other replica's connector's recipient was written")
	}
	if err := p.ReconcileConnector(ctx, "theirs"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, projections.RecipientKey("theirs", "u1")); err != nil {
		t.Errorf("after taking it over, the connector's recipient is not in KV: %v", err)
	}
	diffs, err := projections.Diff(ctx, b.JS, mustRebuild(t, st))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("KV differs from the stream after the takeover: %s", d)
	}
}

// startWriting starts a projector on a fresh embedded server that writes
// KV as writes says, and waits until it is ready.
func startWriting(t *testing.T, ctx context.Context, log *zap.Logger, writes func(string) projections.KVWrite) (*broker.Broker, *store.Store, *projections.Projector) {
	t.Helper()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := projections.New(ctx, b.JS, st, 1, log, projections.WriteKVFor(writes))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Run(ctx) }()
	<-p.Ready()
	return b, st, p
}

func mustRebuild(t *testing.T, st *store.Store) *projections.State {
	t.Helper()
	s, err := projections.Rebuild(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every KV write is conditional on the entry's revision as the projector
// last wrote or read it. When another replica wrote the entry since (it
// took the connector over while this one was paused after its lease
// check), the write is refused: a deposed writer leaves the other's value
// alone, and a holder reads the revision again and writes its own.
func TestKVWritesConditional(t *testing.T) {
	cases := []struct {
		name string
		// write is what the projector is told to do with the
		// connector's entries; deposed: until its write is refused,
		// then it knows another replica holds the connector.
		write   projections.KVWrite
		deposed bool
		want    string
	}{
		{name: "deposed holder leaves the new holder's value", write: projections.KVWriteNow, deposed: true, want: "theirs"},
		{name: "unheld connector's writer leaves the other's value", write: projections.KVWriteUnheld, want: "theirs"},
		{name: "holder writes over a stray write", write: projections.KVWriteNow, want: "state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			core, logs := observer.New(zap.InfoLevel)
			refusedLogged := func() bool { return logs.FilterMessageSnippet("KV writes refused").Len() > 0 }
			b, st, p := startWriting(t, ctx, zap.New(core), func(string) projections.KVWrite {
				if tc.deposed && refusedLogged() {
					return projections.KVSkip
				}
				return tc.write
			})
			t0 := time.Unix(1_790_000_000, 0)
			r := events.Recipient{ID: projections.RecipientKey("demo", "u1"), Connector: "demo", ObjectID: "u1",
				Email: "u1@contoso.com", Status: events.RecipientActive, UpdatedAt: t0}
			appendChange := func(typ string) {
				t.Helper()
				e := events.New(typ, events.RecipientSubject("demo", "u1"), "demo", "job1", 0, t0,
					events.RecipientChange{Recipient: r, Reason: "test"})
				seq, err := st.Append(ctx, []events.Event{e})
				if err != nil {
					t.Fatal(err)
				}
				if err := p.WaitFor(ctx, seq); err != nil {
					t.Fatal(err)
				}
			}
			appendChange(events.TypeRecipientCreated)
			kv, err := b.JS.KeyValue(ctx, projections.BucketRecipients)
			if err != nil {
				t.Fatal(err)
			}
			key := projections.RecipientKey("demo", "u1")
			if _, err := kv.Put(ctx, key, []byte(`"theirs"`)); err != nil {
				t.Fatal(err)
			}
			r.DisplayName = "Changed"
			appendChange(events.TypeRecipientUpdated)

			e, err := kv.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			got := "theirs"
			if string(e.Value()) != `"theirs"` {
				got = "state"
				if !strings.Contains(string(e.Value()), `"Changed"`) {
					t.Fatalf("KV holds %s; want the other replica's value or the state's", e.Value())
				}
			}
			if got != tc.want {
				t.Errorf("KV holds %s's value; want %s's", got, tc.want)
			}
			if !refusedLogged() {
				t.Error("the refused write was not logged")
			}
		})
	}
}
