package jobs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// A dry run applies nothing, so the changes it planned are in no event:
// the daemon keeps each dry run's change list as one object of a
// JetStream object store, where it outlives a restart of the daemon
// (and, on a cluster, of the machine), and evicts the oldest lists.

// DryRunBucket is the JetStream object store holding dry runs' change
// lists: one object per dry run, named after its sync ID, whose content
// is the JSON array of changes GET /v1/jobs/{id}/changes answers.
const DryRunBucket = "dirsync_dryruns"

// KeptDryRuns is how many dry runs' change lists the bucket keeps: a
// new list evicts the oldest ones (by sync ID, which sorts by request
// time) beyond it.
const KeptDryRuns = 100

// DryRunMaxBytes is the most the bucket may hold (its stream's
// max_bytes) when JetStream has room for it: a hundred dry runs of a
// 10,000-user directory's first sync (a few MiB each) fit. See
// DryRunBytes for a smaller store.
const DryRunMaxBytes = 256 << 20

// minDryRunBytes is the least the bucket is given, so that a dry run of a
// small directory still fits under the smallest nats { max_store }.
const minDryRunBytes = 1 << 20

// dryRunWriteTimeout bounds storing one change list: a dry run must end,
// FAILED with a reason, when NATS does not answer.
const dryRunWriteTimeout = 2 * time.Minute

// DryRunBytes sizes the bucket for JetStream storage with room bytes left
// (nats { max_store }, or the room the embedded server has; 0 when
// unknown): DryRunMaxBytes, or a sixteenth of room when that is smaller,
// and never less than 1 MiB. JetStream reserves a stream's max_bytes out
// of its storage limit when the stream is created, so a bucket sized to
// the whole limit would keep every later stream (a downstream service's
// included) from being created.
func DryRunBytes(room int64) int64 {
	if room <= 0 {
		return DryRunMaxBytes
	}
	return min(max(room/16, minDryRunBytes), DryRunMaxBytes)
}

// ErrDryRunTooLarge is returned for a change list larger than the whole
// bucket. A list that does not fit in the storage left is refused with
// an error wrapping store.ErrStorageFull.
var ErrDryRunTooLarge = errors.New("the dry run's change list is larger than the dry-run store holds")

// DryRuns keeps dry runs' change lists in the DryRunBucket object store.
type DryRuns struct {
	js       jetstream.JetStream
	obs      jetstream.ObjectStore
	maxBytes int64
	keep     int
	// disk, when not nil, is checked for room before a list is written,
	// as the event store does before an append: nats-server does not
	// recover a stream it failed to write for want of space.
	disk store.Disk

	// mu makes this daemon's writes take turns, so that two dry runs
	// ending together do not both evict for the room of one.
	mu sync.Mutex
}

// OpenDryRuns creates (or updates) the DryRunBucket object store with
// the given replicas and max_bytes (see DryRunBytes); disk is the
// embedded server's storage (nil for an external server). When JetStream
// cannot reserve maxBytes (an account's storage limit on an external
// server), it tries a quarter of it, down to 1 MiB, rather than refuse
// to start: MaxBytes says what was granted.
func OpenDryRuns(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64, disk store.Disk) (*DryRuns, error) {
	if replicas < 1 {
		replicas = 1
	}
	if maxBytes <= 0 {
		maxBytes = DryRunMaxBytes
	}
	for size := maxBytes; ; size /= 4 {
		obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: DryRunBucket,
			Description: fmt.Sprintf("dirsync dry runs' change lists (the last %d; not in stream %s, as a dry run applies nothing)",
				KeptDryRuns, store.StreamName),
			Storage:  jetstream.FileStorage,
			Replicas: replicas,
			MaxBytes: size,
		})
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jsInsufficientStorage && size/4 >= minDryRunBytes {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating the object store %s (max_bytes %s) for dry runs' change lists: %w; "+
				"JetStream must have room to reserve it (raise nats { max_store }, or the NATS account's storage limit)",
				DryRunBucket, store.Bytes(size), err)
		}
		return &DryRuns{js: js, obs: obs, maxBytes: size, keep: KeptDryRuns, disk: disk}, nil
	}
}

// jsInsufficientStorage is nats-server's error code for a stream whose
// max_bytes does not fit in what JetStream may still reserve.
const jsInsufficientStorage jetstream.ErrorCode = 10047

// MaxBytes is the bucket's size limit (its stream's max_bytes).
func (d *DryRuns) MaxBytes() int64 { return d.maxBytes }

