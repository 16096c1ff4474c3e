package projections

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dirsync/dirsync/events"
)

func TestApply(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	job := "j1"
	state := func(s string) events.Event {
		return events.New(events.TypeSyncState, events.SyncSubject("demo", job), "demo", job, 0, at,
			events.SyncState{JobID: job, Connector: "demo", State: s, Cursor: "cur"})
	}
	members := func(add, rm []string) events.Event {
		return events.New(events.TypeGroupMembersChanged, events.DirectorySubject("demo", "group", "g1"), "demo", job, 0, at,
			events.MembersChanged{GroupID: "g1", Added: add, Removed: rm})
	}
	rec := events.Recipient{ID: "demo.u1", Connector: "demo", ObjectID: "u1", Email: "a@b.c"}
	tests := []struct {
		name      string
		events    []events.Event
		malformed int
		check     func(t *testing.T, s *State)
	}{
		{
			name:   "job states fold into job and status",
			events: []events.Event{state(events.StatePending), state(events.StateStarted), state(events.StateCompleted)},
			check: func(t *testing.T, s *State) {
				j := s.Jobs[job]
				if j.State != events.StateCompleted || len(j.History) != 3 || j.FinishedAt == nil {
					t.Errorf("job = %+v", j)
				}
				st := s.SyncStatus("demo")
				if st.LastSyncAt == nil || st.CurrentJob != "" || st.LastJob != job || s.Cursors["demo"] != "cur" {
					t.Errorf("status = %+v, cursor %q", st, s.Cursors["demo"])
				}
			},
		},
		{
			name:   "a final job ignores a late duplicate",
			events: []events.Event{state(events.StatePending), state(events.StateFailed), state(events.StateCompleted)},
			check: func(t *testing.T, s *State) {
				if j := s.Jobs[job]; j.State != events.StateFailed || len(j.History) != 2 {
					t.Errorf("job = %+v", j)
				}
				if s.SyncStatus("demo").LastSyncAt != nil {
					t.Error("a FAILED job set the last sync date")
				}
			},
		},
		{
			name: "memberships add and remove; group removal drops members",
			events: []events.Event{
				events.New(events.TypeGroupChanged, events.DirectorySubject("demo", "group", "g1"), "demo", job, 0, at, events.Group{ID: "g1", DisplayName: "G"}),
				members([]string{"u1", "u2"}, nil), members(nil, []string{"u1"}),
			},
			check: func(t *testing.T, s *State) {
				if g := s.GroupView("demo", "g1"); g == nil || g.Members != 1 {
					t.Errorf("group = %+v", g)
				}
			},
		},
		{
			name: "recipient created then removed",
			events: []events.Event{
				events.New(events.TypeRecipientCreated, events.RecipientSubject("demo", "u1"), "demo", job, 0, at, events.RecipientChange{Recipient: rec}),
				events.New(events.TypeRecipientRemoved, events.RecipientSubject("demo", "u1"), "demo", job, 0, at, events.RecipientChange{Recipient: rec}),
			},
			check: func(t *testing.T, s *State) {
				if len(s.Recipients["demo"]) != 0 || s.Value(Key{BucketRecipients, "demo.u1"}) != nil {
					t.Errorf("recipient still there: %+v", s.Recipients)
				}
			},
		},
		{
			name: "malformed events change nothing and are counted",
			events: []events.Event{
				{Type: "io.example.unknown.v1", Subject: "dirsync.x.demo.y", Data: map[string]string{}},
				{Type: events.TypeUserChanged, Subject: "nope", Data: events.User{ID: "u1"}},
				events.New(events.TypeUserChanged, events.DirectorySubject("demo", "user", "u1"), "demo", job, 0, at, events.User{}),
				events.New(events.TypeRecipientCreated, events.RecipientSubject("demo", "u1"), "demo", job, 0, at,
					events.RecipientChange{Recipient: events.Recipient{ObjectID: "u1", Connector: "other"}}),
			},
			malformed: 4,
			check: func(t *testing.T, s *State) {
				if len(s.Keys()) != 0 {
					t.Errorf("malformed events produced read models: %v", s.Keys())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for _, e := range tt.events {
				if _, err := s.Apply(e); err != nil && !errors.Is(err, events.ErrMalformed) {
					t.Fatalf("unexpected error kind: %v", err)
				}
			}
			if s.Malformed != tt.malformed {
				t.Errorf("malformed = %d, want %d", s.Malformed, tt.malformed)
			}
			tt.check(t, s)
		})
	}
}

// The checkpoint form gives back the same state, including the corners a
// start meets: a connector with recipients and no directory, one with a
// directory and no recipients, empty maps and lists beside absent ones.
func TestCheckpointFormRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := NewState()
	s.LastSeq, s.Malformed = 42, 1
	s.Recipients["only-recipients"] = map[string]events.Recipient{"u1": {ID: "only-recipients.u1", Connector: "only-recipients", ObjectID: "u1",
		Email: "a@b.c", Groups: []string{}, Tags: nil, Status: events.RecipientActive, UpdatedAt: at}}
	d := s.Directory("only-directory")
	d.Users["u2"] = events.User{ID: "u2", AccountEnabled: true}
	d.Groups["g1"] = events.Group{ID: "g1", GroupTypes: []string{}}
	d.Members["g1"] = map[string]struct{}{"u2": {}}
	s.Recipients["emptied"] = map[string]events.Recipient{}
	s.Jobs["j1"] = &Job{ID: "j1", Connector: "only-directory", State: events.StateCompleted, History: []StateChange{{State: events.StateCompleted, At: at}}}
	s.Status["only-directory"] = &SyncStatus{Connector: "only-directory", LastSyncAt: &at}
	s.Cursors["only-directory"] = "c"
	s.FormerEmails["old@b.c"] = []string{"only-recipients.u1"}
	s.Spans["j1"] = ChangeSpan{Connectors: []string{"only-recipients"}, First: 3, Last: 9, Count: 2}

	var buf bytes.Buffer
	if err := encodeState(&buf, s); err != nil {
		t.Fatal(err)
	}
	back, err := decodeState(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Canonical()
	got, _ := back.Canonical()
	if !bytes.Equal(got, want) {
		t.Fatalf("round trip differs:\ngot  %s\nwant %s", got, want)
	}
	for _, k := range s.Keys() {
		a, _ := encode(s.Value(k))
		b, _ := encode(back.Value(k))
		if !bytes.Equal(a, b) {
			t.Errorf("%v: %s, after the round trip %s", k, a, b)
		}
	}
	if len(back.Keys()) != len(s.Keys()) {
		t.Errorf("%d keys after the round trip, %d before", len(back.Keys()), len(s.Keys()))
	}
	if _, ok := back.Directories["only-recipients"]; ok {
		t.Error("a connector without a directory got one")
	}
}

// TestSyncStatusCountsFollowTheFold checks the recipient counts the fold
// keeps for SyncStatus against a count of the recipients, after each of
// a random sequence of recipient events, and after a checkpoint round
// trip.
func TestSyncStatusCountsFollowTheFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := NewState()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	types := []string{events.TypeRecipientCreated, events.TypeRecipientUpdated, events.TypeRecipientArchived,
		events.TypeRecipientRestored, events.TypeRecipientRemoved}
	check := func(s *State, step int) {
		t.Helper()
		var active, archived int
		for _, r := range s.Recipients["demo"] {
			if r.Status == events.RecipientArchived {
				archived++
			} else {
				active++
			}
		}
		if st := s.SyncStatus("demo"); st.Recipients != active || st.Archived != archived {
			t.Fatalf("step %d: SyncStatus says %d active, %d archived; the recipients are %d and %d", step, st.Recipients, st.Archived, active, archived)
		}
	}
	for step := range 500 {
		id := fmt.Sprintf("u%d", rng.IntN(20))
		typ := types[rng.IntN(len(types))]
		status := events.RecipientActive
		if typ == events.TypeRecipientArchived || (typ == events.TypeRecipientUpdated && rng.IntN(2) == 0) {
			status = events.RecipientArchived
		}
		r := events.Recipient{ID: "demo." + id, Connector: "demo", ObjectID: id, Email: id + "@contoso.com", Status: status}
		e := events.New(typ, events.RecipientSubject("demo", id), "demo", "j", step, at, events.RecipientChange{Recipient: r})
		if _, err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
		check(s, step)
	}
	enc, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeState(enc.Data)
	if err != nil {
		t.Fatal(err)
	}
	check(back, -1)
}

