package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
