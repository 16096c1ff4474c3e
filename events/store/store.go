// Package store keeps dirsync's events in a NATS JetStream stream: the log
// that is the source of truth and that every read model replays.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events"
)

// StreamName is the JetStream stream holding every dirsync event.
const StreamName = "DIRSYNC"

// StreamConfig is the stream dirsync creates at start (and documents in
// docs/events.md). Retention is limits-based with no limits: the log must
// replay from the first event, so nothing is ever discarded by interest or
// acknowledgement. DenyPurge and DenyDelete make that hold against every
// client, the daemon's own credential included: the server refuses a purge
// or a message delete on the stream. Open's update applies them to a
// stream created before they were set; the server refuses to clear them
// again, so a release without them cannot open this stream (see
// docs/events.md).
func StreamConfig(replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "dirsync events: sync states, directory facts, recipient decisions",
		Subjects:    []string{events.SubjectRoot + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  1 << 20,
		Duplicates:  DuplicateWindow,
		Replicas:    replicas,
		AllowDirect: true,
		DenyPurge:   true,
		DenyDelete:  true,
		// Fenced appends go as atomic batches (see fence.go).
		AllowAtomicPublish: true,
	}
}

// Store appends events to the stream and reads them back.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	disk   Disk
	// replicas is the stream's replica count (its JetStream tier).
	replicas int
	// published counts events acknowledged as stored by this process.
	published atomic.Uint64
	// own holds the events this process appended, by sequence, until
	// FollowOwn reads them (see there); nil until FollowOwn starts.
	own atomic.Pointer[ownEvents]
	// connectorLocks make each connector's conditional writes take
	// turns (see lockConnector).
	connectorLocks sync.Map
}

// ownEvents are the events this process is appending, by ID, kept for
// FollowOwn: the newest max of them, so that one never read (an append
// that failed, a duplicate the server dropped) gives way in time.
// Recorded before they are published, since the follower may read an
// event before its publisher has the acknowledgement.
type ownEvents struct {
	mu   sync.Mutex
	m    map[string]ownEvent
	ring []string // IDs in the order they came; ring[next] is the oldest
	next int
	seed maphash.Seed
}

// ownEvent is an event and a hash of the bytes it was stored as: a
// stored message is taken for the event only when its bytes hash the
// same (an older message with the same ID, stored before the duplicate
// window, does not). A hash rather than the bytes, so that an append's
// encoded chunks are freed once acknowledged, not when folded.
type ownEvent struct {
	e    events.Event
	sum  uint64
	size int
}

// OwnEventsMax bounds the appended events kept for FollowOwn: a few
// chunks of an append (MaxPending each), which the follower of a live
// daemon reads within milliseconds. A follower further behind decodes
// what was dropped, as it would anyway.
const OwnEventsMax = 8 * MaxPending

func (o *ownEvents) put(e events.Event, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if old := o.ring[o.next]; old != "" {
		delete(o.m, old)
	}
	o.ring[o.next] = e.ID
	o.next = (o.next + 1) % len(o.ring)
	o.m[e.ID] = ownEvent{e, maphash.Bytes(o.seed, data), len(data)}
}

// take returns, and forgets, the event appended with this ID as data.
func (o *ownEvents) take(id string, data []byte) (events.Event, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	oe, ok := o.m[id]
	if ok {
		delete(o.m, id)
	}
	return oe.e, ok && oe.size == len(data) && oe.sum == maphash.Bytes(o.seed, data)
}

// Published returns how many events this Store has stored (acknowledged
// by the server), duplicates that the server dropped by Msg-Id included.
func (s *Store) Published() uint64 { return s.published.Load() }

// Option configures a Store.
type Option func(*Store)

// WithDisk gives the store the storage under an embedded server (see
// Disk); nil, as for an external server, leaves durability to the server
// and checks space against the account's JetStream limits only.
func WithDisk(d Disk) Option { return func(s *Store) { s.disk = d } }

