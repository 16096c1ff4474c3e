package projections

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// cpWriter names this projector's checkpoint object (CheckpointObjectOf).
	cpWriter  string
	cpMu      sync.Mutex
	cpSeq     uint64
	cpAt      time.Time
	cpWriting chan struct{}
	cpStop    context.CancelFunc
	// from is the checkpoint's sequence Run started from (0: the whole
	// stream was replayed); set before Ready closes.
	from uint64
	// freshBuckets says New created a KV bucket: it holds nothing, so
	// the start compares every entry even after a checkpoint.
	freshBuckets bool

	// revs is what this projector knows of the KV revisions of the
	// connectors' entries it writes, which its writes are conditional
	// on; kvStreams are the buckets' streams, for looking one up. Both
	// are used under flushMu only.
	revs      map[string]*kvRevs
	kvStreams map[string]jetstream.Stream
	// kick asks the flusher for a flush.
	kick chan struct{}

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

// WithCheckpointWriter names the object this projector writes its
// checkpoints in (CheckpointObjectOf): a replica's own, so that replicas
// never overwrite one another's.
func WithCheckpointWriter(writer string) Option {
	return func(p *Projector) { p.cpWriter = writer }
}

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
	// KVWriteUnheld: write them, as no replica holds the connector (one
	// no longer configured); a write refused because another replica
	// wrote the entry since is dropped, not written again: that replica
	// may have just taken the connector over from this one.
	KVWriteUnheld
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
func (p *Projector) writesKV(k Key) bool {
	w := p.kvWrite(k)
	return w == KVWriteNow || w == KVWriteUnheld
}

// New creates the KV buckets and the checkpoint bucket (if missing) and
// returns a projector that is not yet running.
func New(ctx context.Context, js jetstream.JetStream, st *store.Store, replicas int, log *zap.Logger, opts ...Option) (*Projector, error) {
	if replicas < 1 {
		replicas = 1
	}
	p := &Projector{js: js, store: st, log: log, kv: map[string]jetstream.KeyValue{},
		state: NewState(), dirty: map[Key]struct{}{},
		revs: map[string]*kvRevs{}, kvStreams: map[string]jetstream.Stream{}, kick: make(chan struct{}, 1),
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
		cp.name = CheckpointObjectOf(p.cpWriter)
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
		flusher.Go(func() { p.flushing(fctx) })
		p.readyOnce.Do(func() { close(p.ready) })
		p.log.Info("projections ready", zap.Uint64("seq", p.Seq()), zap.Uint64("replayed", p.state.LastSeq-(from-1)),
			zap.Duration("took", time.Since(started).Round(time.Millisecond)))
		p.poke() // the flusher considers a checkpoint of the replay
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
			p.poke()
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
func (p *Projector) flushing(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		if err := p.flushRetrying(ctx); err != nil {
			return // only when ctx ends
		}
		p.maybeCheckpoint(ctx)
	}
}

// poke asks the flusher for a flush; one already due takes what is dirty
// now too.
func (p *Projector) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
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
		if errors.Is(err, errRefused) && attempt == 1 {
			// Written again at once on the revisions read now, unless
			// this projector no longer writes them (a deposed holder).
			continue
		}
		switch {
		case errors.Is(err, errRefused) && attempt == 2:
			// Refused again on the revisions just read: two replicas
			// both believe they hold the connector.
			p.log.Warn("KV writes refused again: another process writes this connector's read models too (two replicas with the same daemon { replica }, or an older dirsyncd on the same NATS?); retrying", zap.Error(err))
		case attempt == 1:
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

// flush writes the dirty read model entries to KV. A write another writer
// got in before (a refusal) leaves its entry dirty and fails the flush
// with errRefused, so that flushRetrying writes it again at once if this
// projector still writes it as the holder (KVWriteNow); an unheld
// connector's refused write is dropped.
func (p *Projector) flush(ctx context.Context) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	writes := make([]kvPut, 0, len(p.dirty))
	var later []Key
	skipped := map[string]bool{}
	unheld := map[Key]bool{}
	for k := range p.dirty {
		switch p.kvWrite(k) {
		case KVSkip:
			skipped[k.Connector()] = true
			continue
		case KVLater:
			later = append(later, k)
			continue
		case KVWriteUnheld:
			unheld[k] = true
		}
		v, err := encode(p.state.Value(k))
		if err != nil {
			p.mu.Unlock()
			return err
		}
		writes = append(writes, kvPut{k, v})
	}
	clear(p.dirty)
	for _, k := range later {
		p.dirty[k] = struct{}{}
	}
	seq := p.state.LastSeq
	p.mu.Unlock()
	// A connector held elsewhere is written by its holder: what this
	// projector knew of its revisions goes stale from now on (unless it
	// wrote some of its entries here, on the check just before it was
	// deposed).
	for _, w := range writes {
		delete(skipped, w.k.Connector())
	}
	for c := range skipped {
		delete(p.revs, c)
	}
	refused, err := p.writeKV(ctx, writes)
	if err != nil {
		// Written or not, every entry of a failed flush is written again.
		p.redirty(writes)
		return err
	}
	// A holder's refused writes are written again on the revisions read
	// then; others' are dropped.
	refused = slices.DeleteFunc(refused, func(w kvPut) bool { return unheld[w.k] })
	if len(refused) > 0 {
		p.redirty(refused)
		return fmt.Errorf("%w: %d entries, %s first", errRefused, len(refused), refused[0].k)
	}
	p.setApplied(seq)
	return nil
}

// errRefused says KV refused writes because another writer changed their
// entries since this projector last wrote or read them.
var errRefused = errors.New("KV writes refused: another replica wrote the entries since this one last did")

// redirty marks entries to be written again.
func (p *Projector) redirty(writes []kvPut) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, w := range writes {
		p.dirty[w.k] = struct{}{}
	}
}

