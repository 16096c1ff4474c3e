// Package events defines what dirsync records: the CloudEvents 1.0 envelope,
// the versioned event types and their data, and the NATS subjects they are
// published on. Every fact and decision is one of these events; read models
// are folds of them (see package projections).
package events

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// Event types. The suffix is the version of the data schema; a breaking
// change to a type's data gets a new type (…v2) published beside the old.
const (
	// TypeSyncState records a sync job's state change (data: SyncState).
	TypeSyncState = "io.dirsync.sync.state.v1"
	// TypeUserChanged records a directory user as it now is (data: User).
	TypeUserChanged = "io.dirsync.directory.user.changed.v1"
	// TypeUserRemoved records that a user left the directory (data: Removed).
	TypeUserRemoved = "io.dirsync.directory.user.removed.v1"
	// TypeGroupChanged records a directory group as it now is (data: Group).
	TypeGroupChanged = "io.dirsync.directory.group.changed.v1"
	// TypeGroupRemoved records that a group left the directory (data: Removed).
	TypeGroupRemoved = "io.dirsync.directory.group.removed.v1"
	// TypeGroupMembersChanged records members added to or removed from a
	// group (data: MembersChanged). Large changes span several events.
	TypeGroupMembersChanged = "io.dirsync.directory.group.members.changed.v1"
	// TypeRecipientCreated: a user became a recipient (data: RecipientChange).
	TypeRecipientCreated = "io.dirsync.recipient.created.v1"
	// TypeRecipientUpdated: a recipient's fields changed (data: RecipientChange).
	TypeRecipientUpdated = "io.dirsync.recipient.updated.v1"
	// TypeRecipientRemoved: a recipient was deleted from the list (data:
	// RecipientChange); under on_removed = "archive" it is archived instead.
	TypeRecipientRemoved = "io.dirsync.recipient.removed.v1"
	// TypeRecipientArchived: a recipient whose user left the directory or
	// the policy is kept with status "archived" (data: RecipientChange).
	TypeRecipientArchived = "io.dirsync.recipient.archived.v1"
	// TypeRecipientRestored: an archived recipient's user is back; the
	// recipient is active again with the same ID (data: RecipientChange).
	TypeRecipientRestored = "io.dirsync.recipient.restored.v1"
	// TypeConnectorClaimed: a dirsyncd replica took over a connector's
	// jobs at a new epoch (data: Claim). From it on, only events of that
	// epoch are stored for the connector (see store.Fence).
	TypeConnectorClaimed = "io.dirsync.connector.claimed.v1"
)

// Types lists every event type, for schemas and documentation.
func Types() []string {
	return []string{
		TypeSyncState, TypeUserChanged, TypeUserRemoved, TypeGroupChanged,
		TypeGroupRemoved, TypeGroupMembersChanged, TypeRecipientCreated,
		TypeRecipientUpdated, TypeRecipientRemoved, TypeRecipientArchived, TypeRecipientRestored,
		TypeConnectorClaimed,
	}
}

// SubjectRoot is the prefix of every subject dirsync publishes.
const SubjectRoot = "dirsync"

// SyncSubject is where a job's state changes go.
func SyncSubject(connector, jobID string) string {
	return SubjectRoot + ".sync." + connector + "." + jobID
}

// DirectorySubject is where facts about one directory object go; kind is
// "user" or "group".
func DirectorySubject(connector, kind, objectID string) string {
	return SubjectRoot + ".directory." + connector + "." + kind + "." + objectID
}

// RecipientSubject is where decisions about one recipient go: the subject
// downstream services subscribe to.
func RecipientSubject(connector, objectID string) string {
	return SubjectRoot + ".recipients." + connector + "." + objectID
}

// ClaimSubject is where a connector's claims go: one subject per
// connector, whose newest message is the claim in force. Fenced appends
// are conditional on its last sequence.
func ClaimSubject(connector string) string {
	return SubjectRoot + ".claims." + connector + ".claim"
}

