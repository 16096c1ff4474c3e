package azuread

import (
	"context"
	"maps"
	"sync"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Sync phases, as reported in Progress.phase. Members come with their
// groups (groups/delta), so there is no phase of their own.
const (
	// phaseReading: users/delta and groups/delta are read side by side.
	phaseReading = "users and groups"
	phaseDone    = "done"
)

// batcher cuts the stream of directory objects into batches of at most
// max objects (users, groups and member IDs together) and sends each with
// a snapshot of the running progress. The users and groups readers share
// it, so every method locks: a batch may hold users and groups together,
// which the contract allows.
type batcher struct {
	mu sync.Mutex
	// ctx, when set, stops sending once the sync is canceled: the other
	// reader may still be mid-page.
	ctx      context.Context
	send     func(*connectorv1.SyncBatch) error
	max      int
	stats    *stats
	cur      *connectorv1.SyncBatch
	n        int
	progress connectorv1.Progress
	batches  int
	// retry is the retry wave under way (nil when none), sent with every
	// batch's progress until it ends.
	retry *connectorv1.Retrying
}

func newBatcher(send func(*connectorv1.SyncBatch) error, st *stats) *batcher {
	return &batcher{send: send, max: connector.MaxBatchObjects, stats: st, cur: &connectorv1.SyncBatch{}}
}

// setPhase names what the reader is doing now.
func (b *batcher) setPhase(phase string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.progress.Phase = phase
}

// Reasons of Progress.rejected: objects Graph sent that the connector
// drops because they fail its own checks.
const (
	// RejectIDNotGUID: a user, group or member whose id is not a GUID
	// (Entra object IDs always are), or that has no id at all.
	RejectIDNotGUID = "id_not_guid"
	// RejectMemberWithoutID: a members@delta entry without an id.
	RejectMemberWithoutID = "member_without_id"
)

// Reasons of Progress.sanitized: values the connector passed on cleaned.
const (
	// SanitizeInvalidUTF8: a JSON string of a Graph answer that held bytes
	// that are not UTF-8; the decoders replaced them with U+FFFD.
	SanitizeInvalidUTF8 = "invalid_utf8"
)

// reject counts n objects dropped for reason and returns the count of
// the reason so far.
func (b *batcher) reject(reason string, n int) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.progress.Rejected == nil {
		b.progress.Rejected = map[string]int64{}
	}
	b.progress.Rejected[reason] += int64(n)
	return b.progress.Rejected[reason]
}

// skipMembers counts members that are not users.
func (b *batcher) skipMembers(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.progress.SkippedMembers += int64(n)
}

// snapshot returns the progress so far and the batches sent.
func (b *batcher) snapshot() (connectorv1.Progress, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return connectorv1.Progress{Phase: b.progress.Phase, Users: b.progress.Users, Groups: b.progress.Groups,
		Memberships: b.progress.Memberships, SkippedMembers: b.progress.SkippedMembers, Rejected: maps.Clone(b.progress.Rejected),
		Sanitized: b.sanitized()}, b.batches
}

// sanitized returns Progress.sanitized so far: nil when nothing was
// cleaned.
func (b *batcher) sanitized() map[string]int64 {
	if b.stats == nil {
		return nil
	}
	if n := b.stats.invalidUTF8.Load(); n > 0 {
		return map[string]int64{SanitizeInvalidUTF8: n}
	}
	return nil
}

// full reports whether the current batch has no room left.
func (b *batcher) full() bool { return b.n >= b.max }

func (b *batcher) user(u *connectorv1.User) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.full() {
		if err := b.flush(false); err != nil {
			return err
		}
	}
	b.cur.Users = append(b.cur.Users, u)
	b.n++
	b.progress.Users++
	return nil
}

func (b *batcher) group(g *connectorv1.Group) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.full() {
		if err := b.flush(false); err != nil {
			return err
		}
	}
	b.cur.Groups = append(b.cur.Groups, g)
	b.n++
	b.progress.Groups++
	return nil
}