// kvPut is one KV write: a value, or a delete when val is nil.
type kvPut struct {
	k   Key
	val []byte
}

// kvRevs is what a projector knows of one connector's KV entries: the
// revision of each as it last wrote or read it. When complete, an entry
// missing from keys is known to have never been written; otherwise its
// revision is looked up before it is written.
type kvRevs struct {
	keys     map[Key]uint64
	complete bool
}

// lookupLimit is how many unknown revisions of a connector a flush looks
// up one by one; more are read with all of the connector's entries (a
// start from a checkpoint with a long tail).
const lookupLimit = 256

// writeKV writes entries to KV, each on condition that its revision is
// still the one this projector last wrote or read: a replica deposed while
// paused between its lease check and the write cannot write an older
// value over the new holder's. It returns the writes refused that way; a
// refused entry's revision is looked up again before its next write.
// Writes are pipelined: each condition is on the entry's own subject, and
// a flush writes an entry once.
func (p *Projector) writeKV(ctx context.Context, writes []kvPut) (refused []kvPut, err error) {
	if err := p.learnRevs(ctx, writes); err != nil {
		return nil, err
	}
	type inflight struct {
		w kvPut
		f jetstream.PubAckFuture
	}
	var pending []inflight
	wait := func() error {
		for _, in := range pending {
			select {
			case ack := <-in.f.Ok():
				p.revs[in.w.k.Connector()].keys[in.w.k] = ack.Sequence
			case err := <-in.f.Err():
				if !isWrongRevision(err) {
					return fmt.Errorf("writing %s: %w", in.w.k, err)
				}
				refused = append(refused, in.w)
				r := p.revs[in.w.k.Connector()]
				delete(r.keys, in.w.k)
				r.complete = false
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		pending = pending[:0]
		return nil
	}
	for _, w := range writes {
		rev := p.revs[w.k.Connector()].keys[w.k]
		if w.val == nil && rev == 0 {
			continue // never written: nothing to delete
		}
		m := &nats.Msg{Subject: "$KV." + w.k.Bucket + "." + w.k.Key, Data: w.val, Header: nats.Header{}}
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		if w.val == nil {
			m.Header.Set(kvOperation, kvDelete)
		}
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", w.k, err)
		}
		pending = append(pending, inflight{w, f})
		// Bounded like the event store's appends: the two share the
		// connection's window of unacknowledged publishes.
		if len(pending) >= store.MaxPending {
			if err := wait(); err != nil {
				return nil, err
			}
		}
	}
	if err := wait(); err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		p.log.Warn("KV writes refused: another replica wrote these read-model entries since this one did (it holds the connector now, or did meanwhile)",
			zap.Int("entries", len(refused)), zap.Stringer("first", refused[0].k))
	}
	return refused, nil
}

// How a KV delete is written: a marker message with this header.
const (
	kvOperation = "KV-Operation"
	kvDelete    = "DEL"
)

// isWrongRevision reports a write refused for its expected revision (a
// replicated stream answers 10164 where a single server answers 10071).
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// learnRevs makes sure the revision of every entry to write is known: a
// connector's few unknown ones are looked up one by one, many by reading
// all of its entries.
func (p *Projector) learnRevs(ctx context.Context, writes []kvPut) error {
	unknown := map[string][]Key{}
	for _, w := range writes {
		c := w.k.Connector()
		r := p.revs[c]
		if r == nil {
			r = &kvRevs{keys: map[Key]uint64{}}
			p.revs[c] = r
		}
		if _, ok := r.keys[w.k]; !ok && !r.complete {
			unknown[c] = append(unknown[c], w.k)
		}
	}
	for c, keys := range unknown {
		r := p.revs[c]
		if len(keys) > lookupLimit {
			all, err := p.readRevs(ctx, c)
			if err != nil {
				return err
			}
			r.keys, r.complete = all, true
			continue
		}
		for _, k := range keys {
			rev, err := p.lookupRev(ctx, k)
			if err != nil {
				return err
			}
			r.keys[k] = rev
		}
	}
	return nil
}

