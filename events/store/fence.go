package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/dirsync/dirsync/events"
)

// Several dirsyncd replicas may share one stream, one writer per
// connector. A lease says who should write; the log itself makes sure no
// one else does. A replica that takes a connector's lease appends a claim
// event (events.TypeConnectorClaimed) on the connector's claim subject,
// conditional on that subject's last sequence, and every event it appends
// for the connector afterwards is conditional on the claim still being
// that subject's newest message (Nats-Expected-Last-Subject-Sequence with
// the -Subject form naming the claim subject). Once a newer claim is
// stored, nats-server refuses every append of the older epoch: a paused
// or partitioned replica that lost its lease cannot write, whatever it
// believes.
//
// A condition holds for one message, and nats-server lets only one
// conditional message on a subject be in flight in a cluster, so the
// events of an append go as atomic batches (ADR-50, nats-server 2.12+):
// the first message of each batch carries the condition and the batch is
// stored whole or not at all. Batches of one connector take turns.

// Fence is a connector's claim in force for this replica: appends under
// it are stored only while its claim is the connector's newest.
type Fence struct {
	Connector string
	// Epoch is the claim's epoch, written on every event appended under it.
	Epoch uint64
	// ClaimSeq is the stream sequence of the claim event.
	ClaimSeq uint64
}

// ErrFenced says an append or a claim was refused because a newer claim
// of the connector is stored: this replica no longer holds it.
var ErrFenced = errors.New("a newer claim of the connector is stored")

// MaxBatch bounds the events of one atomic batch: nats-server's default
// max_batch_size.
const MaxBatch = 1000

// Error codes of nats-server's answers that a fenced append tells apart.
const (
	codeWrongLastSequence      jetstream.ErrorCode = 10071
	codeWrongLastSeqInProgress jetstream.ErrorCode = 10164
	codeAtomicDisabled         jetstream.ErrorCode = 10174
	codeBatchIncomplete        jetstream.ErrorCode = 10176
	codeBatchDuplicate         jetstream.ErrorCode = 10201
	codeDuplicateConflict      jetstream.ErrorCode = 10158
)

// LastClaim returns the connector's claim in force and its sequence
// (0 and a zero Claim when the connector was never claimed).
func (s *Store) LastClaim(ctx context.Context, connector string) (events.Claim, uint64, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, events.ClaimSubject(connector))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Claim{}, 0, nil
	}
	if err != nil {
		return events.Claim{}, 0, fmt.Errorf("reading connector %s's last claim: %w", connector, err)
	}
	e, err := events.Decode(m.Data)
	if err != nil {
		return events.Claim{}, 0, fmt.Errorf("connector %s's last claim (event %d): %w", connector, m.Sequence, err)
	}
	var c events.Claim
	if err := e.DecodeData(&c); err != nil {
		return events.Claim{}, 0, fmt.Errorf("connector %s's last claim (event %d): %w", connector, m.Sequence, err)
	}
	return c, m.Sequence, nil
}

// Claim stores c as the connector's claim in force, superseding the one
// before (c.Previous is set from it), and returns the fence to append
// under. It fails with ErrFenced when a claim of c.Epoch or newer is
// stored already, or another one is stored meanwhile.
func (s *Store) Claim(ctx context.Context, c events.Claim, at time.Time) (Fence, error) {
	if c.Epoch == 0 {
		return Fence{}, errors.New("store: a claim needs an epoch")
	}
	deadline := time.Now().Add(AckStall)
	for {
		last, lastSeq, err := s.LastClaim(ctx, c.Connector)
		if err != nil {
			return Fence{}, err
		}
		if last.Epoch >= c.Epoch {
			return Fence{}, fmt.Errorf("%w: connector %s is claimed at epoch %d by %s, not older than epoch %d", ErrFenced, c.Connector, last.Epoch, last.Replica, c.Epoch)
		}
		c.Previous = last.Epoch
		e := events.NewClaim(c, at)
		data, err := e.Marshal()
		if err != nil {
			return Fence{}, err
		}
		msg := nats.NewMsg(e.Subject)
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, e.ID)
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(lastSeq, 10))
		unlock := s.lockConnector(c.Connector)
		seq, err := s.publishConditional(ctx, []*nats.Msg{msg})
		unlock()
		var api *jetstream.APIError
		switch {
		case err == nil:
			s.published.Add(1)
			return Fence{Connector: c.Connector, Epoch: c.Epoch, ClaimSeq: seq}, nil
		case errors.As(err, &api) && api.ErrorCode == codeWrongLastSequence:
			continue // another claim came first: look at it again
		case errors.As(err, &api) && api.ErrorCode == codeWrongLastSeqInProgress && time.Now().Before(deadline):
			if err := pause(ctx, 20*time.Millisecond); err != nil {
				return Fence{}, err
			}
			continue
		default:
			return Fence{}, fmt.Errorf("claiming connector %s at epoch %d: %w", c.Connector, c.Epoch, err)
		}
	}
}

// AppendFenced is AppendProgress under f: every event gets f's epoch and
// is stored only while f's claim is the connector's newest. Once a newer
// claim is stored it stores nothing more and returns an error wrapping
// ErrFenced; the batches before are stored whole, none in part.
func (s *Store) AppendFenced(ctx context.Context, f Fence, evs []events.Event, progress func(stored int)) (uint64, error) {
	if f.Connector == "" || f.Epoch == 0 || f.ClaimSeq == 0 {
		return 0, fmt.Errorf("store: fenced append with an incomplete fence %+v", f)
	}
	return s.appendEvents(ctx, &f, evs, progress, true)
}

