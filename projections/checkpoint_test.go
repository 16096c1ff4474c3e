package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// world writes jobs of a small tenant to a stream the way the runner does:
// sync states, directory facts, recipient decisions (created, updated with
// an email change, archived, restored, removed), so that every part of the
// state a checkpoint holds is exercised.
type world struct {
	t   *testing.T
	st  *store.Store
	n   int
	at  time.Time
	job int
}

// sync appends one job's events; round changes which users exist, what
// their emails are and which are archived or removed.
func (w *world) sync(ctx context.Context, round int) (jobID string, seq uint64) {
	w.t.Helper()
	w.job++
	jobID = fmt.Sprintf("job-%03d", w.job)
	at := w.at.Add(time.Duration(w.job) * time.Minute)
	var evs []events.Event
	state := func(s string, part int) {
		d := events.SyncState{JobID: jobID, Connector: "demo", State: s, Full: round == 0}
		if s == events.StateCompleted {
			d.Cursor = "cursor-" + jobID
			d.Summary = &events.Summary{FullRead: round == 0, Recipients: w.n}
		}
		evs = append(evs, events.New(events.TypeSyncState, events.SyncSubject("demo", jobID), "demo", jobID, part, at, d))
	}
	state(events.StatePending, 0)
	state(events.StateSaving, 1)
	members := []string{}
	for i := range w.n {
		id := fmt.Sprintf("u%03d", i)
		email := fmt.Sprintf("user%d.r%d@contoso.com", i, round/2) // changes every other round
		u := events.User{ID: id, Mail: email, DisplayName: "User " + id, AccountEnabled: true, UserType: "Member"}
		evs = append(evs, events.New(events.TypeUserChanged, events.DirectorySubject("demo", "user", id), "demo", jobID, 0, at, u))
		r := events.Recipient{ID: projections.RecipientKey("demo", id), Connector: "demo", ObjectID: id, Email: email,
			DisplayName: u.DisplayName, Groups: []string{"G"}, Tags: []string{"round-" + strconv.Itoa(round)}, Status: events.RecipientActive, UpdatedAt: at}
		typ := events.TypeRecipientUpdated
		switch {
		case round == 0:
			typ = events.TypeRecipientCreated
		case i%7 == round%7:
			typ, r.Status = events.TypeRecipientArchived, events.RecipientArchived
		case i%11 == round%11:
			typ = events.TypeRecipientRemoved
		}
		evs = append(evs, events.New(typ, events.RecipientSubject("demo", id), "demo", jobID, 0, at,
			events.RecipientChange{Recipient: r, Changed: []string{"tags"}, Reason: "test round " + strconv.Itoa(round)}))
		if i%3 == 0 {
			members = append(members, id)
		}
	}
	evs = append(evs,
		events.New(events.TypeGroupChanged, events.DirectorySubject("demo", "group", "g1"), "demo", jobID, 0, at,
			events.Group{ID: "g1", DisplayName: "G", GroupTypes: []string{"Unified"}}),
		events.New(events.TypeGroupMembersChanged, events.DirectorySubject("demo", "group", "g1"), "demo", jobID, 0, at,
			events.MembersChanged{GroupID: "g1", Added: members}))
	if round%2 == 1 {
		evs = append(evs, events.New(events.TypeUserRemoved, events.DirectorySubject("demo", "user", "u001"), "demo", jobID, 0, at,
			events.Removed{ID: "u001", Reason: "deleted"}))
	}
	state(events.StateCompleted, 2)
	seq, err := w.st.Append(ctx, evs)
	if err != nil {
		w.t.Fatalf("appending %s: %v", jobID, err)
	}
	return jobID, seq
}

// running is a projector started with Run until stop.
type running struct {
	*projections.Projector
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, js jetstream.JetStream, st *store.Store, opts ...projections.Option) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := projections.New(ctx, js, st, 1, zaptest.NewLogger(t), opts...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{Projector: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t, false) })
	select {
	case <-p.Ready():
	case err := <-r.done:
		t.Fatalf("the read models stopped before ready: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the read models were not ready within a minute")
	}
	return r
}

// stop ends Run and, with checkpoint, writes the checkpoint as a clean
// stop of the daemon does.
func (r *running) stop(t *testing.T, checkpoint bool) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	r.done = nil
	if checkpoint {
		if err := r.Checkpoint(context.Background()); err != nil {
			t.Fatalf("checkpoint at stop: %v", err)
		}
	}
}