// lookupRev returns the revision of one KV entry, that of its delete
// marker if it was deleted, or 0 when it was never written.
func (p *Projector) lookupRev(ctx context.Context, k Key) (uint64, error) {
	s := p.kvStreams[k.Bucket]
	if s == nil {
		var err error
		if s, err = p.js.Stream(ctx, "KV_"+k.Bucket); err != nil {
			return 0, fmt.Errorf("looking up KV bucket %s: %w", k.Bucket, err)
		}
		p.kvStreams[k.Bucket] = s
	}
	m, err := s.GetLastMsgForSubject(ctx, "$KV."+k.Bucket+"."+k.Key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the revision of %s: %w", k, err)
	}
	return m.Sequence, nil
}

// readRevs returns the revisions of all of a connector's KV entries.
func (p *Projector) readRevs(ctx context.Context, connector string) (map[Key]uint64, error) {
	revs := map[Key]uint64{}
	for _, b := range Buckets() {
		have, err := readAll(ctx, p.kv[b], connector, true)
		if err != nil {
			return nil, err
		}
		for key, e := range have {
			revs[Key{b, key}] = e.rev
		}
	}
	return revs, nil
}

// reconcile makes every KV bucket equal to the state: after a replay, the
// buckets may hold entries from before a crash or from an older build.
// Only the entries this projector writes (WriteKVFor) are compared.
func (p *Projector) reconcile(ctx context.Context) error {
	return p.reconcileWhere(ctx, "", p.writesKV)
}

// ReconcileConnector makes the KV entries of one connector equal to the
// state: a replica that takes a connector over writes what its holder
// before may have left unwritten, and learns the revisions its writes are
// conditional on from now on.
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

	// What is read here is all there is of these connectors' entries:
	// their revisions are known from now on (complete).
	revs := map[string]*kvRevs{}
	revsOf := func(c string) *kvRevs {
		r := revs[c]
		if r == nil {
			r = &kvRevs{keys: map[Key]uint64{}, complete: true}
			revs[c] = r
		}
		return r
	}
	for k := range want {
		revsOf(k.Connector())
	}
	var writes []kvPut
	deletes := 0
	for _, b := range Buckets() {
		have, err := readAll(ctx, p.kv[b], connector, false)
		if err != nil {
			return err
		}
		for key, e := range have {
			k := Key{b, key}
			if !where(k) {
				continue
			}
			revsOf(k.Connector()).keys[k] = e.rev
			if _, ok := want[k]; !ok && !e.deleted {
				writes = append(writes, kvPut{k: k})
				deletes++
			}
		}
		for k, v := range want {
			if k.Bucket == b && !bytes.Equal(have[k.Key].val, v) {
				writes = append(writes, kvPut{k, v})
			}
		}
	}
	if connector == "" {
		p.revs = revs
	} else {
		p.revs[connector] = revsOf(connector)
	}
	refused, err := p.writeKV(ctx, writes)
	if err != nil {
		return err
	}
	// Refused ones are written by the next flush, on their new revisions.
	p.redirty(refused)
	if len(refused) > 0 {
		p.poke()
	}
	puts := len(writes) - deletes
	if connector == "" {
		p.log.Info("read models reconciled", zap.Int("written", puts), zap.Int("deleted", deletes))
		p.setApplied(seq)
	} else {
		p.log.Info("a connector's read models checked in KV as it is taken over", zap.String("connector", connector),
			zap.Int("written", puts), zap.Int("deleted", deletes))
	}
	return nil
}

// kvEntry is one KV entry as read: its value (none for a delete marker)
// and revision.
type kvEntry struct {
	val     []byte
	rev     uint64
	deleted bool
}

// readAll returns the entries of a bucket, delete markers included, or of
// one connector's keys in it when connector is set; metaOnly reads their
// revisions without their values.
func readAll(ctx context.Context, kv jetstream.KeyValue, connector string, metaOnly bool) (map[string]kvEntry, error) {
	var opts []jetstream.WatchOpt
	if metaOnly {
		opts = append(opts, jetstream.MetaOnly())
	}
	var w jetstream.KeyWatcher
	var err error
	if connector == "" {
		w, err = kv.WatchAll(ctx, opts...)
	} else {
		w, err = kv.WatchFiltered(ctx, []string{connector, connector + ".>"}, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("reading KV %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]kvEntry{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			out[e.Key()] = kvEntry{val: e.Value(), rev: e.Revision(), deleted: e.Operation() != jetstream.KeyValuePut}
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
