package projections

import (
	"errors"
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
