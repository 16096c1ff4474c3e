package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events/store"
)

// Rebuild folds the whole stream, as it is now, into a fresh state: what
// the read models must equal.
func Rebuild(ctx context.Context, st *store.Store) (*State, error) {
	s := NewState()
	if err := foldTail(ctx, st, s); err != nil {
		return nil, fmt.Errorf("rebuilding from the stream: %w", err)
	}
	return s, nil
}

// FromCheckpoint loads the checkpoint in js and folds the stream after it,
// as a start does: it must equal Rebuild. It returns the checkpoint's
// sequence too, and an error wrapping ErrNoCheckpoint when there is no
// usable one.
func FromCheckpoint(ctx context.Context, js jetstream.JetStream, st *store.Store) (*State, uint64, error) {
	obs, err := js.ObjectStore(ctx, CheckpointBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, 0, fmt.Errorf("%w: no bucket %s", ErrNoCheckpoint, CheckpointBucket)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("opening object store %s: %w", CheckpointBucket, err)
	}
	s, err := (&Checkpoints{obs: obs, st: st}).Load(ctx)
	if err != nil {
		return nil, 0, err
	}
	from := s.LastSeq
	if err := foldTail(ctx, st, s); err != nil {
		return nil, 0, fmt.Errorf("folding the stream after the checkpoint at %d: %w", from, err)
	}
	return s, from, nil
}

// foldTail folds the stored events after s.LastSeq into s, up to the
// newest when it starts.
func foldTail(ctx context.Context, st *store.Store, s *State) error {
	last, err := st.LastSeq(ctx)
	if err != nil {
		return err
	}
	if last <= s.LastSeq {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = st.Follow(ctx, s.LastSeq+1, func(m store.Message) error {
		if m.Err == nil {
			_, _ = s.Apply(m.Event) // a malformed event is counted in s.Malformed
		} else {
			s.LastSeq = m.Seq
			s.Malformed++
		}
		if m.Seq >= last {
			cancel()
		}
		return nil
	})
	if err != nil && s.LastSeq < last {
		return err
	}
	return nil
}

// Diff compares the KV read models with a state and lists every entry that
// differs, is missing or is extra; none means they are equal byte for byte.
func Diff(ctx context.Context, js jetstream.JetStream, s *State) ([]string, error) {
	want := map[Key][]byte{}
	for _, k := range s.Keys() {
		v, err := encode(s.Value(k))
		if err != nil {
			return nil, err
		}
		if v != nil {
			want[k] = v
		}
	}
	var diffs []string
	for _, b := range Buckets() {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("opening KV %s: %w", b, err)
		}
		have, err := readAll(ctx, kv, "", false)
		if err != nil {
			return nil, err
		}
		for key, e := range have {
			if e.deleted {
				delete(have, key)
				continue
			}
			w, ok := want[Key{b, key}]
			switch v := e.val; {
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s/%s: in KV, not in the rebuilt state", b, key))
			case !bytes.Equal(v, w):
				diffs = append(diffs, fmt.Sprintf("%s/%s: KV %s, rebuilt %s", b, key, v, w))
			}
		}
		for k := range want {
			if _, ok := have[k.Key]; k.Bucket == b && !ok {
				diffs = append(diffs, fmt.Sprintf("%s/%s: in the rebuilt state, not in KV", b, k.Key))
			}
		}
	}
	sort.Strings(diffs)
	return diffs, nil
}
