package jobs

import (
	"maps"
	"slices"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// A group whose whole member list an incremental read sent
// (Membership.replace) loses the members it held and the list lacks, even
// when the list comes in several messages; a group without replace keeps
// them.
func TestMembershipReplace(t *testing.T) {
	old := &projections.Directory{Users: map[string]events.User{}, Groups: map[string]events.Group{},
		Members: map[string]map[string]struct{}{}}
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		old.Users[u] = events.User{ID: u}
	}
	for _, g := range []string{"g1", "g2"} {
		old.Groups[g] = events.Group{ID: g, GroupTypes: []string{}}
		old.Members[g] = map[string]struct{}{"u1": {}, "u2": {}, "u3": {}}
	}
	tests := []struct {
		name    string
		batches []*connectorv1.SyncBatch
		want    map[string][]string
	}{
		{"replace in two messages", []*connectorv1.SyncBatch{
			{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u2"}, Replace: true}}},
			{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u4"}, Replace: true}}},
			{Done: true}},
			map[string][]string{"g1": {"u2", "u4"}, "g2": {"u1", "u2", "u3"}}},
		{"additions only", []*connectorv1.SyncBatch{
			{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u4"}}}},
			{Done: true}},
			map[string][]string{"g1": {"u1", "u2", "u3", "u4"}, "g2": {"u1", "u2", "u3"}}},
		{"a replace forgotten by a restart", []*connectorv1.SyncBatch{
			{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u2"}, Replace: true}}},
			{Restart: true},
			{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u4"}}}},
			{Done: true}},
			map[string][]string{"g1": {"u1", "u2", "u3", "u4"}, "g2": {"u1", "u2", "u3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSnapshot()
			var sum events.Summary
			for i, b := range tt.batches {
				if err := s.add(b, &sum); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			s.replaceMembers(old)
			nd := nextDirectory(old, s)
			for g, want := range tt.want {
				if got := slices.Sorted(maps.Keys(nd.Members[g])); !slices.Equal(got, want) {
					t.Errorf("%s members %v; want %v", g, got, want)
				}
			}
		})
	}
}