func canonical(t *testing.T, s *projections.State) []byte {
	t.Helper()
	b, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func live(t *testing.T, p *projections.Projector) []byte {
	t.Helper()
	var b []byte
	p.View(func(s *projections.State) { b = canonical(t, s) })
	return b
}

// assertEqualsRebuild checks the invariant: the live state equals a
// rebuild from the first event, in the checkpoint's canonical form, and
// the KV read models equal the rebuild byte for byte.
func assertEqualsRebuild(t *testing.T, ctx context.Context, js jetstream.JetStream, st *store.Store, p *projections.Projector) {
	t.Helper()
	last, err := st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := projections.Rebuild(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := live(t, p), canonical(t, rebuilt); !bytes.Equal(got, want) {
		t.Fatalf("live state differs from a rebuild:\nlive    %.400s\nrebuilt %.400s", got, want)
	}
	diffs, err := projections.Diff(ctx, js, rebuilt)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 0 {
		t.Fatalf("KV differs from a rebuild: %v", diffs)
	}
}

// histories reads the jobs' change lists and the histories of the emails,
// as the API answers them.
func histories(t *testing.T, ctx context.Context, p *projections.Projector, jobs []string, emails ...string) string {
	t.Helper()
	var out bytes.Buffer
	for _, id := range jobs {
		c, err := p.JobChanges(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s: %d changes %v\n", id, len(c), c)
	}
	for _, email := range emails {
		now, h, err := p.History(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "%s: now %v history %v\n", email, now, h)
	}
	return out.String()
}

// A start after a checkpoint loads it, replays only the tail, and ends
// equal to a rebuild from the first event; change lists and histories read
// the same before and after.
func TestCheckpointPlusTailEqualsRebuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, n: 40, at: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	var jobs []string
	first := start(t, b.JS, st, projections.WithCheckpoints(1, time.Hour))
	for round := range 4 {
		id, _ := w.sync(ctx, round)
		jobs = append(jobs, id)
		// A checkpoint after every job (every = 1): each start below
		// loads a different one.
		assertEqualsRebuild(t, ctx, b.JS, st, first.Projector)
	}
	// Current and former emails (they change every other round), of
	// recipients archived and removed on the way.
	emails := []string{"user5.r0@contoso.com", "USER5.R1@contoso.com", "user11.r0@contoso.com", "user13.r1@contoso.com"}
	before := histories(t, ctx, first.Projector, jobs, emails...)
	if !bytes.Contains([]byte(before), []byte("archived")) || !bytes.Contains([]byte(before), []byte("removed")) {
		t.Fatalf("the scenario made no history: %s", before)
	}
	first.stop(t, false) // like a SIGKILL: no checkpoint at stop
	cpSeq := first.Seq()

	// The tail: two more jobs while no daemon runs.
	for round := 4; round < 6; round++ {
		id, _ := w.sync(ctx, round)
		jobs = append(jobs, id)
	}
	second := start(t, b.JS, st, projections.WithCheckpoints(1, time.Hour))
	if got := second.StartedFrom(); got == 0 || got > cpSeq {
		t.Fatalf("started from checkpoint %d; want one at or before %d (the last event folded before the stop)", got, cpSeq)
	}
	assertEqualsRebuild(t, ctx, b.JS, st, second.Projector)
	// The same jobs' change lists read the same. The tail's jobs add to
	// the recipients' histories: those are compared across the clean
	// restart below, on the same stream.
	if got, want := histories(t, ctx, second.Projector, jobs[:4]), histories(t, ctx, first.Projector, jobs[:4]); got != want {
		t.Errorf("change lists differ after the restart:\nbefore %s\nafter  %s", want, got)
	}
	after := histories(t, ctx, second.Projector, jobs, emails...)

	// A clean stop writes a checkpoint of everything: the next start
	// replays nothing.
	second.stop(t, true)
	last, _ := st.LastSeq(ctx)
	third := start(t, b.JS, st, projections.WithCheckpoints(1, time.Hour))
	if got := third.StartedFrom(); got != last {
		t.Errorf("started from checkpoint %d after a clean stop; want %d, the last event", got, last)
	}
	assertEqualsRebuild(t, ctx, b.JS, st, third.Projector)
	if got := histories(t, ctx, third.Projector, jobs, emails...); got != after {
		t.Errorf("change lists and histories differ after a clean restart:\nbefore %s\nafter  %s", after, got)
	}
}

// A checkpoint that cannot be trusted is not loaded: the start replays the
// whole stream and still ends equal to a rebuild.
func TestCheckpointFallsBackToFullReplay(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo)
	}{
		{"corrupt content", func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo) {
			rewrite(t, ctx, obs, info, nil, []byte("this is not a checkpoint"))
		}},
		{"truncated content", func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo) {
			data, err := obs.GetBytes(ctx, info.Name)
			if err != nil {
				t.Fatal(err)
			}
			rewrite(t, ctx, obs, info, nil, data[:len(data)/2])
		}},
		{"older schema version", func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo) {
			rewrite(t, ctx, obs, info, map[string]string{"schema-version": strconv.Itoa(projections.SchemaVersion - 1)}, nil)
		}},
		{"of another stream", func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo) {
			rewrite(t, ctx, obs, info, map[string]string{"event-id": "0123456789abcdef0123456789abcdef"}, nil)
		}},
		{"ahead of the stream", func(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo) {
			rewrite(t, ctx, obs, info, map[string]string{"stream-seq": "999999"}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b, st, w, last := checkpointedAfter(t, ctx, 3)
			// The undamaged checkpoint loads: the damage is what the
			// fallback below answers.
			if s, err := loadCheckpoint(ctx, b, st); err != nil || s.LastSeq != last {
				t.Fatalf("the checkpoint written at stop does not load: %v", err)
			}
			obs, err := b.JS.ObjectStore(ctx, projections.CheckpointBucket)
			if err != nil {
				t.Fatal(err)
			}
			info, err := obs.GetInfo(ctx, projections.CheckpointObject)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, ctx, obs, info)
			if _, err := loadCheckpoint(ctx, b, st); !errors.Is(err, projections.ErrNoCheckpoint) {
				t.Fatalf("the damaged checkpoint loads (err %v); want ErrNoCheckpoint", err)
			}
			w.sync(ctx, 3)
			again := start(t, b.JS, st)
			if got := again.StartedFrom(); got != 0 {
				t.Errorf("started from the damaged checkpoint at %d; want a full replay", got)
			}
			assertEqualsRebuild(t, ctx, b.JS, st, again.Projector)
		})
	}
}

