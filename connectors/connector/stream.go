package connector

import (
	"fmt"
	"regexp"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/safetext"
)

// The rules of a sync stream, in one place: the daemon's intake
// (daemon/jobs) checks every plugin's stream with them, and the
// conformance suite (connectors/connectortest) holds every connector to
// them, so a connector that passes the suite is one the daemon accepts.

// MaxCursorBytes bounds the cursor of a final batch, which the daemon
// stores in the job's COMPLETED event (the azuread cursor, two delta
// links, is a few KiB at most).
const MaxCursorBytes = 64 << 10

// objectID is what a directory object ID may be: it becomes a NATS
// subject token and a KV key, so no dots, wildcards or spaces.
var objectID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// ValidObjectID reports whether id can be a directory object ID: 1 to 64
// of A-Z a-z 0-9 and '-'. The daemon drops objects with any other ID
// (counted as rejected "invalid_id").
func ValidObjectID(id string) bool { return objectID.MatchString(id) }

// BatchObjects counts what a batch holds against a batch bound: users,
// groups and member IDs (a Membership without IDs counts as one).
func BatchObjects(b *connectorv1.SyncBatch) int {
	n := len(b.GetUsers()) + len(b.GetGroups())
	for _, m := range b.GetMemberships() {
		n += max(1, len(m.GetAddedUserIds())+len(m.GetRemovedUserIds()))
	}
	return n
}

// StreamRules checks one sync stream, batch by batch, against connector.v1.
// The zero value is not ready: set Full and MaxObjects.
type StreamRules struct {
	// Full is true when the request asked for a full read (no cursor, or
	// SyncRequest.full), which lists only what exists.
	Full bool
	// MaxObjects bounds BatchObjects of each batch: MaxBatchObjects for a
	// connector held to the contract, more for a host that tolerates a
	// little.
	MaxObjects int
	// Ended is set by Check once the final batch came; a caller that
	// checks batches with a fresh StreamRules each time sets it.
	Ended bool
}

// Check returns a *ProtocolError naming what in b breaks the protocol,
// given the batches before it, or nil.
func (r *StreamRules) Check(b *connectorv1.SyncBatch) error {
	switch {
	case r.Ended && b.GetDone():
		return violation("it sent a second final batch")
	case r.Ended && b.GetRestart():
		return violation("it restarted the read after its final batch")
	case r.Ended:
		return violation("it sent a batch after its final one")
	}
	if n := BatchObjects(b); n > r.MaxObjects {
		return violation("it sent a batch of %d objects, more than the %d a batch may hold", n, r.MaxObjects)
	}
	if r.Full {
		for _, u := range b.GetUsers() {
			if u.GetRemoved() != nil {
				return violation("it marked %s removed in a full read, which lists only what exists", ObjectName("user", u.GetId()))
			}
		}
		for _, g := range b.GetGroups() {
			if g.GetRemoved() != nil {
				return violation("it marked %s removed in a full read, which lists only what exists", ObjectName("group", g.GetId()))
			}
		}
	}
	if !b.GetDone() {
		return nil
	}
	r.Ended = true
	if r.Full && !b.GetComplete() {
		return violation("it answered a full read with an incomplete one")
	}
	c := b.GetCursor()
	if len(c) > MaxCursorBytes {
		return violation("it sent a cursor of %d bytes, more than %d", len(c), MaxCursorBytes)
	}
	if _, ch := safetext.Clean(c, len(c)); ch.Changed() {
		return violation("it sent a cursor that is not printable text")
	}
	return nil
}

// ObjectName names an object for an admin, with its ID only when the ID
// is safe to show.
func ObjectName(kind, id string) string {
	if ValidObjectID(id) {
		return kind + " " + id
	}
	return "a " + kind
}

func violation(format string, args ...any) error {
	return &ProtocolError{What: fmt.Sprintf(format, args...)}
}