// Open creates or updates the stream and returns a Store on it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, opts ...Option) (*Store, error) {
	cfg := StreamConfig(replicas)
	// A server that takes smaller messages than the stream allows would
	// refuse the largest events (a recipient with every field at its
	// bound) only when a sync meets one: say so at start instead.
	if nc := js.Conn(); nc != nil && nc.MaxPayload() > 0 && nc.MaxPayload() < int64(cfg.MaxMsgSize) {
		return nil, fmt.Errorf("the NATS server accepts messages of at most %d bytes (its max_payload), but dirsync's events may take up to %d bytes "+
			"(stream %s's max_msg_size): set max_payload to at least 1MB in the server's configuration", nc.MaxPayload(), cfg.MaxMsgSize, StreamName)
	}
	if nc := js.Conn(); nc != nil && !atLeast(nc.ConnectedServerVersion(), 2, 12) {
		return nil, fmt.Errorf("the NATS server is version %s, but dirsync needs nats-server 2.12 or newer: its fenced appends (one writer per connector) "+
			"use atomic batch publishing; upgrade the server, or leave nats { url } out of plugins.hcl to use the embedded one", nc.ConnectedServerVersion())
	}
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", StreamName, err)
	}
	if !st.CachedInfo().Config.AllowAtomicPublish {
		version := "an unknown version"
		if nc := js.Conn(); nc != nil {
			version = nc.ConnectedServerVersion()
		}
		return nil, fmt.Errorf("the NATS server (%s) does not support atomic batch publishing, which dirsync's fenced appends need (one writer per connector): "+
			"upgrade it to nats-server 2.12 or newer", version)
	}
	s := &Store{js: js, stream: st, replicas: max(replicas, 1)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// atLeast reports whether a server version ("2.15.2", "v2.12.0-beta")
// is major.minor or newer; an unreadable version is taken for new
// enough (the stream's allow_atomic check catches an old one).
func atLeast(version string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(strings.TrimPrefix(version, "v"), "%d.%d", &ma, &mi); err != nil {
		return true
	}
	return ma > major || ma == major && mi >= minor
}

// AckStall is how long an append waits for the next acknowledgement
// before it gives up: nats-server does not answer a publish to a stream it
// could not write (e.g. on ENOSPC), and a SAVING must not hang until its
// timeout for that.
const AckStall = time.Minute

// MaxPending bounds a writer's unacknowledged async publishes, so a large
// sync keeps a steady pipeline without unbounded memory. The connection's
// window (broker.MaxAsyncPending) must exceed the sum over its writers.
const MaxPending = 4096

// MaxPendingBytes bounds the bytes of a writer's unacknowledged publishes
// the same way: 4,096 events of a few hundred bytes are about 2 MiB, and
// a chunk of large events ends at 8 MiB.
const MaxPendingBytes = 8 << 20

// Append publishes evs in order, each with its ID as Nats-Msg-Id, and
// returns once every one is acknowledged as stored and, with a Disk, synced
// to it. It returns the highest stream sequence written (0 if evs is
// empty). On error some events may be stored; appending the same events
// again stores only the missing ones.
//
// Before it writes, Append checks that the events fit (see Headroom); if
// they cannot, it stores nothing and returns an error wrapping
// ErrStorageFull.
func (s *Store) Append(ctx context.Context, evs []events.Event) (uint64, error) {
	return s.appendEvents(ctx, nil, evs, nil, false)
}

// AppendProgress is Append that calls progress (if not nil) with the
// number of events stored so far, every few thousand events: a long SAVING
// shows how far it is.
//
// AppendProgress takes evs over: it sets each entry to the zero Event
// once the entry is encoded, so that a job's planned events are freed as
// they are sent rather than all held to the end of its SAVING (FollowOwn
// keeps each one until it is folded). Append leaves evs as they are.
func (s *Store) AppendProgress(ctx context.Context, evs []events.Event, progress func(stored int)) (uint64, error) {
	return s.appendEvents(ctx, nil, evs, progress, true)
}

// appendEvents is Append, AppendProgress and AppendFenced (fence not
// nil); release says whether evs are taken over (see AppendProgress).
func (s *Store) appendEvents(ctx context.Context, fence *Fence, evs []events.Event, progress func(stored int), release bool) (uint64, error) {
	if len(evs) == 0 {
		return 0, nil
	}
	reserve := int64(Headroom)
	if finalStatesOnly(evs) {
		reserve = 0
	}
	need, err := estimate(evs)
	if err != nil {
		return 0, err
	}
	if err := s.fits(ctx, len(evs), need, reserve, 0, len(evs)); err != nil {
		return 0, err
	}
	var last uint64
	stored := 0
	futures := make([]jetstream.PubAckFuture, 0, min(len(evs), MaxPending))
	own := s.own.Load()
	stall := time.NewTimer(AckStall)
	defer stall.Stop()
	var outage time.Time // when the connection first failed, if it did
	wait := func() error {
		for i := 0; i < len(futures); i++ {
			f := futures[i]
			stall.Reset(AckStall)
			select {
			case ack := <-f.Ok():
				last = max(last, ack.Sequence)
				if !ack.Duplicate {
					s.published.Add(1)
				}
			case err := <-f.Err():
				if !lostConnection(err) {
					return s.storeErr(f.Msg(), err)
				}
				if err := s.resend(ctx, futures[i:], &outage); err != nil {
					return fmt.Errorf("%w (%d of %d events were stored before)", err, stored+i, len(evs))
				}
				i--
			case <-stall.C:
				return fmt.Errorf("nats-server acknowledged no event for %s after %d of %d were stored: it stops answering for a stream it cannot write "+
					"(is the disk under its store full or failing? see its log); fix that, restart dirsyncd, then run the sync again", AckStall, stored, len(evs))
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		stored += len(futures)
		futures = futures[:0]
		if progress != nil {
			progress(stored)
		}
		return nil
	}
	// Events go out in chunks of MaxPending. Each chunk is marshaled while
	// the server stores the one before, then checked against the space
	// left once that one is stored: the estimate above may be off, and
	// something else may fill the disk meanwhile. Stopping at a chunk
	// boundary keeps Headroom free for the job's final state.
	var next []*nats.Msg
	var nextSize int64
	// A chunk ends at MaxPending events or MaxPendingBytes, whichever
	// comes first (at least one event): large events (a recipient with
	// many tags) must not flood the connection faster than the server
	// stores them, or it cuts the writer off as a slow consumer.
	// Each chunk's events are encoded into one buffer (a chunk's worth,
	// from the estimate) and sliced out of it: one allocation a chunk
	// instead of one an event. The chunk before may still be in flight,
	// so every chunk gets a buffer of its own.
	slabCap := int(min(int64(MaxPendingBytes)+64<<10, need/int64(len(evs))*MaxPending+64<<10))
	// A fenced append sends each chunk as one atomic batch, which
	// nats-server bounds at MaxBatch messages.
	chunkMax := MaxPending
	if fence != nil {
		chunkMax = MaxBatch
		slabCap = int(min(int64(MaxPendingBytes)+64<<10, need/int64(len(evs))*MaxBatch+64<<10))
	}
	prepare := func(from int) error {
		next, nextSize = nil, 0
		slab := make([]byte, 0, slabCap)
		for i := from; i < min(len(evs), from+chunkMax); i++ {
			e := evs[i]
			if fence != nil {
				e.Epoch = fence.Epoch
			}
			if len(next) > 0 && nextSize >= MaxPendingBytes {
				break
			}
			start := len(slab)
			var err error
			if slab, err = e.AppendMarshal(slab); err != nil {
				return err
			}
			b := slab[start:len(slab):len(slab)]
			msg := nats.NewMsg(e.Subject)
			msg.Data = b
			msg.Header.Set(jetstream.MsgIDHeader, e.ID)
			if own != nil {
				own.put(e, b)
			}
			next = append(next, msg)
			nextSize += recordSize(msg)
			if release {
				evs[i] = events.Event{}
			}
		}
		if fence != nil {
			fenceBatch(fence, next)
		}
		return nil
	}
	if err := prepare(0); err != nil {
		return 0, err
	}
	for from := 0; from < len(evs); {
		chunk, size := next, nextSize
		if from > 0 {
			if err := s.fits(ctx, len(chunk), size, reserve, stored, len(evs)); err != nil {
				return last, err
			}
		}
		if fence != nil {
			// One batch at a time: the next is encoded while nats-server
			// stores this one.
			done := make(chan error, 1)
			go func() {
				seq, err := s.sendFenced(ctx, fence, chunk, &outage)
				last = max(last, seq)
				done <- err
			}()
			from += len(chunk)
			var perr error
			if from < len(evs) {
				perr = prepare(from)
			}
			if err := <-done; err != nil {
				return last, fmt.Errorf("%w (%d of %d events were stored before)", err, stored, len(evs))
			}
			if perr != nil {
				return last, perr
			}
			stored += len(chunk)
			if progress != nil {
				progress(stored)
			}
			continue
		}
		for _, msg := range chunk {
			f, err := s.publish(ctx, msg, &outage)
			if err != nil {
				return last, fmt.Errorf("publishing on %s: %w", msg.Subject, err)
			}
			futures = append(futures, f)
		}
		from += len(chunk)
		if from < len(evs) {
			if err := prepare(from); err != nil {
				return last, err
			}
		}
		if err := wait(); err != nil {
			return last, err
		}
	}
	if s.disk != nil {
		if err := s.disk.Sync(ctx, StreamName); err != nil {
			return last, fmt.Errorf("syncing stream %s to disk: %w", StreamName, err)
		}
	}
	return last, nil
}

// DuplicateWindow is how long the stream remembers an event ID
// (Nats-Msg-Id) to store an event sent twice once. Its price is paid at
// start: nats-server reloads the IDs of every event written in the last
// DuplicateWindow, so a restart right after a large sync takes longer and
// more memory than one on a log at rest. That cost is bounded by what two
// minutes of writing can store, not by the length of the log.
const DuplicateWindow = 2 * time.Minute

// MaxOutage bounds how long an append waits for a lost NATS connection
// to come back before it fails. It stays well inside DuplicateWindow, so
// that resending an event whose acknowledgement was lost stores it once.
const MaxOutage = time.Minute

// lostConnection reports whether a publish failed because the server went
// away (restart, failover, network) rather than because it refused the
// event: such a publish may be sent again.
func lostConnection(err error) bool {
	return errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		// The socket failed under a publish before the client noticed the
		// server was gone: it reconnects, as for ErrDisconnected.
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
}

// publish sends msg, waiting out a lost connection and sending again.
// outage is when this append first lost the connection (zero: not yet).
func (s *Store) publish(ctx context.Context, msg *nats.Msg, outage *time.Time) (jetstream.PubAckFuture, error) {
	for {
		f, err := s.js.PublishMsgAsync(msg)
		if err == nil || !lostConnection(err) {
			return f, err
		}
		if err := s.awaitConnection(ctx, outage); err != nil {
			return nil, err
		}
	}
}

// resend waits until the connection is back and publishes the messages of
// futures again, replacing them in place. Their Nats-Msg-Id makes the
// server store an event once even when its first publish had been stored
// and only the acknowledgement was lost.
func (s *Store) resend(ctx context.Context, futures []jetstream.PubAckFuture, outage *time.Time) error {
	if err := s.awaitConnection(ctx, outage); err != nil {
		return err
	}
	for i, f := range futures {
		nf, err := s.publish(ctx, f.Msg(), outage)
		if err != nil {
			return fmt.Errorf("publishing on %s again after NATS came back: %w", f.Msg().Subject, err)
		}
		futures[i] = nf
	}
	return nil
}

// awaitConnection waits until the NATS connection is back, at most until
// MaxOutage after *outage (set to now if this is the append's first
// loss), and a moment more for JetStream to be ready.
func (s *Store) awaitConnection(ctx context.Context, outage *time.Time) error {
	if outage.IsZero() {
		*outage = time.Now()
	}
	deadline := outage.Add(MaxOutage)
	nc := s.js.Conn()
	for nc.Status() != nats.CONNECTED {
		if nc.IsClosed() {
			return errors.New("the NATS connection is closed")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS has been unreachable for more than %s (is nats-server running? see nats { url } in plugins.hcl); "+
				"run the sync again once it is back (the next completed sync repairs partial changes)", MaxOutage)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("NATS kept failing for more than %s; run the sync again (the next completed sync repairs partial changes)", MaxOutage)
	}
	// A server that just restarted may answer before JetStream is ready:
	// those publishes fail again and come back here, a moment later.
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// LastSeq returns the sequence of the newest stored event.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading stream %s info: %w", StreamName, err)
	}
	return info.State.LastSeq, nil
}

// Message is one stored event as read, or the reason it could not be
// decoded (Err wraps events.ErrMalformed). Seq is always set.
type Message struct {
	Seq   uint64
	Event events.Event
	Err   error
	// Pending is how many stored messages follow this one.
	Pending uint64
}

// Follow reads the stream from sequence from (1 = the beginning) and calls
// fn for each message, in order, until ctx ends or fn returns an error. It
// keeps following new events as they are stored. It uses an ordered
// consumer: nothing is acknowledged, nothing on the server changes.
func (s *Store) Follow(ctx context.Context, from uint64, fn func(Message) error) error {
	return s.follow(ctx, from, nil, fn)
}

// FollowOwn is Follow for the one follower that folds what this process
// appends (the daemon's read models): an event this Store appended comes
// as it was built, with its data as the typed value, instead of being
// decoded back from the bytes just written (the stored message's ID must
// match). Every other event, and any the follower reads too late, is
// decoded as Follow does. Rebuilds use Follow: they must read the bytes.
func (s *Store) FollowOwn(ctx context.Context, from uint64, fn func(Message) error) error {
	own := &ownEvents{m: map[string]ownEvent{}, ring: make([]string, OwnEventsMax), seed: maphash.MakeSeed()}
	if !s.own.CompareAndSwap(nil, own) {
		return errors.New("store: FollowOwn is already running on this Store")
	}
	defer s.own.Store(nil)
	return s.follow(ctx, from, own, fn)
}

func (s *Store) follow(ctx context.Context, from uint64, own *ownEvents, fn func(Message) error) error {
	if from < 1 {
		from = 1
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return fmt.Errorf("creating ordered consumer on %s: %w", StreamName, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", StreamName, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s: %w", StreamName, err)
		}
		m, err := message(msg, own)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

// message is a consumed stored message as a Message: the event this
// process appended when own holds it, else decoded from its bytes.
func message(msg jetstream.Msg, own *ownEvents) (Message, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return Message{}, fmt.Errorf("reading %s metadata: %w", StreamName, err)
	}
	m := Message{Seq: meta.Sequence.Stream, Pending: meta.NumPending}
	if e, ok := own.takeFor(msg.Headers(), msg.Data()); ok {
		m.Event = e
	} else {
		m.Event, m.Err = events.Decode(msg.Data())
	}
	m.Event.Seq = m.Seq
	return m, nil
}

// takeFor is take for a stored message's headers; nil holds nothing.
func (o *ownEvents) takeFor(h nats.Header, data []byte) (events.Event, bool) {
	if o == nil {
		return events.Event{}, false
	}
	return o.take(h.Get(jetstream.MsgIDHeader), data)
}

// Read calls fn, in order, for each stored message on one of the subjects
// (filters may use wildcards) with a sequence from from to to (0: the
// newest stored when Read starts), and returns when there are no more.
// History and change lists are read this way when asked, so the daemon
// does not keep them in memory: nats-server finds a subject's messages
// through its per-subject index without reading the rest of the stream.
func (s *Store) Read(ctx context.Context, subjects []string, from, to uint64, fn func(Message) error) error {
	if from < 1 {
		from = 1
	}
	if to != 0 && to < from {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	}
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("reading %v from %s: %w", subjects, StreamName, err)
	}
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return nil
	}
	batch := int(min(info.NumPending, 1024))
	it, err := cons.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return fmt.Errorf("reading %v from %s: %w", subjects, StreamName, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading %v from %s: %w", subjects, StreamName, err)
		}
		m, err := message(msg, nil)
		if err != nil {
			return err
		}
		if to != 0 && m.Seq > to {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Pending == 0 || (to != 0 && m.Seq >= to) {
			return nil
		}
	}
}

// MsgID returns the Nats-Msg-Id (the event ID) of the message stored at
// seq, or ErrNoMessage: a read-model checkpoint names the event it
// reflects by both, so a stream created anew under the same name does not
// pass for the one the checkpoint was taken from.
func (s *Store) MsgID(ctx context.Context, seq uint64) (string, error) {
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return "", fmt.Errorf("%w: %d", ErrNoMessage, seq)
		}
		return "", fmt.Errorf("reading event %d of %s: %w", seq, StreamName, err)
	}
	return m.Header.Get(nats.MsgIdHdr), nil
}

// ErrNoMessage says a stream holds no message at a sequence.
var ErrNoMessage = errors.New("no event at sequence")
