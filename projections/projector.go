package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	// json.Marshal's bytes at about twice its speed: a first sync writes
	// 100,000 read-model values (TestEncodeIsMarshal holds them equal).
	"github.com/segmentio/encoding/json"

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
	// flushMu makes flushes take turns, so that a key's writes reach KV
	// in the order of the state's changes.
	flushMu sync.Mutex

	// Checkpoints: cp is nil when they are off. cpSeq and cpAt say when
	// the last one was encoded (cpMu: the writer's goroutine resets them
	// when a write fails); cpWriting is the write in flight, if any,
	// and cpStop cancels it.
	cp         *Checkpoints
	cpEvery    uint64
	cpInterval time.Duration
	cpMu       sync.Mutex
	cpSeq      uint64
	cpAt       time.Time
	cpWriting  chan struct{}
	cpStop     context.CancelFunc
	// from is the checkpoint's sequence Run started from (0: the whole
	// stream was replayed); set before Ready closes.
	from uint64
	// freshBuckets says New created a KV bucket: it holds nothing, so
	// the start compares every entry even after a checkpoint.
	freshBuckets bool

	// writes says what this projector does with each connector's KV
	// entries (nil: writes them all); see WriteKVFor.
	writes func(connector string) KVWrite

	// applied is the last sequence both folded and mirrored to KV.
	appliedMu sync.Mutex
	applied   uint64
	changed   chan struct{} // closed and replaced whenever applied moves
	ready     chan struct{}
	readyOnce sync.Once
}

// Checkpoint defaults: a checkpoint is written when the projector has
// caught up and at least CheckpointEvery events or CheckpointInterval
// (with at least one event) have passed since the last, and at a clean
// stop. At 100,000 users one takes about a second to write, so the tail a
// start replays stays short without the writes costing much.
const (
	CheckpointEvery    = 100_000
	CheckpointInterval = 10 * time.Minute
)

// Option configures a Projector.
type Option func(*Projector)

// WithCheckpoints sets how often checkpoints are written; every 0 turns
// them off (each start replays the whole stream).
func WithCheckpoints(every uint64, interval time.Duration) Option {
	return func(p *Projector) { p.cpEvery, p.cpInterval = every, interval }
}

// KVWrite is what a projector does with a connector's KV entries.
type KVWrite int

const (
	// KVWriteNow: write them (this replica holds the connector).
	KVWriteNow KVWrite = iota
	// KVSkip: leave them to the replica that holds the connector.
	KVSkip
	// KVLater: keep them to write until it is known who holds the
	// connector (a replica that has not campaigned yet).
	KVLater
)

// WriteKVFor makes the projector write to KV only the entries of the
// connectors for which writes says so: replicas that share a NATS
// deployment all fold the whole stream, and each connector's entries are
// written by the replica holding it, so that a replica that lags cannot
// write an older value over a newer one. A connector taken over from
// another replica is brought in line by ReconcileConnector. Call it
// before Run.
func WriteKVFor(writes func(connector string) KVWrite) Option {
	return func(p *Projector) { p.writes = writes }
}

// kvWrite says what this projector does with k.
func (p *Projector) kvWrite(k Key) KVWrite {
	if p.writes == nil {
		return KVWriteNow
	}
	return p.writes(k.Connector())
}

// writesKV reports whether this projector writes k now.
func (p *Projector) writesKV(k Key) bool { return p.kvWrite(k) == KVWriteNow }