// ConnectorSubjects is the subject filter of every event about a
// connector: its claims, jobs, directory facts and recipients.
func ConnectorSubjects(connector string) string {
	return SubjectRoot + ".*." + connector + ".>"
}

// Source is the CloudEvents source of events about a connector.
func Source(connector string) string { return "urn:dirsync:connector:" + connector }

// JobExtension is the CloudEvents extension attribute that names the sync
// job (the sync ID) an event was produced by.
const JobExtension = "syncid"

// EpochExtension is the CloudEvents extension attribute that carries the
// epoch of the claim an event was appended under (see TypeConnectorClaimed),
// as a decimal string: a lease revision may outgrow the 32-bit integers
// CloudEvents allows. Events stored before claims existed have none.
const EpochExtension = "epoch"

// Event is one recorded fact or decision, before encoding or after
// decoding. Data holds one of this package's data types when building an
// event; a decoded event keeps the raw JSON for DecodeData.
type Event struct {
	ID      string
	Type    string
	Subject string // the NATS subject; also the CloudEvents subject
	Source  string
	Time    time.Time
	JobID   string
	Data    any
	// Epoch is the epoch of the connector's claim the event was appended
	// under (0: none; set by a fenced append).
	Epoch uint64
	// Seq is the stream sequence of a stored event (0 before storing).
	Seq uint64

	// raw is a decoded event's data; rawCanonical says it is as
	// json.Marshal writes it (compact, escaped), so Marshal copies it.
	raw          json.RawMessage
	rawCanonical bool
}

// New builds an event with a deterministic ID: the same job recording the
// same thing about the same object yields the same ID, which is also the
// Nats-Msg-Id, so a retried publish is stored once. part tells apart
// several events of one job, type and subject (e.g. chunks).
func New(typ, subject, connector, jobID string, part int, at time.Time, data any) Event {
	return Event{
		ID:      DeterministicID(jobID, typ, subject, part),
		Type:    typ,
		Subject: subject,
		Source:  Source(connector),
		Time:    at.UTC(),
		JobID:   jobID,
		Data:    data,
	}
}

// NewClaim builds the claim event of c, itself of c's epoch. Its ID
// derives from the connector and the epoch: a claim sent again (its
// acknowledgement lost) is stored once.
func NewClaim(c Claim, at time.Time) Event {
	subject := ClaimSubject(c.Connector)
	e := New(TypeConnectorClaimed, subject, c.Connector, "", int(min(c.Epoch, 1<<62)), at, c)
	e.Epoch = c.Epoch
	return e
}

// DeterministicID derives an event ID from what makes the event unique.
func DeterministicID(jobID, typ, subject string, part int) string {
	// jobID NUL typ NUL subject NUL part, hashed from a buffer on the
	// stack: a first sync makes hundreds of thousands of IDs.
	var buf [256]byte
	b := append(buf[:0], jobID...)
	b = append(b, 0)
	b = append(b, typ...)
	b = append(b, 0)
	b = append(b, subject...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(part), 10)
	h := sha256.Sum256(b)
	var id [32]byte
	hex.Encode(id[:], h[:16])
	return string(id[:])
}

// ErrMalformed wraps every decoding failure, so a projection can tell a
// bad message (skipped and counted) from an infrastructure error.
var ErrMalformed = errors.New("malformed event")

// DecodeData decodes a decoded event's data into v (a pointer to one of
// this package's data types). For an event built with New it round-trips
// Data through JSON.
func (e Event) DecodeData(v any) error {
	raw := e.raw
	if raw == nil {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return err
		}
		raw = b
	}
	// segmentio's decoder: the standard library's behaviour at about twice
	// its speed, and a replay decodes every event's data.
	if err := fastjson.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s data: %w", ErrMalformed, e.Type, err)
	}
	return nil
}
