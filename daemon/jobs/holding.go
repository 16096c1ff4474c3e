package jobs

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// A replica runs a connector's jobs only while it holds the connector:
// from its claim in the event log (store.Claim, at the epoch of its
// lease) until it loses the lease or finds its appends fenced. Alone,
// a daemon claims every configured connector at Start; with UseLeases,
// a lease campaign (package leases) calls Acquired and Lost.

// ErrNotHolder says this replica does not hold the connector a job
// needs; the replica that does runs it.
var ErrNotHolder = errors.New("this replica does not hold the connector")

// ErrLeaseLost is the cause of a job stopped because its replica lost
// the connector's lease.
var ErrLeaseLost = errors.New("lease lost")

// Campaign is the part of a lease campaign the runner uses.
type Campaign interface {
	// TryAcquire takes a free connector's lease (one no longer
	// configured, for its retire job); false when another holds it.
	TryAcquire(ctx context.Context, connector string) (bool, error)
	// Drop gives up a connector whose appends were fenced.
	Drop(connector string, cause error)
}

// Forwarder passes a request for a connector this replica does not hold
// to the replica that does.
type Forwarder interface {
	Request(ctx context.Context, connector string, req Request) (string, error)
	Cancel(ctx context.Context, connector, jobID string) error
}

// UseLeases makes connectors start when c's campaign gives them to this
// replica (Acquired) rather than all at Start; requests for a connector
// held elsewhere go through f. replica names this dirsyncd in claims and
// failure reasons. Call it before Start.
func (r *Runner) UseLeases(replica string, c Campaign, f Forwarder) {
	r.leased, r.replica, r.campaign, r.forward = true, replica, c, f
}

// Named sets the replica name of a runner without leases.
func (r *Runner) Named(replica string) { r.replica = replica }

// Acquired takes the connector over at epoch (leases.Handler): it
// claims it in the event log, waits for the read models to show every
// event before the claim, ends the jobs the earlier holder left
// unfinished, and starts its worker, which stops when ctx ends.
func (r *Runner) Acquired(ctx context.Context, connector string, epoch uint64) error {
	return r.takeOver(ctx, ctx, connector, epoch)
}

