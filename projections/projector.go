package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/events/store"
)

// Projector keeps a State folded from the stream and mirrors its read
// models into KV buckets.
type Projector struct {
	js    jetstream.JetStream
	store *store.Store
	log   *zap.Logger
	kv    map[string]jetstream.KeyValue

	mu    sync.RWMutex
	state *State
	dirty map[Key]struct{}

	// applied is the last sequence both folded and mirrored to KV.
	appliedMu sync.Mutex
	applied   uint64
	changed   chan struct{} // closed and replaced whenever applied moves
	ready     chan struct{}
	readyOnce sync.Once
}

// New creates the KV buckets (if missing) and returns a projector that is
// not yet running.
func New(ctx context.Context, js jetstream.JetStream, st *store.Store, replicas int, log *zap.Logger) (*Projector, error) {
	if replicas < 1 {
		replicas = 1
	}
	p := &Projector{js: js, store: st, log: log, kv: map[string]jetstream.KeyValue{},
		state: NewState(), dirty: map[Key]struct{}{},
		changed: make(chan struct{}), ready: make(chan struct{})}
	for _, b := range Buckets() {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      b,
			Description: "dirsync read model (rebuilt from stream " + store.StreamName + ")",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("creating KV bucket %s: %w", b, err)
		}
		p.kv[b] = kv
	}
	return p, nil
}

// Run replays the stream from the start, brings the KV buckets in line with
// the result, marks the projector ready, and then follows new events until
// ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	last, err := p.store.LastSeq(ctx)
	if err != nil {
		return err
	}
	caughtUp := false
	catchUp := func() error {
		if err := p.reconcile(ctx); err != nil {
			return err
		}
		caughtUp = true
		p.readyOnce.Do(func() { close(p.ready) })
		p.log.Info("projections ready", zap.Uint64("seq", p.Seq()))
		return nil
	}
	if last == 0 {
		if err := catchUp(); err != nil {
			return err
		}
	}
	return p.store.Follow(ctx, 1, func(m store.Message) error {
		p.mu.Lock()
		if m.Err != nil {
			p.state.LastSeq = m.Seq
			p.state.Malformed++
			p.log.Warn("skipping malformed event", zap.Uint64("seq", m.Seq), zap.Error(m.Err))
		} else if keys, err := p.state.Apply(m.Event); err != nil {
			p.log.Warn("skipping event that cannot be applied", zap.Uint64("seq", m.Seq),
				zap.String("type", m.Event.Type), zap.String("subject", m.Event.Subject), zap.Error(err))
		} else {
			for _, k := range keys {
				p.dirty[k] = struct{}{}
			}
		}
		p.mu.Unlock()
		if !caughtUp {
			if m.Seq >= last {
				return catchUp()
			}
			return nil
		}
		if m.Pending == 0 || len(p.dirty) >= 4096 {
			return p.flushRetrying(ctx)
		}
		return nil
	})
}

