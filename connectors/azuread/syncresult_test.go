package azuread

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// hangGuard bounds calls that must end on their own (a budget spent, a
// canceled context, a refused answer). It is far above any machine's time
// for them, so it tells "ended" from "hung" or "waited the default
// budget", and measures nothing closer than that.
const hangGuard = 60 * time.Second

// syncResult is what one Sync sent, checked against the contract's
// invariants as it is collected.
type syncResult struct {
	batches []*connectorv1.SyncBatch
	users   []*connectorv1.User
	groups  []*connectorv1.Group
	added   map[string][]string // group ID -> user IDs added, in order
	removed map[string][]string // group ID -> user IDs removed, in order
	// group ID -> group IDs (nested groups) added and removed, in order
	addedGroups, removedGroups map[string][]string
	last                       *connectorv1.SyncBatch
}

// user returns the only User sent for id, or nil.
func (r *syncResult) user(t *testing.T, id string) *connectorv1.User {
	t.Helper()
	var found *connectorv1.User
	for _, u := range r.users {
		if u.GetId() == id {
			if found != nil {
				t.Errorf("user %s sent twice", id)
			}
			found = u
		}
	}
	return found
}

// group returns the only Group sent for id, or nil.
func (r *syncResult) group(t *testing.T, id string) *connectorv1.Group {
	t.Helper()
	var found *connectorv1.Group
	for _, g := range r.groups {
		if g.GetId() == id {
			if found != nil {
				t.Errorf("group %s sent twice", id)
			}
			found = g
		}
	}
	return found
}

// objects counts users, groups and member IDs sent.
func (r *syncResult) objects() int {
	n := len(r.users) + len(r.groups)
	for _, ids := range r.added {
		n += len(ids)
	}
	for _, ids := range r.removed {
		n += len(ids)
	}
	for _, ids := range r.addedGroups {
		n += len(ids)
	}
	for _, ids := range r.removedGroups {
		n += len(ids)
	}
	return n
}

// runSync runs one Sync and collects what it sent. It fails the test on a
// batch that breaks the contract (too large, done before the end, no
// progress).
func runSync(t *testing.T, c *Connector, req *connectorv1.SyncRequest) (*syncResult, error) {
	t.Helper()
	r := &syncResult{added: map[string][]string{}, removed: map[string][]string{},
		addedGroups: map[string][]string{}, removedGroups: map[string][]string{}}
	err := c.Sync(context.Background(), req, func(b *connectorv1.SyncBatch) error {
		if r.last != nil && r.last.GetDone() {
			t.Errorf("batch after the final one")
		}
		n := len(b.GetUsers()) + len(b.GetGroups())
		for _, m := range b.GetMemberships() {
			n += len(m.GetAddedUserIds()) + len(m.GetRemovedUserIds()) + len(m.GetAddedGroupIds()) + len(m.GetRemovedGroupIds())
			r.added[m.GetGroupId()] = append(r.added[m.GetGroupId()], m.GetAddedUserIds()...)
			r.removed[m.GetGroupId()] = append(r.removed[m.GetGroupId()], m.GetRemovedUserIds()...)
			if ids := m.GetAddedGroupIds(); len(ids) > 0 {
				r.addedGroups[m.GetGroupId()] = append(r.addedGroups[m.GetGroupId()], ids...)
			}
			if ids := m.GetRemovedGroupIds(); len(ids) > 0 {
				r.removedGroups[m.GetGroupId()] = append(r.removedGroups[m.GetGroupId()], ids...)
			}
		}
		if n > connector.MaxBatchObjects {
			t.Errorf("batch %d holds %d objects", len(r.batches), n)
		}
		if b.GetProgress() == nil {
			t.Errorf("batch %d has no progress", len(r.batches))
		}
		if !b.GetDone() && (b.GetCursor() != "" || b.GetComplete() || b.GetResyncReason() != "") {
			t.Errorf("batch %d is not the last but has cursor/complete/resync_reason", len(r.batches))
		}
		r.batches = append(r.batches, b)
		r.users = append(r.users, b.GetUsers()...)
		r.groups = append(r.groups, b.GetGroups()...)
		r.last = b
		return nil
	})
	if err == nil && (r.last == nil || !r.last.GetDone()) {
		t.Errorf("Sync returned nil without a final batch")
	}
	if err != nil && r.last != nil && r.last.GetDone() {
		t.Errorf("Sync failed (%v) after sending its final batch", err)
	}
	return r, err
}

// mustSync is runSync that fails the test on an error.
func mustSync(t *testing.T, c *Connector, req *connectorv1.SyncRequest) *syncResult {
	t.Helper()
	r, err := runSync(t, c, req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return r
}

// sorted returns a sorted copy.
func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