// objectOverhead estimates what JetStream stores for an object beyond
// its content of size bytes: the metadata message, and a subject and
// headers for each 128 KiB chunk.
func objectOverhead(size int64) int64 { return 1024 + size/512 }

// Keep stores a dry run's change list under its sync ID, first evicting
// the oldest lists beyond the newest KeptDryRuns-1 and as many more as
// its room takes. A list larger than the whole bucket is refused with
// ErrDryRunTooLarge.
func (d *DryRuns) Keep(ctx context.Context, jobID string, changes []projections.Change) error {
	if changes == nil {
		changes = []projections.Change{} // as the API answers: [], not null
	}
	body, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("encoding the change list: %w", err)
	}
	need := int64(len(body)) + objectOverhead(int64(len(body)))
	if need > d.maxBytes {
		return fmt.Errorf("%w: %d changes take %s, the store %s holds %s", ErrDryRunTooLarge, len(changes),
			store.Bytes(need), DryRunBucket, store.Bytes(d.maxBytes))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.evict(ctx, jobID, need); err != nil {
		return err
	}
	if err := d.room(ctx, need); err != nil {
		return err
	}
	if _, err := d.obs.Put(ctx, jetstream.ObjectMeta{Name: jobID}, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("storing the change list in %s: %w", DryRunBucket, err)
	}
	return nil
}

// evict deletes the oldest lists until one more of need bytes fits both
// the count and the size limit; an older list named jobID (a job stored
// again) is replaced, not counted.
func (d *DryRuns) evict(ctx context.Context, jobID string, need int64) error {
	objs, err := d.obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return fmt.Errorf("listing %s: %w", DryRunBucket, err)
	}
	objs = slices.DeleteFunc(objs, func(o *jetstream.ObjectInfo) bool { return o.Name == jobID })
	slices.SortFunc(objs, func(a, b *jetstream.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	used := need
	for _, o := range objs {
		used += int64(o.Size) + objectOverhead(int64(o.Size))
	}
	for len(objs) > 0 && (len(objs) >= d.keep || used > d.maxBytes) {
		o := objs[0]
		if err := d.delete(ctx, o.Name); err != nil {
			return err
		}
		used -= int64(o.Size) + objectOverhead(int64(o.Size))
		objs = objs[1:]
	}
	return nil
}

// room refuses a write of need bytes that would leave less than
// store.Headroom, which the job's final state needs.
func (d *DryRuns) room(ctx context.Context, need int64) error {
	if d.disk == nil {
		return nil
	}
	free, bound, err := d.disk.Free(ctx)
	if err != nil {
		return fmt.Errorf("checking the room for the change list: %w", err)
	}
	if free-need < store.Headroom {
		return fmt.Errorf("%w: the change list needs about %s, with %s kept free for the job's final state, but only %s more can be stored, bounded by %s",
			store.ErrStorageFull, store.Bytes(need), store.Bytes(store.Headroom), store.Bytes(max(free, 0)), bound)
	}
	return nil
}

// delete removes a list: its chunks, then the delete marker the object
// store leaves in their place, which would otherwise stay for good (one
// per dry run ever made) and count against max_bytes.
func (d *DryRuns) delete(ctx context.Context, name string) error {
	if err := d.obs.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("evicting dry run %s from %s: %w", name, DryRunBucket, err)
	}
	st, err := d.js.Stream(ctx, "OBJ_"+DryRunBucket)
	if err != nil {
		return fmt.Errorf("evicting dry run %s from %s: %w", name, DryRunBucket, err)
	}
	// The metadata subject of object name (ADR-20: $O.<bucket>.M.<name
	// in URL-safe base64>).
	meta := "$O." + DryRunBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name))
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(meta)); err != nil {
		return fmt.Errorf("evicting dry run %s from %s: %w", name, DryRunBucket, err)
	}
	return nil
}

// Changes returns the change list kept for a dry run; false when none is
// kept (evicted, or the job stored none). An error means the store could
// not be read.
func (d *DryRuns) Changes(ctx context.Context, jobID string) ([]projections.Change, bool, error) {
	body, err := d.obs.GetBytes(ctx, jobID)
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return nil, false, nil
	case errors.Is(err, jetstream.ErrDigestMismatch):
		// Chunks trimmed by a smaller max_bytes (DryRunBytes after
		// max_store was lowered): the list is as good as evicted.
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("reading dry run %s from %s: %w", jobID, DryRunBucket, err)
	}
	var out []projections.Change
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, false, fmt.Errorf("decoding dry run %s from %s: %w", jobID, DryRunBucket, err)
	}
	return out, true, nil
}