// memberChanges are the member IDs of one group a delta fragment added
// and removed, users and groups (nesting) apart.
type memberChanges struct {
	addedUsers, removedUsers, addedGroups, removedGroups []string
}

// len counts the IDs.
func (ch *memberChanges) len() int {
	return len(ch.addedUsers) + len(ch.removedUsers) + len(ch.addedGroups) + len(ch.removedGroups)
}

// members sends the member changes of a group, spreading them over as
// many Membership messages and batches as needed (the contract lets them
// add up).
func (b *batcher) members(groupID string, ch memberChanges) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch.len() > 0 {
		if b.full() {
			if err := b.flush(false); err != nil {
				return err
			}
		}
		room := b.max - b.n
		m := &connectorv1.Membership{GroupId: groupID}
		// take moves up to room IDs of a list into the message.
		take := func(dst, src *[]string) {
			if k := min(room, len(*src)); k > 0 {
				*dst = append([]string(nil), (*src)[:k]...)
				*src = (*src)[k:]
				room -= k
			}
		}
		take(&m.AddedUserIds, &ch.addedUsers)
		take(&m.RemovedUserIds, &ch.removedUsers)
		take(&m.AddedGroupIds, &ch.addedGroups)
		take(&m.RemovedGroupIds, &ch.removedGroups)
		k := len(m.AddedUserIds) + len(m.RemovedUserIds) + len(m.AddedGroupIds) + len(m.RemovedGroupIds)
		b.cur.Memberships = append(b.cur.Memberships, m)
		b.n += k
		b.progress.Memberships += int64(k)
	}
	return nil
}

// finish sends the last batch: done, with the cursor, completeness and
// why an incremental sync became a full read ("" when it did not).
func (b *batcher) finish(cursor string, complete bool, resyncReason string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.progress.Phase = phaseDone
	b.cur.Done = true
	b.cur.Cursor = cursor
	b.cur.Complete = complete
	b.cur.ResyncReason = resyncReason
	return b.flush(true)
}

// sendProgress sends the progress now, with what is pending, and with
// the retry wave r under way (nil: none). The retry middleware calls it
// when a wave begins or ends, so an outage shows while it lasts and not
// at the next page; Sync calls it with nil before it returns a failure,
// so the host's summary of the failed job counts the requests and
// retries made (a failure sends no final batch). A failed send is left
// to the readers, whose next batch meets it too.
func (b *batcher) sendProgress(r *connectorv1.Retrying) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retry = r
	b.n = max(b.n, 1) // send it even though it may hold no object
	_ = b.flush(false)
}

// restart tells the host to forget what this sync sent so far: the read
// starts over.
func (b *batcher) restart() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.flush(false); err != nil {
		return err
	}
	b.cur.Restart = true
	b.n = 1 // send it even though it holds no object
	return b.flush(false)
}

// flush sends the current batch (if it holds anything, or is the last).
// The caller holds b.mu: batches leave in order, one at a time.
func (b *batcher) flush(last bool) error {
	if b.n == 0 && !last {
		return nil
	}
	if b.ctx != nil && b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	p := &connectorv1.Progress{
		Phase:          b.progress.Phase,
		Users:          b.progress.Users,
		Groups:         b.progress.Groups,
		Memberships:    b.progress.Memberships,
		SkippedMembers: b.progress.SkippedMembers,
		// A copy: the host may keep the batch while the count goes on.
		Rejected:  maps.Clone(b.progress.Rejected),
		Sanitized: b.sanitized(),
		Retrying:  b.retry,
	}
	if b.stats != nil {
		p.Requests = b.stats.requests.Load()
		p.Retries = b.stats.retries.Load()
		p.ThrottleWaitMs = b.stats.throttleWaitMS.Load()
	}
	b.cur.Progress = p
	batch := b.cur
	b.cur = &connectorv1.SyncBatch{}
	b.n = 0
	b.batches++
	if err := b.send(batch); err != nil {
		return &sendError{err: err}
	}
	return nil
}

// sendError is a failure to hand a batch to the host: not the directory's
// fault, so it is passed on unexplained.
type sendError struct{ err error }

func (e *sendError) Error() string { return "sending a batch: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }
