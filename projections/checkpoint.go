package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// SchemaVersion is the version of the fold and of the read models' shapes.
// A checkpoint written under another version is not loaded (the start
// replays the whole stream instead), so bump it with every change to
// State.Apply or to a read model's JSON form.
const SchemaVersion = 1

// CheckpointBucket is the JetStream Object Store bucket holding the read
// models' checkpoint, and CheckpointObject the object's name in it.
const (
	CheckpointBucket = "dirsync_checkpoints"
	CheckpointObject = "projections"
)

// Checkpoint metadata keys, also in docs/durability.md.
const (
	metaVersion = "schema-version"
	metaSeq     = "stream-seq"
	metaEvent   = "event-id"
)

// ErrNoCheckpoint says there is no usable checkpoint; it wraps the reason
// (none written yet, another schema version, not of this stream, corrupt).
var ErrNoCheckpoint = errors.New("no usable read-model checkpoint")

// snapshot is a State in its checkpoint form. Maps encode with sorted
// keys, so the same state always gives the same bytes (checkpoint + tail
// is compared with a rebuild through them).
type snapshot struct {
	Version      int                                    `json:"version"`
	Seq          uint64                                 `json:"seq"`
	Malformed    int                                    `json:"malformed"`
	Directories  map[string]snapshotDirectory           `json:"directories"`
	Recipients   map[string]map[string]events.Recipient `json:"recipients"`
	Jobs         map[string]*Job                        `json:"jobs"`
	Status       map[string]*SyncStatus                 `json:"status"`
	Cursors      map[string]string                      `json:"cursors"`
	FormerEmails map[string][]string                    `json:"formerEmails"`
	Spans        map[string]ChangeSpan                  `json:"spans"`
}

type snapshotDirectory struct {
	Users   map[string]events.User  `json:"users"`
	Groups  map[string]events.Group `json:"groups"`
	Members map[string][]string     `json:"members"`
}

func (s *State) snapshot() snapshot {
	dirs := make(map[string]snapshotDirectory, len(s.Directories))
	for c, d := range s.Directories {
		members := make(map[string][]string, len(d.Members))
		for g, set := range d.Members {
			ids := make([]string, 0, len(set))
			for id := range set {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			members[g] = ids
		}
		dirs[c] = snapshotDirectory{Users: d.Users, Groups: d.Groups, Members: members}
	}
	return snapshot{Version: SchemaVersion, Seq: s.LastSeq, Malformed: s.Malformed, Directories: dirs,
		Recipients: s.Recipients, Jobs: s.Jobs, Status: s.Status, Cursors: s.Cursors,
		FormerEmails: s.FormerEmails, Spans: s.Spans}
}

func (sn snapshot) state() *State {
	s := NewState()
	s.LastSeq, s.Malformed = sn.Seq, sn.Malformed
	for c, sd := range sn.Directories {
		d := newDirectory()
		if sd.Users != nil {
			d.Users = sd.Users
		}
		if sd.Groups != nil {
			d.Groups = sd.Groups
		}
		for g, ids := range sd.Members {
			set := make(map[string]struct{}, len(ids))
			for _, id := range ids {
				set[id] = struct{}{}
			}
			d.Members[g] = set
		}
		s.Directories[c] = d
	}
	for c, m := range sn.Recipients {
		if m != nil {
			s.Recipients[c] = m
		}
	}
	for id, j := range sn.Jobs {
		if j != nil {
			s.Jobs[id] = j
		}
	}
	for c, st := range sn.Status {
		if st != nil {
			s.Status[c] = st
		}
	}
	for k, v := range sn.Cursors {
		s.Cursors[k] = v
	}
	for k, v := range sn.FormerEmails {
		s.FormerEmails[k] = v
	}
	for k, v := range sn.Spans {
		s.Spans[k] = v
	}
	return s
}

// Canonical is the state in its checkpoint form, uncompressed: equal
// states give equal bytes. Tests compare a checkpoint plus its tail with a
// rebuild through it.
func (s *State) Canonical() ([]byte, error) {
	b, err := json.Marshal(s.snapshot())
	if err != nil {
		return nil, fmt.Errorf("encoding the read models: %w", err)
	}
	return b, nil
}

// encodeState writes the state's checkpoint form, compressed with S2
// (fast enough that writing a checkpoint costs about what encoding it
// does).
func encodeState(w io.Writer, s *State) error {
	zw := s2.NewWriter(w)
	if err := json.NewEncoder(zw).Encode(s.snapshot()); err != nil {
		return fmt.Errorf("encoding the read models: %w", err)
	}
	return zw.Close()
}

// decodeState reads what encodeState wrote, to the end: the Object
// Store checks an object's digest only when it is read to the end.
func decodeState(r io.Reader) (*State, error) {
	zr := s2.NewReader(r)
	var sn snapshot
	dec := json.NewDecoder(zr)
	if err := dec.Decode(&sn); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if _, err := io.Copy(io.Discard, io.MultiReader(dec.Buffered(), zr)); err != nil {
		return nil, fmt.Errorf("reading to the end: %w", err)
	}
	if sn.Version != SchemaVersion {
		return nil, fmt.Errorf("schema version %d inside, want %d", sn.Version, SchemaVersion)
	}
	return sn.state(), nil
}

// Checkpoints keeps the read models' checkpoint in an Object Store
// bucket: one object, replaced whole. The Object Store writes the new
// chunks before the new metadata and removes the old chunks only after,
// so a crash while writing leaves the previous checkpoint readable.
type Checkpoints struct {
	obs jetstream.ObjectStore
	st  *store.Store
}

// OpenCheckpoints creates the checkpoint bucket if missing.
func OpenCheckpoints(ctx context.Context, js jetstream.JetStream, st *store.Store, replicas int) (*Checkpoints, error) {
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      CheckpointBucket,
		Description: "dirsync read models at a stream sequence (start-up loads it and replays only the tail of stream " + store.StreamName + ")",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Compression: false,
	})
	if err != nil {
		return nil, fmt.Errorf("creating object store %s: %w", CheckpointBucket, err)
	}
	return &Checkpoints{obs: obs, st: st}, nil
}