// New creates the KV buckets and the checkpoint bucket (if missing) and
// returns a projector that is not yet running.
func New(ctx context.Context, js jetstream.JetStream, st *store.Store, replicas int, log *zap.Logger, opts ...Option) (*Projector, error) {
	if replicas < 1 {
		replicas = 1
	}
	p := &Projector{js: js, store: st, log: log, kv: map[string]jetstream.KeyValue{},
		state: NewState(), dirty: map[Key]struct{}{},
		cpEvery: CheckpointEvery, cpInterval: CheckpointInterval,
		changed: make(chan struct{}), ready: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	if p.cpEvery > 0 {
		cp, err := OpenCheckpoints(ctx, js, st, replicas)
		if err != nil {
			return nil, err
		}
		p.cp = cp
	}
	for _, b := range Buckets() {
		if _, err := js.KeyValue(ctx, b); errors.Is(err, jetstream.ErrBucketNotFound) {
			p.freshBuckets = true
		}
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

// Run loads the newest usable checkpoint (or starts empty), replays the
// stream after it, brings the KV buckets in line with the result, marks
// the projector ready, and then follows new events until ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	last, err := p.store.LastSeq(ctx)
	if err != nil {
		return err
	}
	started := time.Now()
	p.cpAt = started // the interval counts from the start
	// No checkpoint write outlives Run: the daemon's stop writes the
	// last one (Checkpoint) once Run has returned.
	defer p.stopWriting()
	p.load(ctx, last)
	from := p.state.LastSeq + 1
	caughtUp := false
	// Once caught up, a goroutine of its own writes the read models to
	// KV (see flushing); it ends with Run.
	fctx, stopFlushing := context.WithCancel(ctx)
	kick := make(chan struct{}, 1)
	var flusher sync.WaitGroup
	defer flusher.Wait()
	defer stopFlushing()
	catchUp := func() error {
		// From a checkpoint, the KV buckets already hold at least its
		// state (a checkpoint is written only after the KV writes of
		// what it holds landed), and the tail's entries are dirty: writing
		// those is enough. A bucket created by this start holds nothing,
		// and a full replay may follow an older build's values: those
		// compare every entry.
		if p.from > 0 && !p.freshBuckets {
			if err := p.flushRetrying(ctx); err != nil {
				return err
			}
		} else if err := p.reconcile(ctx); err != nil {
			return err
		}
		caughtUp = true
		flusher.Go(func() { p.flushing(fctx, kick) })
		p.readyOnce.Do(func() { close(p.ready) })
		p.log.Info("projections ready", zap.Uint64("seq", p.Seq()), zap.Uint64("replayed", p.state.LastSeq-(from-1)),
			zap.Duration("took", time.Since(started).Round(time.Millisecond)))
		kick <- struct{}{} // the flusher considers a checkpoint of the replay
		return nil
	}
	if p.state.LastSeq >= last {
		if err := catchUp(); err != nil {
			return err
		}
	}
	return p.store.FollowOwn(ctx, from, func(m store.Message) error {
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
		dirty := len(p.dirty)
		p.mu.Unlock()
		if !caughtUp {
			if m.Seq >= last {
				return catchUp()
			}
			return nil
		}
		switch {
		case dirty >= 4096:
			// The flusher is behind: write here, so that the fold
			// waits for KV instead of holding ever more to write.
			if err := p.flushRetrying(ctx); err != nil {
				return err
			}
		case m.Pending == 0:
			select {
			case kick <- struct{}{}:
			default: // a flush is due already; it takes this event too
			}
		}
		return nil
	})
}

// load starts the state from the checkpoint when there is a usable one,
// and says in the log which way the start goes.
func (p *Projector) load(ctx context.Context, last uint64) {
	if p.cp == nil || last == 0 {
		return
	}
	t := time.Now()
	s, err := p.cp.Load(ctx)
	if err != nil {
		p.log.Warn("replaying the whole stream: no read-model checkpoint to start from", zap.Uint64("events", last), zap.Error(err))
		return
	}
	if s.LastSeq > last {
		p.log.Warn("replaying the whole stream: the read-model checkpoint is ahead of the stream", zap.Uint64("checkpoint", s.LastSeq), zap.Uint64("events", last))
		return
	}
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
	p.cpSeq, p.cpAt, p.from = s.LastSeq, time.Now(), s.LastSeq
	p.log.Info("read models loaded from the checkpoint", zap.Uint64("seq", s.LastSeq), zap.Uint64("tail", last-s.LastSeq),
		zap.Duration("took", time.Since(t).Round(time.Millisecond)))
}

// flushing writes the read models to KV each time the fold catches up
// with the stream (kick), one flush at a time, until ctx ends. The events
// folded while a flush is under way go out together in the next one, so a
// burst of appends (a job's SAVING) costs a few KV round trips instead of
// one per event, and the fold does not wait for them. After a flush it
// considers a checkpoint.
func (p *Projector) flushing(ctx context.Context, kick <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if err := p.flushRetrying(ctx); err != nil {
			return // only when ctx ends
		}
		p.maybeCheckpoint(ctx)
	}
}

// maybeCheckpoint starts a checkpoint when enough has been folded since
// the last, all of it is in KV (a start from the checkpoint writes only
// the entries its tail changes), and no write is in flight. The state is
// encoded under the read lock, so that it holds still (readers, View, go
// on meanwhile unless the fold waits to apply an event); the write runs
// beside the fold, so that a slow or unreachable NATS delays the next
// start's shortcut, never the read models (a job in SAVING waits on
// them). A failed write is logged and tried again later: a checkpoint
// only shortens the next start.
func (p *Projector) maybeCheckpoint(ctx context.Context) {
	if p.cp == nil {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	p.appliedMu.Lock()
	inKV := p.applied >= p.state.LastSeq
	p.appliedMu.Unlock()
	if !inKV || p.state.saving() {
		// The next flush tries again. Not while a job stores its events
		// either: the job then holds the most memory and waits on the
		// fold, which an encode under the read lock would hold up.
		return
	}
	p.cpMu.Lock()
	n := p.state.LastSeq - min(p.cpSeq, p.state.LastSeq)
	due := n > 0 && (n >= p.cpEvery || time.Since(p.cpAt) >= p.cpInterval)
	busy := p.cpWriting != nil
	p.cpMu.Unlock()
	if !due || busy {
		return
	}
	t := time.Now()
	enc, err := Encode(p.state)
	if err != nil {
		p.log.Error("cannot encode the read-model checkpoint", zap.Error(err))
		return
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	p.cpMu.Lock()
	prevSeq := p.cpSeq
	p.cpSeq, p.cpAt, p.cpWriting, p.cpStop = enc.Seq, time.Now(), done, stop
	p.cpMu.Unlock()
	go func() {
		defer close(done)
		defer stop()
		err := p.cp.Put(wctx, enc)
		p.cpMu.Lock()
		p.cpWriting, p.cpStop = nil, nil
		if err != nil && p.cpSeq == enc.Seq {
			p.cpSeq = prevSeq // not written: due again after cpInterval
		}
		p.cpMu.Unlock()
		switch {
		case err == nil:
			p.log.Info("read-model checkpoint written", zap.Uint64("seq", enc.Seq), zap.Int("bytes", len(enc.Data)),
				zap.Duration("took", time.Since(t).Round(time.Millisecond)))
		case wctx.Err() == nil:
			p.log.Warn("cannot write the read-model checkpoint; the next start replays more of the stream (trying again later)", zap.Error(err))
		}
	}()
}

// Checkpoint writes a checkpoint of everything folded, unless the last
// one is already there, after stopping any write in flight. Call it only
// after Run has returned (the daemon does at a clean stop), so that
// nothing changes the state meanwhile.
func (p *Projector) Checkpoint(ctx context.Context) error {
	if p.cp == nil {
		return nil
	}
	p.stopWriting()
	p.cpMu.Lock()
	seq := p.cpSeq
	p.cpMu.Unlock()
	if p.state.LastSeq <= seq {
		return nil
	}
	// What the checkpoint holds must be in KV first: a start from it
	// writes only the entries its tail changes.
	if err := p.flush(ctx); err != nil {
		return fmt.Errorf("writing the read models before the checkpoint: %w", err)
	}
	t := time.Now()
	enc, err := Encode(p.state)
	if err != nil {
		return err
	}
	if err := p.cp.Put(ctx, enc); err != nil {
		return err
	}
	p.cpMu.Lock()
	p.cpSeq, p.cpAt = enc.Seq, time.Now()
	p.cpMu.Unlock()
	p.log.Info("read-model checkpoint written", zap.Uint64("seq", enc.Seq), zap.Int("bytes", len(enc.Data)),
		zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return nil
}

// stopWriting cancels the checkpoint write in flight, if any, and waits
// for it to end; a write cut short leaves the previous checkpoint.
func (p *Projector) stopWriting() {
	p.cpMu.Lock()
	writing, stop := p.cpWriting, p.cpStop
	p.cpMu.Unlock()
	if writing != nil {
		stop()
		<-writing
	}
}

// StartedFrom is the sequence of the checkpoint the last Run loaded, or 0
// when it replayed the whole stream. It is meaningful once Ready is closed.
func (p *Projector) StartedFrom() uint64 { return p.from }

// Size counts what the read models hold in memory.
func (p *Projector) Size() Size {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.state.Size()
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
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	type write struct {
		k   Key
		val []byte // nil: delete
	}
	writes := make([]write, 0, len(p.dirty))
	var later []Key
	for k := range p.dirty {
		switch p.kvWrite(k) {
		case KVSkip:
			continue // its holder writes it
		case KVLater:
			later = append(later, k)
			continue
		}
		v, err := encode(p.state.Value(k))
		if err != nil {
			p.mu.Unlock()
			return err
		}
		writes = append(writes, write{k, v})
	}
	clear(p.dirty)
	for _, k := range later {
		p.dirty[k] = struct{}{}
	}
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
// Only the entries this projector writes (WriteKVFor) are compared.
func (p *Projector) reconcile(ctx context.Context) error {
	return p.reconcileWhere(ctx, "", p.writesKV)
}

// ReconcileConnector makes the KV entries of one connector equal to the
// state: a replica that takes a connector over writes what its holder
// before may have left unwritten.
func (p *Projector) ReconcileConnector(ctx context.Context, connector string) error {
	return p.reconcileWhere(ctx, connector, func(k Key) bool { return k.Connector() == connector })
}

// reconcileWhere is reconcile for the entries where says, all of one
// connector when connector is set (only its entries are read from KV).
func (p *Projector) reconcileWhere(ctx context.Context, connector string, where func(Key) bool) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	want := map[Key][]byte{}
	for _, k := range p.state.Keys() {
		if !where(k) {
			continue
		}
		v, err := encode(p.state.Value(k))
		if err != nil {
			p.mu.Unlock()
			return err
		}
		if v != nil {
			want[k] = v
		}
	}
	for k := range p.dirty {
		if where(k) {
			delete(p.dirty, k)
		}
	}
	seq := p.state.LastSeq
	p.mu.Unlock()

	puts, deletes := 0, 0
	for _, b := range Buckets() {
		have, err := readAll(ctx, p.kv[b], connector)
		if err != nil {
			return err
		}
		for key := range have {
			if !where(Key{b, key}) {
				continue
			}
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
	if connector == "" {
		p.log.Info("read models reconciled", zap.Int("written", puts), zap.Int("deleted", deletes))
		p.setApplied(seq)
	} else {
		p.log.Info("a connector's read models checked in KV as it is taken over", zap.String("connector", connector),
			zap.Int("written", puts), zap.Int("deleted", deletes))
	}
	return nil
}

// readAll returns the live entries of a bucket, or of one connector's
// keys in it when connector is set.
func readAll(ctx context.Context, kv jetstream.KeyValue, connector string) (map[string][]byte, error) {
	var w jetstream.KeyWatcher
	var err error
	if connector == "" {
		w, err = kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	} else {
		w, err = kv.WatchFiltered(ctx, []string{connector, connector + ".>"}, jetstream.IgnoreDeletes())
	}
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
