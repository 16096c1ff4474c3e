package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/leases"
	"github.com/dirsync/dirsync/projections"
)

// writerView is what kvWrites reads of the runner: whether this replica
// writes a connector's events, and at which epoch it holds it.
type writerView interface {
	Writes(connector string) bool
	Holding(connector string) (uint64, bool)
}

// leaseView is what kvWrites reads of the lease campaign.
type leaseView interface {
	Fresh(connector string) bool
	Holder(connector string) (leases.Lease, bool)
	Instance() string
}

// kvWrites says what the projector does with each connector's KV
// entries: each is written by the replica holding the connector, so that
// a replica whose read models lag (woken from a pause, cut off) never
// puts older values over the holder's.
func kvWrites(runner writerView, camp leaseView) func(connector string) projections.KVWrite {
	return func(c string) projections.KVWrite {
		if runner.Writes(c) {
			// Not on a stale lease (a replica waking from a pause):
			// its state may be older than what the new holder wrote.
			if _, held := runner.Holding(c); held && !camp.Fresh(c) {
				return projections.KVLater
			}
			return projections.KVWriteNow
		}
		if le, held := camp.Holder(c); held {
			if le.Instance != camp.Instance() {
				return projections.KVSkip
			}
			// Its own lease as last seen, but it no longer writes: the
			// lease is being lost or given up, and the view may be
			// stale (a replica woken from a pause sees its own lease
			// until the bucket's watch catches up). Writing now would
			// look up the entries' revisions and could put this
			// replica's older values over the new holder's: the
			// entries wait until the holder is known.
			return projections.KVLater
		}
		// None holds it (a connector no longer configured, or between
		// holders): it writes, but leaves an entry another replica
		// wrote since, for that one may have just taken it over from
		// this one while its lease expired.
		return projections.KVWriteUnheld
	}
}

// Replicas of one NATS deployment pass requests for a connector to the
// replica holding it, over core NATS request-reply on subjects outside
// the event stream's (nothing of it is stored). The holder answers on
// rpcSubject while it holds the connector; no responder means no
// replica holds it at the moment (a failover).

// rpcPrefix starts the subjects replicas call one another on. The
// consumer credential may not publish there (broker.ConsumerPermissions).
const rpcPrefix = "dirsyncrpc."

// rpcSubject is where the process instance holding connector answers
// op: addressed to the lease's instance, so that a replica paused or cut
// off with its subscriptions still open never swallows a request meant
// for the holder that replaced it.
func rpcSubject(connector, instance, op string) string {
	return rpcPrefix + connector + "." + instance + "." + op
}

// forwardTimeout bounds a forwarded request: the holder stores a
// PENDING event and waits for its read models, as a local request does.
const forwardTimeout = 30 * time.Second

// handoverWait is how long, beyond the lease TTL, a forwarded request
// waits for a connector that has no holder answering: a handover between
// live replicas takes well under a second, but a replica taking a
// connector over answers only once its claim is folded (seconds on a
// busy cluster), and a lease its holder let go when NATS did not answer
// is taken back or times out within the TTL.
const handoverWait = 5 * time.Second

// attemptWait bounds one attempt of a forwarded request: the holder
// answers once the job's PENDING is stored and folded, in well under a
// second on a healthy deployment.
const attemptWait = 10 * time.Second