// checkpointedAfter writes rounds jobs of a 20-user tenant to a new
// stream with the read models following, then stops them cleanly (a
// checkpoint at the last event, last).
func checkpointedAfter(t *testing.T, ctx context.Context, rounds int) (*broker.Broker, *store.Store, *world, uint64) {
	t.Helper()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, n: 20, at: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	p := start(t, b.JS, st)
	for round := range rounds {
		w.sync(ctx, round)
	}
	last, _ := st.LastSeq(ctx)
	if err := p.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	p.stop(t, true)
	return b, st, w, last
}

func loadCheckpoint(ctx context.Context, b *broker.Broker, st *store.Store) (*projections.State, error) {
	cp, err := projections.OpenCheckpoints(ctx, b.JS, st, 1)
	if err != nil {
		return nil, err
	}
	return cp.Load(ctx)
}

// rewrite replaces the checkpoint object with data (nil: the same data)
// and its metadata with meta's keys changed.
func rewrite(t *testing.T, ctx context.Context, obs jetstream.ObjectStore, info *jetstream.ObjectInfo, meta map[string]string, data []byte) {
	t.Helper()
	if data == nil {
		var err error
		if data, err = obs.GetBytes(ctx, info.Name); err != nil {
			t.Fatal(err)
		}
	}
	m := map[string]string{}
	for k, v := range info.Metadata {
		m[k] = v
	}
	for k, v := range meta {
		m[k] = v
	}
	if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: info.Name, Metadata: m}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// A start from a checkpoint writes to KV only what the tail changed,
// unless a bucket is new (deleted while the daemon was stopped): then it
// writes every entry, and KV equals a rebuild again.
func TestCheckpointStartRefillsNewBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, st, _, last := checkpointedAfter(t, ctx, 2)
	if err := b.JS.DeleteKeyValue(ctx, projections.BucketRecipients); err != nil {
		t.Fatal(err)
	}
	// No tail: nothing would mark the recipients dirty.
	again := start(t, b.JS, st)
	if again.StartedFrom() != last {
		t.Fatalf("started from %d; want the checkpoint at %d", again.StartedFrom(), last)
	}
	assertEqualsRebuild(t, ctx, b.JS, st, again.Projector)
}

// Replicas stopping together each write a final checkpoint: one that
// folded less, written last, must not hide the newer one (a shared object
// kept whichever write ended last), and a damaged newest checkpoint
// leaves the next newest to load.
func TestCheckpointsOfSeveralWriters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Writer "" (the object projections) at the end of two rounds.
	b, st, w, older := checkpointedAfter(t, ctx, 2)
	// Writer a folds a third round and stops.
	w.sync(ctx, 2)
	newer, _ := st.LastSeq(ctx)
	a := start(t, b.JS, st, projections.WithCheckpointWriter("a"))
	if err := a.WaitFor(ctx, newer); err != nil {
		t.Fatal(err)
	}
	a.stop(t, true)
	// The first writer's older checkpoint is written again, last.
	obs, err := b.JS.ObjectStore(ctx, projections.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(ctx, projections.CheckpointObjectOf(""))
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, ctx, obs, info, nil, nil)
	if s, err := loadCheckpoint(ctx, b, st); err != nil || s.LastSeq != newer {
		t.Fatalf("loaded the checkpoint at %v (%v); want writer a's at %d, the newest", lastSeq(s), err, newer)
	}
	// Writer a's is damaged: the older one loads.
	ainfo, err := obs.GetInfo(ctx, projections.CheckpointObjectOf("a"))
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, ctx, obs, ainfo, map[string]string{"event-id": "not-the-event"}, nil)
	if s, err := loadCheckpoint(ctx, b, st); err != nil || s.LastSeq != older {
		t.Fatalf("with the newest damaged, loaded the checkpoint at %v (%v); want the older at %d", lastSeq(s), err, older)
	}
}

func lastSeq(s *projections.State) any {
	if s == nil {
		return "none"
	}
	return s.LastSeq
}