// One writer per connector, in the fold too: once a connector is claimed
// at an epoch, events of an older epoch (or of none) are ignored by
// every replica alike, and so is a claim that is not newer; other
// connectors are not affected.
func TestApplyIgnoresSupersededEpochs(t *testing.T) {
	at := time.Date(2026, 12, 4, 3, 4, 5, 0, time.UTC)
	created := func(c, id string, epoch uint64) events.Event {
		e := events.New(events.TypeRecipientCreated, events.RecipientSubject(c, id), c, "j", 0, at,
			events.RecipientChange{Recipient: events.Recipient{ID: c + "." + id, Connector: c, ObjectID: id, Email: id + "@x.com"}, Reason: "r"})
		e.Epoch = epoch
		return e
	}
	claim := func(c string, epoch uint64, by string) events.Event {
		return events.NewClaim(events.Claim{Connector: c, Epoch: epoch, Replica: by}, at)
	}
	s := NewState()
	for i, e := range []events.Event{
		created("demo", "before-claims", 0), // stored before claims existed
		claim("demo", 3, "a"),
		created("demo", "a1", 3),
		claim("demo", 8, "b"),
		created("demo", "late-a", 3),   // a lost the lease: ignored
		created("demo", "unfenced", 0), // an older dirsyncd: ignored
		claim("demo", 5, "a"),          // not newer: ignored
		created("demo", "b1", 8),       // b's
		created("other", "o1", 0),      // another connector, never claimed
	} {
		e.Seq = uint64(i + 1)
		if _, err := s.Apply(e); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
	}
	var got []string
	for c, rs := range s.Recipients {
		for id := range rs {
			got = append(got, c+"."+id)
		}
	}
	slices.Sort(got)
	if want := []string{"demo.a1", "demo.b1", "demo.before-claims", "other.o1"}; !slices.Equal(got, want) {
		t.Errorf("recipients %v, want %v", got, want)
	}
	if s.Superseded != 3 {
		t.Errorf("Superseded = %d, want 3", s.Superseded)
	}
	if st := s.SyncStatus("demo"); st.Epoch != 8 || st.ClaimedBy != "b" {
		t.Errorf("demo status claim = %d by %q, want 8 by b", st.Epoch, st.ClaimedBy)
	}
	if st := s.SyncStatus("other"); st.Epoch != 0 || st.ClaimedBy != "" {
		t.Errorf("other status claim = %d by %q, want none", st.Epoch, st.ClaimedBy)
	}
	// A claim whose data contradicts its envelope is malformed.
	bad := claim("demo", 9, "c")
	bad.Epoch = 10
	if _, err := s.Apply(bad); !errors.Is(err, events.ErrMalformed) {
		t.Errorf("claim with mismatched epochs: %v, want malformed", err)
	}
}