// rpcRequest is a forwarded sync request or cancellation.
type rpcRequest struct {
	Full        bool   `json:"full,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	IfIdle      bool   `json:"ifIdle,omitempty"`
	// Options is events.JobOptions as JSON.
	Options json.RawMessage `json:"options,omitempty"`
	JobID   string          `json:"jobId,omitempty"`
}

// rpcReply is the holder's answer: a job ID, or an error and its kind
// (the runner's sentinel errors, so that the API answers alike on every
// replica).
type rpcReply struct {
	JobID string `json:"jobId,omitempty"`
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
}

// rpcKinds maps the runner errors a caller tells apart to their names.
var rpcKinds = map[string]error{
	"busy": jobs.ErrBusy, "unknown-connector": jobs.ErrUnknownConnector, "stopping": jobs.ErrStopping,
	"not-holder": jobs.ErrNotHolder, "unknown-job": jobs.ErrUnknownJob, "not-cancelable": jobs.ErrNotCancelable,
}

func replyOf(id string, err error) rpcReply {
	if err == nil {
		return rpcReply{JobID: id}
	}
	for kind, target := range rpcKinds {
		if errors.Is(err, target) {
			return rpcReply{Error: err.Error(), Kind: kind}
		}
	}
	return rpcReply{Error: err.Error()}
}

func (r rpcReply) err() error {
	if r.Error == "" {
		return nil
	}
	if target, ok := rpcKinds[r.Kind]; ok {
		return fmt.Errorf("%w (on the replica holding the connector): %s", target, r.Error)
	}
	return fmt.Errorf("on the replica holding the connector: %s", r.Error)
}

// forwarder is jobs.Forwarder over NATS.
type forwarder struct {
	nc *nats.Conn
	// holder returns the instance holding connector's lease, as this
	// replica last saw it.
	holder func(connector string) (instance string, ok bool)
	// wait bounds the wait for a holder that answers: the lease TTL and
	// handoverWait.
	wait time.Duration
}

func (f forwarder) call(ctx context.Context, connector, op string, req rpcRequest) (rpcReply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return rpcReply{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, forwardTimeout)
		defer cancel()
	}
	// A connector changing hands (a handover, a clean stop, a failover
	// that is taking place) has no holder answering for a moment: ask
	// again, of the holder as the lease then says, for a little while.
	var msg *nats.Msg
	handover := time.Now().Add(max(f.wait, handoverWait))
	for {
		err = nats.ErrNoResponders
		instance, ok := f.holder(connector)
		if ok {
			// A holder paused or cut off keeps its subscription but never
			// answers: after attemptWait, ask whoever holds the lease by
			// then, if that has changed.
			actx, cancel := context.WithTimeout(ctx, attemptWait)
			msg, err = f.nc.RequestWithContext(actx, rpcSubject(connector, instance, op), b)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				if now, ok := f.holder(connector); ok && now != instance {
					continue
				}
				err = fmt.Errorf("the replica holding connector %s did not answer within %s", connector, attemptWait)
			}
		}
		if err == nil && time.Now().Before(handover) {
			// A holder handing the connector over (leases.Yielder)
			// answers that it no longer holds it: ask the next.
			var rep rpcReply
			if json.Unmarshal(msg.Data, &rep) == nil && rep.Kind == "not-holder" {
				err = nats.ErrNoResponders
			}
		}
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(handover) {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return rpcReply{}, ctx.Err()
		}
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return rpcReply{}, fmt.Errorf("%w %s, and no other replica does right now (a replica that stopped hands its connectors over within daemon { lease_ttl }); "+
			"try again in a few seconds, and see dirsync status", jobs.ErrNotHolder, connector)
	}
	if err != nil {
		return rpcReply{}, fmt.Errorf("passing the request to the replica holding connector %s: %w", connector, err)
	}
	var rep rpcReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return rpcReply{}, fmt.Errorf("reading the answer of the replica holding connector %s: %w", connector, err)
	}
	return rep, rep.err()
}

// Request implements jobs.Forwarder.
func (f forwarder) Request(ctx context.Context, connector string, req jobs.Request) (string, error) {
	r := rpcRequest{Full: req.Full, RequestedBy: req.RequestedBy, IfIdle: req.IfIdle}
	if req.Options != nil {
		b, err := json.Marshal(req.Options)
		if err != nil {
			return "", err
		}
		r.Options = b
	}
	rep, err := f.call(ctx, connector, "sync", r)
	return rep.JobID, err
}

// Cancel implements jobs.Forwarder.
func (f forwarder) Cancel(ctx context.Context, connector, jobID string) error {
	_, err := f.call(ctx, connector, "cancel", rpcRequest{JobID: jobID})
	return err
}

// holder is the leases.Handler of a replica: the runner takes the
// connector over, and the replica answers forwarded requests for it
// while it holds it.
type holder struct {
	runner   *jobs.Runner
	nc       *nats.Conn
	log      *zap.Logger
	instance string // set once the campaign exists

	mu   sync.Mutex
	subs map[string][]*nats.Subscription
}

func newHolder(runner *jobs.Runner, nc *nats.Conn, log *zap.Logger) *holder {
	return &holder{runner: runner, nc: nc, log: log, subs: map[string][]*nats.Subscription{}}
}

// Acquired implements leases.Handler.
func (h *holder) Acquired(ctx context.Context, connector string, epoch uint64) error {
	if err := h.runner.Acquired(ctx, connector, epoch); err != nil {
		return err
	}
	sync, err := h.nc.Subscribe(rpcSubject(connector, h.instance, "sync"), func(m *nats.Msg) { h.answer(ctx, connector, m, h.sync) })
	if err != nil {
		return err
	}
	cancel, err := h.nc.Subscribe(rpcSubject(connector, h.instance, "cancel"), func(m *nats.Msg) { h.answer(ctx, connector, m, h.cancel) })
	if err != nil {
		_ = sync.Unsubscribe()
		return err
	}
	h.mu.Lock()
	h.subs[connector] = []*nats.Subscription{sync, cancel}
	h.mu.Unlock()
	return nil
}

// Lost implements leases.Handler.
func (h *holder) Lost(connector string, epoch uint64, cause error) {
	h.mu.Lock()
	subs := h.subs[connector]
	delete(h.subs, connector)
	h.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	h.runner.Lost(connector, epoch, cause)
}

// Yield implements leases.Yielder.
func (h *holder) Yield(connector string) bool { return h.runner.Yield(connector) }

// answer runs op for a forwarded request (off the subscription's
// goroutine: it waits on the store) and replies.
func (h *holder) answer(ctx context.Context, connector string, m *nats.Msg, op func(context.Context, string, rpcRequest) (string, error)) {
	go func() {
		var req rpcRequest
		rep := rpcReply{Error: "malformed request"}
		if err := json.Unmarshal(m.Data, &req); err == nil {
			rctx, cancel := context.WithTimeout(ctx, forwardTimeout)
			rep = replyOf(op(rctx, connector, req))
			cancel()
		}
		b, _ := json.Marshal(rep)
		if err := m.Respond(b); err != nil {
			h.log.Warn("answering a forwarded request", zap.String("connector", connector), zap.Error(err))
		}
	}()
}

func (h *holder) sync(ctx context.Context, connector string, req rpcRequest) (string, error) {
	r := jobs.Request{Full: req.Full, RequestedBy: req.RequestedBy, IfIdle: req.IfIdle, Forwarded: true}
	if len(req.Options) > 0 {
		if err := json.Unmarshal(req.Options, &r.Options); err != nil {
			return "", fmt.Errorf("reading the forwarded options: %w", err)
		}
	}
	return h.runner.Request(ctx, connector, r)
}

func (h *holder) cancel(ctx context.Context, _ string, req rpcRequest) (string, error) {
	return "", h.runner.CancelLocal(ctx, req.JobID)
}

// replicaIdentity is what tells this replica from every other, and from
// nothing but its own earlier runs: the host and the data directory
// (which one process at a time may use).
func replicaIdentity(dataDir string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return host + ":" + dataDir
}

// startLeases opens the lease bucket, makes the runner take connectors
// as their leases come, and returns the campaign (not yet running).
func startLeases(ctx context.Context, js jetstream.JetStream, replica, dataDir string, ttl time.Duration, replicas int,
	runner *jobs.Runner, nc *nats.Conn, log *zap.Logger) (*leases.Leases, error) {
	h := newHolder(runner, nc, log)
	l, err := leases.Open(ctx, js, leases.Options{Replica: replica, Identity: replicaIdentity(dataDir), TTL: ttl, Replicas: replicas}, h, log)
	if err != nil {
		return nil, err
	}
	h.instance = l.Instance()
	runner.UseLeases(replica, l, forwarder{nc: nc, wait: l.TTL() + handoverWait, holder: func(c string) (string, bool) {
		le, ok := l.Holder(c)
		return le.Instance, ok && le.Epoch != 0
	}})
	return l, nil
}

// awaitHolders waits until every connector is taken over, by this
// replica or another, for at most the lease TTL and a little: a start
// that is ready only then answers a sync request at once. A connector
// still held by a replica that died waits for its lease to time out;
// the start goes on without it (it is taken over later).
func awaitHolders(ctx context.Context, camp *leases.Leases, runner *jobs.Runner, connectors []string, log *zap.Logger) {
	deadline := time.Now().Add(camp.TTL() + 5*time.Second)
	for {
		var waiting []string
		holders := camp.Holders()
		for _, c := range connectors {
			if _, mine := runner.Holding(c); mine && runner.Running(c) {
				continue
			}
			if le, ok := holders[c]; ok && le.Epoch != 0 && le.Replica != camp.Replica() {
				continue
			}
			waiting = append(waiting, c)
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			log.Warn("starting without a holder for some connectors; a replica takes them over once their leases time out", zap.Strings("connectors", waiting))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