// lockConnector makes the conditional writes of one connector take
// turns, and returns the unlock: nats-server refuses a conditional
// message on a subject while another one on it is in flight.
func (s *Store) lockConnector(connector string) func() {
	v, _ := s.connectorLocks.LoadOrStore(connector, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// fenceBatch sets the headers that make msgs one atomic batch
// conditional on f (one message alone needs no batch).
func fenceBatch(f *Fence, msgs []*nats.Msg) {
	first := msgs[0].Header
	first.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(f.ClaimSeq, 10))
	first.Set(jetstream.ExpectedLastSubjSeqSubjHeader, events.ClaimSubject(f.Connector))
	if len(msgs) == 1 {
		return
	}
	for i, m := range msgs {
		m.Header.Set(batchIDHeader, "") // set per attempt by publishConditional
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
	}
	msgs[len(msgs)-1].Header.Set(batchCommitHeader, "1")
}

// Headers of nats-server's atomic batches, which nats.go has no names for.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// sendFenced stores chunk under f (headers set by fenceBatch): it waits
// out a lost connection and sends the batch again, and returns the
// sequence of its last event.
func (s *Store) sendFenced(ctx context.Context, f *Fence, chunk []*nats.Msg, outage *time.Time) (uint64, error) {
	unlock := s.lockConnector(f.Connector)
	defer unlock()
	deadline := time.Now().Add(AckStall)
	for {
		seq, err := s.publishConditional(ctx, chunk)
		var api *jetstream.APIError
		switch {
		case err == nil:
			s.published.Add(uint64(len(chunk)))
			return seq, nil
		case errors.As(err, &api) && api.ErrorCode == codeWrongLastSequence:
			return 0, fmt.Errorf("%w: connector %s's claim at epoch %d (event %d) is superseded; this replica no longer holds it (%s)",
				ErrFenced, f.Connector, f.Epoch, f.ClaimSeq, api.Description)
		case errors.As(err, &api) && api.ErrorCode == codeAtomicDisabled:
			return 0, fmt.Errorf("stream %s does not allow atomic batches (allow_atomic): was it updated by an older dirsyncd? restart this one to set it again: %w", StreamName, err)
		case errors.As(err, &api) && api.ErrorCode == codeBatchDuplicate:
			// The batch was stored by an attempt whose answer was lost
			// (batches are stored whole): its events are there.
			last, lerr := s.LastSeq(ctx)
			if lerr != nil {
				return 0, lerr
			}
			return last, nil
		case errors.As(err, &api) && (api.ErrorCode == codeWrongLastSeqInProgress || api.ErrorCode == codeBatchIncomplete ||
			api.ErrorCode == codeDuplicateConflict) && time.Now().Before(deadline):
			// Another conditional write on the claim subject is in
			// flight, a message of the batch was lost, or an attempt
			// before this one is still being stored: again.
			if err := pause(ctx, 20*time.Millisecond); err != nil {
				return 0, err
			}
		case errors.Is(err, errNoAck) && time.Now().Before(deadline):
			// A stream leader lost or moved: again, to the new one.
		case errors.Is(err, errNoAck):
			return 0, fmt.Errorf("nats-server acknowledged no event for %s: it stops answering for a stream it cannot write "+
				"(is the disk under its store full or failing, or has the cluster lost its majority? see its log); fix that, then run the sync again", AckStall)
		case err != nil && lostConnection(err):
			if err := s.awaitConnection(ctx, outage); err != nil {
				return 0, err
			}
		case api != nil:
			return 0, s.storeErr(chunk[0], err)
		default:
			return 0, fmt.Errorf("storing %d events of connector %s: %w", len(chunk), f.Connector, err)
		}
	}
}

// pubAck is nats-server's answer to a publish or a batch's commit.
type pubAck struct {
	Seq       uint64              `json:"seq"`
	Duplicate bool                `json:"duplicate"`
	Batch     string              `json:"batch"`
	Count     int                 `json:"count"`
	Error     *jetstream.APIError `json:"error"`
}

// publishConditional sends msgs, one message or one atomic batch (a new
// batch ID each attempt), and waits for the answer.
func (s *Store) publishConditional(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	nc := s.js.Conn()
	last := msgs[len(msgs)-1]
	if len(msgs) > 1 {
		id := nuid.Next()
		for _, m := range msgs {
			m.Header.Set(batchIDHeader, id)
		}
		for _, m := range msgs[:len(msgs)-1] {
			if err := nc.PublishMsg(m); err != nil {
				return 0, err
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, batchAckWait)
	defer cancel()
	reply, err := nc.RequestMsgWithContext(rctx, last)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return 0, errNoAck
		}
		return 0, err
	}
	var ack pubAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, fmt.Errorf("reading nats-server's answer %q: %w", reply.Data, err)
	}
	if ack.Error != nil {
		return 0, ack.Error
	}
	if len(msgs) > 1 && ack.Count != len(msgs) {
		// A server without atomic batches stores each message on its own,
		// unconditionally: nothing fences them. Open refuses such a server;
		// this is the last line.
		return 0, fmt.Errorf("nats-server stored %d of a batch of %d events as one (%s): it does not support atomic batches; dirsync needs nats-server 2.12 or newer", ack.Count, len(msgs), reply.Data)
	}
	return ack.Seq, nil
}

// batchAckWait bounds the wait for one batch's answer. A batch sent to
// a stream leader that dies or steps down is never answered: the new
// leader never saw it. Sent again (a new batch, the same event IDs), it
// is stored once, or found stored already.
const batchAckWait = 10 * time.Second

// errNoAck: a batch got no answer within batchAckWait.
var errNoAck = errors.New("no answer to the batch")

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