// flushRetrying flushes until the KV writes land: a NATS server that
// restarts or a broker failover must delay the read models, not stop the
// daemon. The entries of a failed flush stay dirty, and writes are
// idempotent (a KV put of the current value), so a retry loses nothing.
func (p *Projector) flushRetrying(ctx context.Context) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.flush(ctx)
		if err == nil {
			if attempt > 1 {
				p.log.Info("read models written again after a failed flush", zap.Int("attempts", attempt))
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == 1 {
			p.log.Warn("cannot write the read models to KV (is NATS reachable?); retrying", zap.Error(err))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Ready is closed once the projector has replayed the stream as it was at
// start and the KV buckets match.
func (p *Projector) Ready() <-chan struct{} { return p.ready }

// Seq returns the last stream sequence folded and mirrored.
func (p *Projector) Seq() uint64 {
	p.appliedMu.Lock()
	defer p.appliedMu.Unlock()
	return p.applied
}

// WaitFor blocks until the events up to seq are folded and mirrored.
func (p *Projector) WaitFor(ctx context.Context, seq uint64) error {
	for {
		p.appliedMu.Lock()
		applied, ch := p.applied, p.changed
		p.appliedMu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for projections to reach event %d (at %d): %w", seq, applied, ctx.Err())
		}
	}
}

// View calls fn with the state under a read lock. fn must not keep
// references to the state's maps after it returns.
func (p *Projector) View(fn func(*State)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.state)
}

func (p *Projector) setApplied(seq uint64) {
	p.appliedMu.Lock()
	defer p.appliedMu.Unlock()
	if seq > p.applied {
		p.applied = seq
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// flush writes the dirty read model entries to KV.
func (p *Projector) flush(ctx context.Context) error {
	p.mu.Lock()
	type write struct {
		k   Key
		val []byte // nil: delete
	}
	writes := make([]write, 0, len(p.dirty))
	for k := range p.dirty {
		v, err := encode(p.state.Value(k))
		if err != nil {
			p.mu.Unlock()
			return err
		}
		writes = append(writes, write{k, v})
	}
	clear(p.dirty)
	seq := p.state.LastSeq
	p.mu.Unlock()
	ok := false
	defer func() {
		if ok {
			return
		}
		// Written or not, every entry of a failed flush is written again.
		p.mu.Lock()
		for _, w := range writes {
			p.dirty[w.k] = struct{}{}
		}
		p.mu.Unlock()
	}()

	var futures []jetstream.PubAckFuture
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("writing %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for _, w := range writes {
		if w.val == nil {
			if err := p.kv[w.k.Bucket].Delete(ctx, w.k.Key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("deleting %s/%s: %w", w.k.Bucket, w.k.Key, err)
			}
			continue
		}
		f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: "$KV." + w.k.Bucket + "." + w.k.Key, Data: w.val})
		if err != nil {
			return fmt.Errorf("writing %s/%s: %w", w.k.Bucket, w.k.Key, err)
		}
		futures = append(futures, f)
		// Bounded like the event store's appends: the two share the
		// connection's window of unacknowledged publishes.
		if len(futures) >= store.MaxPending {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	if err := wait(); err != nil {
		return err
	}
	ok = true
	p.setApplied(seq)
	return nil
}

// reconcile makes every KV bucket equal to the state: after a replay, the
// buckets may hold entries from before a crash or from an older build.
func (p *Projector) reconcile(ctx context.Context) error {
	p.mu.Lock()
	want := map[Key][]byte{}
	for _, k := range p.state.Keys() {
		v, err := encode(p.state.Value(k))
		if err != nil {
			p.mu.Unlock()
			return err
		}
		if v != nil {
			want[k] = v
		}
	}
	clear(p.dirty)
	seq := p.state.LastSeq
	p.mu.Unlock()

	puts, deletes := 0, 0
	for _, b := range Buckets() {
		have, err := readAll(ctx, p.kv[b])
		if err != nil {
			return err
		}
		for key := range have {
			if _, ok := want[Key{b, key}]; !ok {
				if err := p.kv[b].Delete(ctx, key); err != nil {
					return fmt.Errorf("deleting stale %s/%s: %w", b, key, err)
				}
				deletes++
			}
		}
		for k, v := range want {
			if k.Bucket != b || bytes.Equal(have[k.Key], v) {
				continue
			}
			if _, err := p.kv[b].Put(ctx, k.Key, v); err != nil {
				return fmt.Errorf("writing %s/%s: %w", b, k.Key, err)
			}
			puts++
		}
	}
	p.log.Info("read models reconciled", zap.Int("written", puts), zap.Int("deleted", deletes))
	p.setApplied(seq)
	return nil
}

// readAll returns the live entries of a bucket.
func readAll(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("reading KV %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string][]byte{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			out[e.Key()] = e.Value()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// encode renders a read model value as its canonical JSON (nil stays nil).
func encode(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding read model: %w", err)
	}
	return b, nil
}
