package projections

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go/jetstream"
	// encoding/json's behaviour at about twice its speed: a start
	// decodes the whole checkpoint (100,000 users: 0.35 s against 0.75 s
	// in BenchmarkCheckpointLoad).
	"github.com/segmentio/encoding/json"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// SchemaVersion is the version of the fold and of the read models' shapes.
// A checkpoint written under another version is not loaded (the start
// replays the whole stream instead), so bump it with every change to
// State.Apply or to a read model's JSON form.
const SchemaVersion = 2

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
	Claims       map[string]events.Claim                `json:"claims,omitempty"`
	Superseded   int                                    `json:"superseded,omitempty"`
}

type snapshotDirectory struct {
	Users   map[string]events.User  `json:"users"`
	Groups  map[string]events.Group `json:"groups"`
	Members map[string][]string     `json:"members"`
	Nested  map[string][]string     `json:"nested"`
}

// state is the State a decoded checkpoint holds, its strings compacted
// (see compact.go).
func (sn snapshot) state() *State {
	s := NewState()
	s.LastSeq, s.Malformed, s.Superseded = sn.Seq, sn.Malformed, sn.Superseded
	for c, cl := range sn.Claims {
		s.Claims[c] = cl
	}
	in := interned{}
	for c, sd := range sn.Directories {
		if sd.Users == nil && sd.Groups == nil && sd.Members == nil && sd.Nested == nil {
			// A connector with recipients and no directory: a live
			// directory always has its maps, empty or not.
			continue
		}
		d := newDirectory()
		if sd.Users != nil {
			for id, u := range sd.Users {
				sd.Users[id] = in.user(id, u)
			}
			d.Users = sd.Users
		}
		if sd.Groups != nil {
			for id, g := range sd.Groups {
				g.ID = id
				in.all(g.GroupTypes)
				sd.Groups[id] = g
			}
			d.Groups = sd.Groups
		}
		for g, ids := range sd.Members {
			set := make(map[string]struct{}, len(ids))
			for _, id := range ids {
				set[d.UserID(id)] = struct{}{}
			}
			d.Members[g] = set
		}
		for g, ids := range sd.Nested {
			set := make(map[string]struct{}, len(ids))
			for _, id := range ids {
				set[id] = struct{}{}
			}
			d.Nested[g] = set
		}
		s.Directories[c] = d
	}
	for c, m := range sn.Recipients {
		if m == nil {
			continue
		}
		var users map[string]events.User
		if d := s.Directories[c]; d != nil {
			users = d.Users
		}
		// In place: keying the map again by the users' own IDs would
		// share its keys too, at the price of filling a new map.
		for id, r := range m {
			u, ok := users[id]
			m[id] = in.recipient(r, u, ok)
		}
		s.Recipients[c] = m
		s.counting(c)
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

// The checkpoint form is a sequence of JSON documents, one a line: a
// header (checkpointHeader), then for each of its connectors, in order,
// the directory's users, groups and members and the recipients, then the
// jobs, statuses, cursors, former emails and spans. A start decodes the
// lines side by side (one per core): decoding is most of loading one.
type checkpointHeader struct {
	Version    int      `json:"version"`
	Seq        uint64   `json:"seq"`
	Malformed  int      `json:"malformed"`
	Connectors []string `json:"connectors"`
	// Claims and Superseded are small: they travel in the header.
	Claims     map[string]events.Claim `json:"claims,omitempty"`
	Superseded int                     `json:"superseded,omitempty"`
}

// decodeTargets are fresh values for decodeState to decode the sections
// into, in the order of sections.
func decodeTargets(connectors int) []any {
	var out []any
	for range connectors {
		out = append(out, &map[string]events.User{}, &map[string]events.Group{}, &map[string][]string{}, &map[string][]string{}, &map[string]events.Recipient{})
	}
	return append(out, &map[string]*Job{}, &map[string]*SyncStatus{}, &map[string]string{}, &map[string][]string{}, &map[string]ChangeSpan{})
}

// writeCheckpointForm writes the state's checkpoint form to w: what
// json.Encoder writes for each section (referenceForm in the tests keeps
// that form), streamed entry by entry in key order, so that a
// checkpoint of 100,000 recipients does not first build each section's
// whole JSON (and a sorted copy of every member set) in memory.
func writeCheckpointForm(w io.Writer, s *State) error {
	seen := map[string]bool{}
	for c := range s.Directories {
		seen[c] = true
	}
	for c := range s.Recipients {
		seen[c] = true
	}
	h := checkpointHeader{Version: SchemaVersion, Seq: s.LastSeq, Malformed: s.Malformed, Connectors: slices.Sorted(maps.Keys(seen)),
		Superseded: s.Superseded}
	if len(s.Claims) > 0 {
		h.Claims = s.Claims
	}
	cw := &checkpointWriter{w: w}
	cw.value(h)
	cw.line()
	for _, c := range h.Connectors {
		d := s.Directories[c]
		if d == nil {
			// A connector with recipients and no directory.
			cw.null()
			cw.null()
			cw.null()
			cw.null()
		} else {
			sorted := func(set map[string]struct{}) any { return slices.Sorted(maps.Keys(set)) }
			writeSection(cw, d.Users)
			writeSection(cw, d.Groups)
			writeSection(cw, d.Members, sorted)
			writeSection(cw, d.Nested, sorted)
		}
		writeSection(cw, s.Recipients[c])
	}
	writeSection(cw, s.Jobs)
	writeSection(cw, s.Status)
	writeSection(cw, s.Cursors)
	writeSection(cw, s.FormerEmails)
	writeSection(cw, s.Spans)
	cw.flush()
	if cw.err != nil {
		return fmt.Errorf("encoding the read models: %w", cw.err)
	}
	return nil
}

// checkpointWriter writes JSON to w through a buffer it reuses, keeping
// the first error.
type checkpointWriter struct {
	w   io.Writer
	buf []byte
	err error
}

// checkpointFlags are json.Encoder's: HTML escaped, map keys sorted.
const checkpointFlags = json.EscapeHTML | json.SortMapKeys

func (cw *checkpointWriter) value(v any) {
	if cw.err != nil {
		return
	}
	cw.buf, cw.err = json.Append(cw.buf, v, checkpointFlags)
}

func (cw *checkpointWriter) byte(b byte) { cw.buf = append(cw.buf, b) }

func (cw *checkpointWriter) null() {
	cw.buf = append(cw.buf, "null"...)
	cw.line()
}

// line ends a section.
func (cw *checkpointWriter) line() {
	cw.byte('\n')
	cw.spill()
}

// spill writes what is buffered once it is large.
func (cw *checkpointWriter) spill() {
	if len(cw.buf) >= 64<<10 {
		cw.flush()
	}
}

func (cw *checkpointWriter) flush() {
	if cw.err == nil && len(cw.buf) > 0 {
		_, cw.err = cw.w.Write(cw.buf)
	}
	cw.buf = cw.buf[:0]
}

// writeSection writes m as one line, as json.Encoder would (null when
// nil, keys in order), one entry at a time; as, if given, is what each
// value is written as.
func writeSection[V any](cw *checkpointWriter, m map[string]V, as ...func(V) any) {
	if m == nil {
		cw.null()
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// One variable for every value, passed by pointer: a value passed as
	// itself would be copied to the heap at each entry.
	var v V
	cw.byte('{')
	for i, k := range keys {
		if i > 0 {
			cw.byte(',')
		}
		cw.value(k)
		cw.byte(':')
		v = m[k]
		if len(as) > 0 {
			cw.value(as[0](v))
		} else {
			cw.value(&v)
		}
		cw.spill()
	}
	cw.byte('}')
	cw.line()
}

// Canonical is the state in its checkpoint form, uncompressed: equal
// states give equal bytes. Tests compare a checkpoint plus its tail with a
// rebuild through it.
func (s *State) Canonical() ([]byte, error) {
	var b bytes.Buffer
	if err := writeCheckpointForm(&b, s); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeState writes the state's checkpoint form, compressed with S2
// (fast enough that writing a checkpoint costs about what encoding it
// does).
func encodeState(w io.Writer, s *State) error {
	zw := s2.NewWriter(w)
	if err := writeCheckpointForm(zw, s); err != nil {
		return err
	}
	return zw.Close()
}

// decodeState reads what encodeState wrote.
func decodeState(data []byte) (*State, error) {
	raw, err := io.ReadAll(s2.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	var h checkpointHeader
	if err := json.Unmarshal(lines[0], &h); err != nil {
		return nil, fmt.Errorf("decoding the header: %w", err)
	}
	if h.Version != SchemaVersion {
		return nil, fmt.Errorf("schema version %d inside, want %d", h.Version, SchemaVersion)
	}
	targets := decodeTargets(len(h.Connectors))
	if len(lines)-1 != len(targets) {
		return nil, fmt.Errorf("%d sections, want %d for %d connectors", len(lines)-1, len(targets), len(h.Connectors))
	}
	// Sections decode into their own maps side by side; the maps are put
	// in place once all are done.
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	next := make(chan int)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = json.Unmarshal(lines[i+1], targets[i])
			}
		}()
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	sn := snapshot{Version: h.Version, Seq: h.Seq, Malformed: h.Malformed, Claims: h.Claims, Superseded: h.Superseded,
		Directories: map[string]snapshotDirectory{}, Recipients: map[string]map[string]events.Recipient{}}
	for i, c := range h.Connectors {
		t := targets[5*i : 5*i+5]
		sn.Directories[c] = snapshotDirectory{Users: *t[0].(*map[string]events.User), Groups: *t[1].(*map[string]events.Group),
			Members: *t[2].(*map[string][]string), Nested: *t[3].(*map[string][]string)}
		sn.Recipients[c] = *t[4].(*map[string]events.Recipient)
	}
	rest := targets[5*len(h.Connectors):]
	sn.Jobs, sn.Status, sn.Cursors = *rest[0].(*map[string]*Job), *rest[1].(*map[string]*SyncStatus), *rest[2].(*map[string]string)
	sn.FormerEmails, sn.Spans = *rest[3].(*map[string][]string), *rest[4].(*map[string]ChangeSpan)
	return sn.state(), nil
}

// Checkpoints keeps the read models' checkpoint in an Object Store
// bucket: one object, replaced whole. The Object Store writes the new
// chunks before the new metadata and removes the old chunks only after,
// so a crash while writing leaves the previous checkpoint readable.
//
// Each writer has its object: CheckpointObject, or CheckpointObject and
// "." and the writer's name (WithCheckpointWriter; a replica's identity).
// Replicas stopping together each write their final checkpoint, and one
// object would keep whichever write ended last, older or not; Load takes
// the newest valid checkpoint of any writer.
type Checkpoints struct {
	obs  jetstream.ObjectStore
	st   *store.Store
	name string
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
	return &Checkpoints{obs: obs, st: st, name: CheckpointObject}, nil
}

// CheckpointObjectOf is the object a writer named writer keeps its
// checkpoint in ("" is CheckpointObject).
func CheckpointObjectOf(writer string) string {
	if writer == "" {
		return CheckpointObject
	}
	return CheckpointObject + "." + writer
}

// checkpointIO bounds writing or reading a checkpoint. The Object Store
// gives a call without a deadline the JetStream default (5 s), which a
// checkpoint of 100,000 users (tens of MB) may need more than on a busy
// machine: that made a good checkpoint read as corrupt ("nats: timeout").
const checkpointIO = 5 * time.Minute

// Encoded is a state in its compressed checkpoint form, ready to write.
type Encoded struct {
	Seq  uint64
	Data []byte
}

// Encode renders the state's checkpoint form. The caller must keep the
// state from changing meanwhile; writing it (Put) needs no state.
func Encode(s *State) (Encoded, error) {
	var b bytes.Buffer
	if err := encodeState(&b, s); err != nil {
		return Encoded{}, err
	}
	return Encoded{Seq: s.LastSeq, Data: b.Bytes()}, nil
}

// Put writes an encoded state as the checkpoint.
func (c *Checkpoints) Put(ctx context.Context, e Encoded) error {
	if e.Seq == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, checkpointIO)
	defer cancel()
	id, err := c.st.MsgID(ctx, e.Seq)
	if err != nil {
		return fmt.Errorf("writing the read-model checkpoint: %w", err)
	}
	_, err = c.obs.Put(ctx, jetstream.ObjectMeta{
		Name:        c.name,
		Description: "read models at event " + strconv.FormatUint(e.Seq, 10),
		Metadata: map[string]string{
			metaVersion: strconv.Itoa(SchemaVersion),
			metaSeq:     strconv.FormatUint(e.Seq, 10),
			metaEvent:   id,
		},
	}, bytes.NewReader(e.Data))
	if err != nil {
		return fmt.Errorf("writing the read-model checkpoint to %s: %w", CheckpointBucket, err)
	}
	return nil
}

// Load returns the newest checkpointed state of any writer that is of
// this schema version and of this stream (the event it reflects is stored
// at its sequence, with its ID), or an error wrapping ErrNoCheckpoint that
// says why none is.
func (c *Checkpoints) Load(ctx context.Context) (*State, error) {
	ctx, cancel := context.WithTimeout(ctx, checkpointIO)
	defer cancel()
	infos, err := c.obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, fmt.Errorf("%w: none written yet", ErrNoCheckpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the read-model checkpoints: %w", err)
	}
	seqOf := func(info *jetstream.ObjectInfo) uint64 {
		n, _ := strconv.ParseUint(info.Metadata[metaSeq], 10, 64)
		return n
	}
	var cands []*jetstream.ObjectInfo
	for _, info := range infos {
		if info.Name == CheckpointObject || strings.HasPrefix(info.Name, CheckpointObject+".") {
			cands = append(cands, info)
		}
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: none written yet", ErrNoCheckpoint)
	}
	slices.SortStableFunc(cands, func(a, b *jetstream.ObjectInfo) int { return cmp.Compare(seqOf(b), seqOf(a)) })
	var first error
	for _, info := range cands {
		s, err := c.load(ctx, info)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrNoCheckpoint) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// load reads one writer's checkpoint and checks it against the stream.
func (c *Checkpoints) load(ctx context.Context, info *jetstream.ObjectInfo) (*State, error) {
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
	data, err := c.obs.GetBytes(ctx, info.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: reading it: %w", ErrNoCheckpoint, err)
	}
	s, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("%w: it is corrupt: %w", ErrNoCheckpoint, err)
	}
	if s.LastSeq != seq {
		return nil, fmt.Errorf("%w: it holds the state at event %d, its metadata says %d", ErrNoCheckpoint, s.LastSeq, seq)
	}
	return s, nil
}