// checkpointIO bounds writing or reading a checkpoint. The Object Store
// gives a call without a deadline the JetStream default (5 s), which a
// checkpoint of 100,000 users (tens of MB) may need more than on a busy
// machine: that made a good checkpoint read as corrupt ("nats: timeout").
const checkpointIO = 5 * time.Minute

// Save writes the state as the checkpoint. The caller must keep the state
// from changing until Save returns.
func (c *Checkpoints) Save(ctx context.Context, s *State) (int64, error) {
	if s.LastSeq == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointIO)
	defer cancel()
	id, err := c.st.MsgID(ctx, s.LastSeq)
	if err != nil {
		return 0, fmt.Errorf("writing the read-model checkpoint: %w", err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(encodeState(pw, s)) }()
	info, err := c.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        CheckpointObject,
		Description: "read models at event " + strconv.FormatUint(s.LastSeq, 10),
		Metadata: map[string]string{
			metaVersion: strconv.Itoa(SchemaVersion),
			metaSeq:     strconv.FormatUint(s.LastSeq, 10),
			metaEvent:   id,
		},
	}, pr)
	_ = pr.CloseWithError(io.ErrClosedPipe) // stops the encoder if Put gave up early
	if err != nil {
		return 0, fmt.Errorf("writing the read-model checkpoint to %s: %w", CheckpointBucket, err)
	}
	return int64(info.Size), nil
}

// Load returns the checkpointed state when it is of this schema version
// and of this stream (the event it reflects is stored at its sequence, with
// its ID), or an error wrapping ErrNoCheckpoint that says why not.
func (c *Checkpoints) Load(ctx context.Context) (*State, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointIO)
	defer cancel()
	info, err := c.obs.GetInfo(ctx, CheckpointObject)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: none written yet", ErrNoCheckpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the read-model checkpoint: %w", err)
	}
	if v := info.Metadata[metaVersion]; v != strconv.Itoa(SchemaVersion) {
		return nil, fmt.Errorf("%w: it was written for read-model schema version %q, this build folds version %d", ErrNoCheckpoint, v, SchemaVersion)
	}
	seq, err := strconv.ParseUint(info.Metadata[metaSeq], 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("%w: its stream sequence %q is not a number", ErrNoCheckpoint, info.Metadata[metaSeq])
	}
	id, err := c.st.MsgID(ctx, seq)
	switch {
	case errors.Is(err, store.ErrNoMessage):
		return nil, fmt.Errorf("%w: it reflects event %d, which stream %s does not hold (was the stream replaced?)", ErrNoCheckpoint, seq, store.StreamName)
	case err != nil:
		return nil, err
	case id != info.Metadata[metaEvent]:
		return nil, fmt.Errorf("%w: event %d of stream %s is %q, the checkpoint's is %q (was the stream replaced?)", ErrNoCheckpoint, seq, store.StreamName, id, info.Metadata[metaEvent])
	}
	// Read whole, then decoded: the Object Store's reader must not wait
	// on the decoder, and the compressed bytes are a fraction of the state.
	data, err := c.obs.GetBytes(ctx, CheckpointObject)
	if err != nil {
		return nil, fmt.Errorf("%w: reading it: %w", ErrNoCheckpoint, err)
	}
	s, err := decodeState(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: it is corrupt: %w", ErrNoCheckpoint, err)
	}
	if s.LastSeq != seq {
		return nil, fmt.Errorf("%w: it holds the state at event %d, its metadata says %d", ErrNoCheckpoint, s.LastSeq, seq)
	}
	return s, nil
}