// takeOver is Acquired; lease is the context that ends with the lease
// (the runner's own without leases), epoch 0 claims at the epoch after
// the connector's last.
func (r *Runner) takeOver(ctx, lease context.Context, connector string, epoch uint64) error {
	leaseEpoch := epoch
	r.mu.Lock()
	stopping := r.stopping
	if !stopping {
		r.taking[connector] = true
	}
	old := r.lanes[connector]
	r.mu.Unlock()
	if stopping {
		return ErrStopping
	}
	defer func() {
		r.mu.Lock()
		delete(r.taking, connector)
		r.mu.Unlock()
	}()
	if old != nil {
		// This replica's own earlier lane (a lease it let go and took
		// back): its job ends first, under its own claim, before a new
		// claim would fence it part way.
		select {
		case <-old.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	prev, _, err := r.store.LastClaim(ctx, connector)
	if err != nil {
		return err
	}
	if epoch <= prev.Epoch {
		if epoch != 0 {
			// The lease bucket's revisions start below the log's claims
			// (it was deleted and made again): the log's claims decide,
			// and epochs keep rising.
			r.log.Warn("the lease's epoch is not above the connector's last claim (was the dirsync_leases bucket made again?); claiming at the epoch after it",
				zap.String("connector", connector), zap.Uint64("lease_epoch", epoch), zap.Uint64("last_claim_epoch", prev.Epoch))
		}
		epoch = prev.Epoch + 1
	}
	fence, err := r.store.Claim(ctx, events.Claim{Connector: connector, Epoch: epoch, Replica: r.replica}, r.now())
	if err != nil {
		return err
	}
	if err := r.proj.WaitFor(ctx, fence.ClaimSeq); err != nil {
		return fmt.Errorf("connector %s claimed at epoch %d, but the read models do not show it yet: %w", connector, epoch, err)
	}
	r.mu.Lock()
	r.fences[connector] = fence
	r.mu.Unlock()
	started := false
	defer func() {
		if !started {
			r.mu.Lock()
			if r.fences[connector] == fence {
				delete(r.fences, connector)
			}
			r.mu.Unlock()
		}
	}()
	if err := r.failInterrupted(ctx, connector, prev); err != nil {
		return err
	}
	// Its read models in KV are this replica's to write from now on;
	// another replica that held it may have died before writing them all.
	if prev.Replica != "" && prev.Replica != r.replica {
		if err := r.proj.ReconcileConnector(ctx, connector); err != nil {
			return err
		}
	}
	laneCtx, cancel := context.WithCancelCause(r.baseCtx)
	context.AfterFunc(lease, func() { cancel(fmt.Errorf("%w: %w", ErrLeaseLost, context.Cause(lease))) })
	l := &lane{wake: make(chan struct{}, 1), ctx: laneCtx, done: make(chan struct{}), lease: leaseEpoch, claim: fence.Epoch}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.lanes[connector]; old != nil {
		r.mu.Unlock()
		<-old.done
		r.mu.Lock()
	}
	r.lanes[connector] = l
	r.wg.Add(1)
	go r.work(connector, l)
	started = true
	r.log.Info("connector taken over", zap.String("connector", connector), zap.Uint64("epoch", epoch), zap.String("replica", r.replica),
		zap.Uint64("previous_epoch", prev.Epoch), zap.String("previous_replica", prev.Replica))
	return nil
}

// Lost stops the connector's work (leases.Handler): its running job is
// canceled (its plugin killed) and its worker has returned when Lost
// does, so that the lease may go to another replica.
func (r *Runner) Lost(connector string, epoch uint64, cause error) {
	r.mu.Lock()
	l := r.lanes[connector]
	r.mu.Unlock()
	if l == nil || l.lease != epoch {
		return // that lease's take-over never finished
	}
	<-l.done
	r.mu.Lock()
	if r.lanes[connector] == l {
		delete(r.lanes, connector)
		// Only this lane's claim: a take-over under way may have stored
		// a newer one already.
		if f, ok := r.fences[connector]; ok && f.Epoch == l.claim {
			r.lost[connector] = f.Epoch
			delete(r.fences, connector)
		}
	}
	r.mu.Unlock()
	r.log.Info("connector given up", zap.String("connector", connector), zap.Uint64("epoch", epoch), zap.NamedError("cause", cause))
}

// Yield reports whether the connector runs and waits for no job, and
// if so makes later requests for it go to the replica it is handed to
// (leases.Yielder): such a connector may change replica without failing
// a job. A request being recorded (reqMu held) makes it busy: the
// request was accepted here and its job must run here.
func (r *Runner) Yield(connector string) bool {
	if !r.reqMu.TryLock() {
		return false
	}
	defer r.reqMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.lanes[connector]
	if l == nil {
		return true
	}
	if l.current != nil || len(l.queue) > 0 {
		return false
	}
	l.yielding = true
	return true
}

// Writes reports whether this replica writes the connector's read
// models to KV: it holds the connector, or is taking it over (its claim
// and what it ends of the earlier holder's are its to write).
func (r *Runner) Writes(connector string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.fences[connector]
	return ok || r.taking[connector]
}

// Holding returns the epoch this replica holds connector at.
func (r *Runner) Holding(connector string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, ok := r.fences[connector]
	return f.Epoch, ok
}

// Running reports whether this replica runs the connector's jobs.
func (r *Runner) Running(connector string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lanes[connector] != nil
}

// appendFenced appends evs under this replica's claim of connector. A
// refused append means another replica claimed it since: this one
// gives it up at once.
func (r *Runner) appendFenced(ctx context.Context, connector string, evs []events.Event, progress func(int)) (uint64, error) {
	r.mu.Lock()
	f, ok := r.fences[connector]
	r.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("%w %s", ErrNotHolder, connector)
	}
	seq, err := r.store.AppendFenced(ctx, f, evs, progress)
	if errors.Is(err, store.ErrFenced) {
		r.log.Error("appends refused: another replica claimed the connector; stopping its job and giving it up",
			zap.String("connector", connector), zap.Uint64("epoch", f.Epoch), zap.Error(err))
		r.mu.Lock()
		if cur, ok := r.fences[connector]; ok && cur == f {
			delete(r.fences, connector)
		}
		l := r.lanes[connector]
		r.mu.Unlock()
		if r.campaign != nil {
			go r.campaign.Drop(connector, fmt.Errorf("%w: %w", ErrLeaseLost, err))
		} else if l != nil && l.current != nil {
			l.current.mu.Lock()
			if l.current.cancel != nil {
				l.current.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
			}
			l.current.mu.Unlock()
		}
	}
	return seq, err
}

// heldElsewhere reports whether a request is for a configured connector
// this replica does not run, to pass on to the replica that does.
func (r *Runner) heldElsewhere(connector string, req Request) bool {
	if r.forward == nil || req.Forwarded || req.Retire != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, configured := r.specs[connector]
	l := r.lanes[connector]
	return configured && !r.stopping && r.baseCtx != nil && (l == nil || l.yielding)
}

// laneFor returns the lane of a connector this replica does not run yet:
// a retire job's connector is taken over for it; any other request goes
// to the replica that holds the connector (nil lane, its job ID in the
// error's place is returned by Request through forwarded).
func (r *Runner) laneFor(ctx context.Context, connector string, req Request) (*lane, error) {
	if req.Retire != nil {
		if !r.leased {
			if err := r.takeOver(ctx, r.baseCtx, connector, 0); err != nil {
				return nil, err
			}
		} else if ok, err := r.campaign.TryAcquire(ctx, connector); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("%w %s: another replica holds it; retire it there (dirsync status names it)", ErrNotHolder, connector)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.lanes[connector], nil
	}
	return nil, fmt.Errorf("%w %s", ErrNotHolder, connector)
}
