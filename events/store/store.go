// Package store keeps dirsync's events in a NATS JetStream stream: the log
// that is the source of truth and that every read model replays.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
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
// acknowledgement.
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
		Duplicates:  2 * time.Minute,
		Replicas:    replicas,
		AllowDirect: true,
	}
}

// Store appends events to the stream and reads them back.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	// published counts events acknowledged as stored by this process.
	published atomic.Uint64
}

// Published returns how many events this Store has stored (acknowledged
// by the server), duplicates that the server dropped by Msg-Id included.
func (s *Store) Published() uint64 { return s.published.Load() }

// Open creates or updates the stream and returns a Store on it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	st, err := js.CreateOrUpdateStream(ctx, StreamConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", StreamName, err)
	}
	return &Store{js: js, stream: st}, nil
}

// MaxPending bounds a writer's unacknowledged async publishes, so a large
// sync keeps a steady pipeline without unbounded memory. The connection's
// window (broker.MaxAsyncPending) must exceed the sum over its writers.
const MaxPending = 4096

// Append publishes evs in order, each with its ID as Nats-Msg-Id, and
// returns once every one is acknowledged as stored. It returns the highest
// stream sequence written (0 if evs is empty). On error some events may be
// stored; appending the same events again stores only the missing ones.
func (s *Store) Append(ctx context.Context, evs []events.Event) (uint64, error) {
	return s.AppendProgress(ctx, evs, nil)
}

// AppendProgress is Append that calls progress (if not nil) with the
// number of events stored so far, every few thousand events: a long SAVING
// shows how far it is.
func (s *Store) AppendProgress(ctx context.Context, evs []events.Event, progress func(stored int)) (uint64, error) {
	var last uint64
	stored := 0
	futures := make([]jetstream.PubAckFuture, 0, min(len(evs), MaxPending))
	wait := func() error {
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				last = max(last, ack.Sequence)
				s.published.Add(1)
			case err := <-f.Err():
				return fmt.Errorf("storing event %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
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
	for _, e := range evs {
		b, err := e.Marshal()
		if err != nil {
			return last, err
		}
		msg := nats.NewMsg(e.Subject)
		msg.Data = b
		f, err := s.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.ID))
		if err != nil {
			return last, fmt.Errorf("publishing %s on %s: %w", e.Type, e.Subject, err)
		}
		futures = append(futures, f)
		if len(futures) >= MaxPending {
			if err := wait(); err != nil {
				return last, err
			}
		}
	}
	if err := wait(); err != nil {
		return last, err
	}
	return last, nil
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
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("reading %s metadata: %w", StreamName, err)
		}
		m := Message{Seq: meta.Sequence.Stream, Pending: meta.NumPending}
		m.Event, m.Err = events.Decode(msg.Data())
		m.Event.Seq = m.Seq
		if err := fn(m); err != nil {
			return err
		}
	}
}
