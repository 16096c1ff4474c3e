package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// recipients returns n recipient events of connector c's job.
func recipients(c, job string, n int) []events.Event {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	evs := make([]events.Event, n)
	for i := range evs {
		id := fmt.Sprintf("u%05d", i)
		evs[i] = events.New(events.TypeRecipientCreated, events.RecipientSubject(c, id), c, job, 0, at,
			events.RecipientChange{Recipient: events.Recipient{ID: c + "." + id, Connector: c, ObjectID: id, Email: id + "@contoso.com"}, Reason: "test"})
	}
	return evs
}

// stored reads every event of the stream.
func stored(t *testing.T, st *store.Store) []events.Event {
	t.Helper()
	var out []events.Event
	if err := st.Read(context.Background(), []string{events.SubjectRoot + ".>"}, 1, 0, func(m store.Message) error {
		if m.Err != nil {
			return m.Err
		}
		out = append(out, m.Event)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A replica appends under its claim; once another claims the connector
// the first one's appends are refused, whole batches and single events
// alike, and a claim of an older epoch is refused too. Every stored event
// carries the epoch of the claim in force when it was stored.
func TestFencedAppend(t *testing.T) {
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	a, err := st.Claim(ctx, events.Claim{Connector: "demo", Epoch: 5, Replica: "a"}, at)
	if err != nil {
		t.Fatal(err)
	}
	// Another connector's claim and events do not disturb demo's fence.
	o, err := st.Claim(ctx, events.Claim{Connector: "other", Epoch: 6, Replica: "b"}, at)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendFenced(ctx, o, recipients("other", "j0", 10), nil); err != nil {
		t.Fatal(err)
	}
	var progress []int
	n := 2*store.MaxBatch + 17
	if _, err := st.AppendFenced(ctx, a, recipients("demo", "j1", n), func(stored int) { progress = append(progress, stored) }); err != nil {
		t.Fatal(err)
	}
	if want := []int{store.MaxBatch, 2 * store.MaxBatch, n}; fmt.Sprint(progress) != fmt.Sprint(want) {
		t.Errorf("progress %v, want %v", progress, want)
	}

	b2, err := st.Claim(ctx, events.Claim{Connector: "demo", Epoch: 9, Replica: "b"}, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3, store.MaxBatch + 1} {
		_, err := st.AppendFenced(ctx, a, recipients("demo", fmt.Sprintf("late%d", k), k), nil)
		if !errors.Is(err, store.ErrFenced) {
			t.Errorf("append of %d events under the superseded claim: %v; want ErrFenced", k, err)
		}
	}
	if _, err := st.Claim(ctx, events.Claim{Connector: "demo", Epoch: 7, Replica: "a"}, at); !errors.Is(err, store.ErrFenced) {
		t.Errorf("claim of an older epoch: %v; want ErrFenced", err)
	}
	if _, err := st.AppendFenced(ctx, b2, recipients("demo", "j2", 3), nil); err != nil {
		t.Fatal(err)
	}
	last, lastSeq, err := st.LastClaim(ctx, "demo")
	if err != nil || last.Epoch != 9 || last.Previous != 5 || last.Replica != "b" || lastSeq != b2.ClaimSeq {
		t.Errorf("LastClaim = %+v at %d, %v; want epoch 9 after 5 by b at %d", last, lastSeq, err, b2.ClaimSeq)
	}

	epoch := map[string]uint64{}
	counts := map[string]int{}
	for _, e := range stored(t, st) {
		c := strings.Split(e.Subject, ".")[2]
		if e.Type == events.TypeConnectorClaimed {
			if e.Epoch <= epoch[c] {
				t.Errorf("event %d: claim of epoch %d after epoch %d", e.Seq, e.Epoch, epoch[c])
			}
			epoch[c] = e.Epoch
			continue
		}
		if e.Epoch != epoch[c] {
			t.Errorf("event %d (%s, job %s) has epoch %d; connector %s's claim in force is of epoch %d", e.Seq, e.Subject, e.JobID, e.Epoch, c, epoch[c])
		}
		counts[e.JobID]++
	}
	if want := map[string]int{"j0": 10, "j1": n, "j2": 3}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("stored events by job %v, want %v", counts, want)
	}
}

// A claim stored while a long append runs cuts it off at a batch
// boundary: no event of the old epoch lands after the new claim.
func TestClaimCutsOffRunningAppend(t *testing.T) {
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := st.Claim(ctx, events.Claim{Connector: "demo", Epoch: 1, Replica: "a"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := st.AppendFenced(ctx, a, recipients("demo", "big", 40*store.MaxBatch), func(n int) {
			if n == store.MaxBatch {
				close(started)
			}
		})
		done <- err
	}()
	<-started
	if _, err := st.Claim(ctx, events.Claim{Connector: "demo", Epoch: 2, Replica: "b"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrFenced) {
		t.Fatalf("the running append ended with %v; want ErrFenced", err)
	}
	claimed := false
	for _, e := range stored(t, st) {
		if e.Type == events.TypeConnectorClaimed && e.Epoch == 2 {
			claimed = true
			continue
		}
		if claimed && e.Epoch < 2 {
			t.Fatalf("event %d of epoch %d stored after the claim of epoch 2", e.Seq, e.Epoch)
		}
	}
}
