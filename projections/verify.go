package projections

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events/store"
)

// Rebuild folds the whole stream, as it is now, into a fresh state: what
// the read models must equal.
func Rebuild(ctx context.Context, st *store.Store) (*State, error) {
	last, err := st.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	s := NewState()
	if last == 0 {
		return s, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = st.Follow(ctx, 1, func(m store.Message) error {
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
		return nil, fmt.Errorf("rebuilding from the stream: %w", err)
	}
	return s, nil
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
		have, err := readAll(ctx, kv)
		if err != nil {
			return nil, err
		}
		for key, v := range have {
			w, ok := want[Key{b, key}]
			switch {
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
