// Package jobs runs sync jobs: it queues requests per connector, drives a
// job through PENDING → STARTED → RETRIEVING → PROCESSING → SAVING →
// COMPLETED (or FAILED / CANCELED), records every state change as an event,
// and turns what a connector plugin retrieved into directory and recipient
// events.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// Launcher starts a connector's plugin and returns it with a function that
// stops it. fields name the job the plugin serves, for its log lines.
type Launcher func(ctx context.Context, connectorName string, fields ...zap.Field) (connector.Connector, func(), error)

// Observer hears of every job that reaches a final state (metrics).
type Observer interface {
	JobFinished(connector, state string, sum *events.Summary, took time.Duration)
}

// Spec is what the runner needs to know of a configured connector.
type Spec struct {
	Name string
	// Plugin is the plugin block the connector runs, named in failure
	// reasons: a faulty plugin is what the admin must update or report.
	Plugin string
	Config *connectorv1.Config
	Policy policy.Policy
	// MaxRemovals guards against a sync that would remove a large part of
	// the list; nil means the default rule of config.Limit.
	MaxRemovals RemovalLimit
	// FullSyncInterval forces a full read when the last one is older; 0
	// never forces one.
	FullSyncInterval time.Duration
	// RenamedFrom names the unconfigured connector whose active
	// recipients this one's syncs adopt (renamed_from; see rename.go).
	RenamedFrom string
}

// RemovalLimit says whether removing some of a connector's recipients is
// too many (config.Limit implements it).
type RemovalLimit interface {
	Exceeded(removals, total int) bool
	String() string
}

// Request says how a job was asked for.
type Request struct {
	// Full forces a full read of the directory.
	Full bool
	// RequestedBy is "cli", "api" or "schedule".
	RequestedBy string
	// Options are one-time options for this job only.
	Options *events.JobOptions
	// IfIdle makes the request fail with ErrBusy instead of replacing a
	// queued or running job: a schedule tick must not cancel a long sync
	// that is still under way, or a sync longer than the interval would
	// never complete.
	IfIdle bool
	// Retire makes the job a retire job (retire.go) for a connector that
	// is no longer configured, instead of a sync.
	Retire *Retire
	// Forwarded marks a request another replica passed on: it is not
	// passed on again.
	Forwarded bool
}

// ErrBusy is returned for an IfIdle request while a job is queued or running.
var ErrBusy = errors.New("a job is already queued or running")

// Progress is the live progress of a running job (not recorded as events:
// it changes too often and says nothing a final summary does not).
type Progress struct {
	Phase       string `json:"phase"`
	Users       int64  `json:"users"`
	Groups      int64  `json:"groups"`
	Memberships int64  `json:"memberships"`
	Requests    int64  `json:"requests"`
	// ExpectedUsers is the user count of the directory as last read, set
	// while a full read runs: the total a progress bar can aim at.
	ExpectedUsers int64 `json:"expectedUsers,omitempty"`
	// Events is how many events SAVING writes, Saved how many are stored.
	Events int `json:"events,omitempty"`
	Saved  int `json:"saved,omitempty"`
	// Retrying is set while the connector waits to retry its directory
	// (throttled, unavailable, connection lost): an outage shows while it
	// lasts, not only in the reason of the job it finally fails.
	Retrying *Retrying `json:"retrying,omitempty"`
}

// Retrying is a connector's wait before it retries its directory, as the
// connector reported it.
type Retrying struct {
	// Cause is what failed last, in the connector's words.
	Cause string `json:"cause"`
	// Attempt is the attempt that failed (1 for the first try).
	Attempt int64 `json:"attempt"`
	// Wait is how long the connector waits, in milliseconds, from Since.
	WaitMS int64     `json:"waitMs"`
	Since  time.Time `json:"since"`
	// BudgetLeftMS is what is left of the time the sync may spend
	// retrying; the job fails once it is spent. 0: no such budget.
	BudgetLeftMS int64 `json:"budgetLeftMs,omitempty"`
}

// GuardReason is in the reason of every job the mass-removal guard
// stopped, and in the warning of a dry run whose real run it would stop:
// notifications and the console tell such a job by it.
const GuardReason = "more than max_removals allows"

// ErrUnknownConnector is returned for a connector not in plugins.hcl.
var ErrUnknownConnector = errors.New("unknown connector")

// ErrStopping is returned for requests made while the daemon stops.
var ErrStopping = errors.New("dirsyncd is stopping")

// Runner queues and runs jobs. One job per connector runs at a time.
type Runner struct {
	store  *store.Store
	proj   *projections.Projector
	launch Launcher
	log    *zap.Logger
	now    func() time.Time
	obs    Observer
	dry    *DryRuns

	// reqMu makes requests take turns; mu guards the fields below and is
	// never held across I/O.
	reqMu sync.Mutex
	mu    sync.Mutex
	specs map[string]Spec
	lanes map[string]*lane
	slots map[string]chan struct{} // by plugin name: see PluginSlots
	// memos are the connectors' last plans (see planMemo), kept while
	// the daemon runs: the first sync after a start plans whole.
	memos map[string]*planMemo
	// fences are the claims this replica appends under, by connector:
	// a connector without one is not this replica's to run (holding.go).
	fences map[string]store.Fence
	// taking lists the connectors being taken over (takeOver); lost
	// holds the epoch of each connector this process lost (Lost).
	taking map[string]bool
	lost   map[string]uint64
	// leased: connectors are taken by a lease campaign (Acquired), not
	// all claimed at Start; see UseLeases.
	leased   bool
	replica  string
	campaign Campaign
	forward  Forwarder
	stopping bool
	baseCtx  context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

type lane struct {
	queue   []*job
	current *job
	wake    chan struct{}
	// ctx ends when the runner stops or this replica loses the
	// connector; done is closed once the lane's worker has returned.
	ctx  context.Context
	done chan struct{}
	// lease is the epoch of the lease the lane runs under (0 without
	// leases), which Lost names.
	lease uint64
	// claim is the epoch of the claim the lane's jobs append under.
	claim uint64
	// yielding says the connector is being handed to another replica
	// (Yield): requests go there, none joins the queue.
	yielding bool
}

type job struct {
	id, connector string
	req           Request

	// started is when the worker took the job (zero while queued).
	started time.Time

	mu       sync.Mutex
	state    string
	progress Progress
	cancel   context.CancelCauseFunc
	// full: the job reads the whole directory (decided as RETRIEVING
	// begins: asked for, no cursor yet, or full_sync_interval passed).
	full bool
	// queued is when the job was queued; touched when it last changed
	// state or reported progress (for Stalled).
	queued, touched time.Time
	// resumes is the failed job whose one-time options this one carries
	// on (resumeFrom), set before STARTED.
	resumes string
}

// readsAll reports whether the job reads the whole directory: asked for,
// or decided as RETRIEVING began.
func (j *job) readsAll() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.req.Full || j.full
}

func (j *job) setState(s string, at time.Time) {
	j.mu.Lock()
	j.state, j.touched = s, at
	j.mu.Unlock()
}

// touchLocked notes a sign of life of the job (progress) at at; j.mu is held.
func (j *job) touchLocked(at time.Time) { j.touched = at }

// New returns a runner for the given connectors. Call Start to begin.
func New(st *store.Store, proj *projections.Projector, launch Launcher, specs []Spec, log *zap.Logger) *Runner {
	r := &Runner{store: st, proj: proj, launch: launch, log: log, now: time.Now,
		specs: map[string]Spec{}, lanes: map[string]*lane{}, memos: map[string]*planMemo{},
		slots: map[string]chan struct{}{}, fences: map[string]store.Fence{}, taking: map[string]bool{}, lost: map[string]uint64{}, replica: "dirsyncd"}
	for _, s := range specs {
		r.specs[s.Name] = s
	}
	return r
}

// Observe makes o hear of every job that ends. Call it before Start.
func (r *Runner) Observe(o Observer) { r.obs = o }

// Start readies the runner. Without UseLeases it claims every configured
// connector itself (one daemon alone), failing the jobs a previous run
// left unfinished, and starts a worker per connector; with leases, each
// connector starts when its lease is taken (Acquired). The projector
// must be ready.
func (r *Runner) Start(ctx context.Context) error {
	r.baseCtx, r.stop = context.WithCancel(context.WithoutCancel(ctx))
	if r.leased {
		return nil
	}
	for _, name := range r.Connectors() {
		if err := r.takeOver(ctx, r.baseCtx, name, 0); err != nil {
			return err
		}
	}
	return nil
}

// SetSpecs replaces the configured connectors (a reload): new ones get a
// worker, changed ones apply from their next job, and a removed one takes
// no new request; a job already running keeps the spec it started with.
func (r *Runner) SetSpecs(specs []Spec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specs = map[string]Spec{}
	var added []string
	for _, s := range specs {
		r.specs[s.Name] = s
		if _, ok := r.lanes[s.Name]; !ok && r.baseCtx != nil && !r.leased {
			added = append(added, s.Name)
		}
	}
	r.mu.Unlock()
	for _, name := range added {
		if err := r.takeOver(r.baseCtx, r.baseCtx, name, 0); err != nil {
			r.log.Error("connector added by the reload not started", zap.String("connector", name), zap.Error(err))
		}
	}
	r.mu.Lock()
}

// Drain begins a graceful stop: it refuses new requests, cancels queued
// jobs, and reports whether no job is running any more. Call it until it
// returns true or the grace period is over, then Stop.
func (r *Runner) Drain(ctx context.Context) (idle bool, running []string) {
	r.mu.Lock()
	r.stopping = true
	var queued []*job
	for _, l := range r.lanes {
		queued = append(queued, l.queue...)
		l.queue = nil
		if l.current != nil {
			running = append(running, l.current.connector+" job "+l.current.id+" "+l.current.currentState())
		}
	}
	r.mu.Unlock()
	for _, j := range queued {
		r.recordCanceled(ctx, j, "dirsyncd is stopping; request the sync again once it runs")
	}
	sort.Strings(running)
	return len(running) == 0, running
}

// Stop refuses new requests, cancels queued and running jobs (a running
// job ends FAILED as interrupted) and waits for the workers.
func (r *Runner) Stop() {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
}

// Stalled reports a job queue that stands still: a job queued for longer
// than limit while its connector runs nothing (its worker no longer takes
// jobs), or a running job that has neither changed state nor reported
// progress for limit, outside RETRIEVING, a retry wait the connector
// announced and a wait for a plugin slot (RETRIEVING has its own bound,
// the plugin's idle_timeout, which fails the job; a slot frees when the
// jobs ahead end). nil: every queue moves.
func (r *Runner) Stalled(now time.Time, limit time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var stalled []string
	for _, name := range slices.Sorted(maps.Keys(r.lanes)) {
		l := r.lanes[name]
		if cur := l.current; cur != nil {
			cur.mu.Lock()
			last, state := cur.touched, cur.state
			if cur.progress.Phase == phaseWaitingForSlot {
				state = events.StateRetrieving // bounded by the jobs ahead of it
			}
			if w := cur.progress.Retrying; w != nil {
				if until := w.Since.Add(time.Duration(w.WaitMS) * time.Millisecond); until.After(last) {
					last = until
				}
			}
			cur.mu.Unlock()
			if state != events.StateRetrieving && !last.IsZero() && now.Sub(last) > limit {
				stalled = append(stalled, fmt.Sprintf("connector %s: job %s has been %s for %s without progress", name, cur.id, state, now.Sub(last).Round(time.Second)))
			}
			continue
		}
		if len(l.queue) > 0 && now.Sub(l.queue[0].queued) > limit {
			stalled = append(stalled, fmt.Sprintf("connector %s: job %s has waited %s to start while the connector runs nothing", name, l.queue[0].id, now.Sub(l.queue[0].queued).Round(time.Second)))
		}
	}
	if len(stalled) > 0 {
		return errors.New(strings.Join(stalled, "; "))
	}
	return nil
}

// Connectors lists the configured connector names, sorted.
func (r *Runner) Connectors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.specs))
	for n := range r.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Progress returns the live progress of a job that is running now.
func (r *Runner) Progress(jobID string) (Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lanes {
		if l.current != nil && l.current.id == jobID {
			l.current.mu.Lock()
			defer l.current.mu.Unlock()
			return l.current.progress, true
		}
	}
	return Progress{}, false
}

// errCanceledByOperator is the cancel cause of `dirsync jobs cancel`.
var errCanceledByOperator = errors.New("canceled by the operator")

// ErrNotCancelable is returned for a job that is final or already SAVING.
var ErrNotCancelable = errors.New("job cannot be canceled")

// ErrUnknownJob is returned for a sync ID that names no queued or running job.
var ErrUnknownJob = errors.New("no such job")

// Cancel cancels a queued job, or a running one that has not reached
// SAVING. A job in SAVING finishes: its events must all land. A job of
// a connector another replica holds is canceled there.
func (r *Runner) Cancel(ctx context.Context, jobID string) error {
	err := r.CancelLocal(ctx, jobID)
	if !errors.Is(err, ErrUnknownJob) || r.forward == nil {
		return err
	}
	connector := ""
	r.proj.View(func(s *projections.State) {
		if j, ok := s.Jobs[jobID]; ok && !events.Final(j.State) {
			connector = j.Connector
		}
	})
	if _, held := r.Holding(connector); connector == "" || held {
		return err
	}
	return r.forward.Cancel(ctx, connector, jobID)
}

// CancelLocal is Cancel for the jobs this replica runs.
func (r *Runner) CancelLocal(ctx context.Context, jobID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lanes {
		for i, j := range l.queue {
			if j.id == jobID {
				l.queue = append(l.queue[:i], l.queue[i+1:]...)
				// Out of the queue, the job is this call's alone: record
				// without r.mu, which status and progress need meanwhile.
				r.mu.Unlock()
				err := r.record(ctx, j, events.StateCanceled, errCanceledByOperator.Error(), nil, "")
				r.mu.Lock()
				return err
			}
		}
		if cur := l.current; cur != nil && cur.id == jobID {
			// The read models may show the job's final state before its
			// worker has let go of it: it has ended all the same.
			final := false
			r.proj.View(func(s *projections.State) {
				if j, ok := s.Jobs[jobID]; ok {
					final = events.Final(j.State)
				}
			})
			if final {
				break
			}
			cur.mu.Lock()
			defer cur.mu.Unlock()
			if cur.cancel == nil || cur.state == events.StateSaving {
				return fmt.Errorf("%w: job %s is %s; it finishes on its own in moments", ErrNotCancelable, jobID, cur.state)
			}
			cur.cancel(errCanceledByOperator)
			return nil
		}
	}
	return fmt.Errorf("%w %q queued or running (a finished job cannot be canceled)", ErrUnknownJob, jobID)
}

// KeepDryRunsIn makes the runner keep dry runs' change lists in d (see
// DryRuns). Call it before Start; without it a dry run fails, as no one
// could read what it planned.
func (r *Runner) KeepDryRunsIn(d *DryRuns) { r.dry = d }

// dryRunReadTimeout bounds reading a change list, where the caller set no
// deadline: an API request must get an answer while NATS does not give one.
const dryRunReadTimeout = 30 * time.Second

// DryRunChanges returns the changes a dry-run job would have made, as
// kept in the DryRunBucket object store for the last KeptDryRuns dry runs
// (across restarts); false when they are not kept. An error means the
// store could not be read, not that the list is gone.
func (r *Runner) DryRunChanges(ctx context.Context, jobID string) ([]projections.Change, bool, error) {
	if r.dry == nil {
		return nil, false, errors.New("this dirsyncd keeps no dry-run change lists (no " + DryRunBucket + " object store)")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dryRunReadTimeout)
		defer cancel()
	}
	return r.dry.Changes(ctx, jobID)
}

// keepDryRun stores a dry run's change list before its COMPLETED is
// recorded, so that whoever sees COMPLETED can read the list. An error
// is the job's failure reason.
func (r *Runner) keepDryRun(ctx context.Context, jobID string, changes []projections.Change) error {
	if r.dry == nil {
		return errors.New("this dirsyncd keeps no dry-run change lists (no " + DryRunBucket + " object store); nothing was changed")
	}
	ctx, cancel := context.WithTimeout(ctx, dryRunWriteTimeout)
	defer cancel()
	err := r.dry.Keep(ctx, jobID, changes)
	if err == nil {
		return nil
	}
	fix := "check that NATS is reachable (dirsync status, /readyz), then run the dry run again"
	switch {
	case errors.Is(err, ErrDryRunTooLarge):
		fix = "raise nats { max_store } (the store takes a sixteenth of it, at most 256 MiB) and restart dirsyncd, or review the import policy and run the sync without --dry-run"
	case errors.Is(err, store.ErrStorageFull):
		fix = "make room (raise nats { max_store }, or free disk space), then run the dry run again"
	}
	return fmt.Errorf("nothing was changed, but the dry run's %d planned changes could not be kept to show: %w; %s", len(changes), err, fix)
}

// errSuperseded is the cancel cause of a job replaced by a newer request.
type errSuperseded struct{ by string }

func (e errSuperseded) Error() string { return "superseded by newer job " + e.by }

// Request queues a job for a connector and returns its sync ID once its
// PENDING event is stored. A queued job, or a running one that has not
// reached SAVING, is canceled in favour of the new one; a job in SAVING
// finishes first.
func (r *Runner) Request(ctx context.Context, connectorName string, req Request) (string, error) {
	// Requests take turns (reqMu), but r.mu is never held across the
	// append and the wait for the read models: status, metrics, progress
	// and cancellation answer while a request waits on a slow store.
	if r.heldElsewhere(connectorName, req) {
		// Passed on without reqMu: the holder may be this replica
		// itself, a moment later, once its take-over is done.
		return r.forward.Request(ctx, connectorName, req)
	}
	id, err := r.request(ctx, connectorName, req)
	if errors.Is(err, errYielding) && !req.Forwarded && r.forward != nil {
		// Handed over between the check above and this request's turn.
		return r.forward.Request(ctx, connectorName, req)
	}
	return id, err
}

// errYielding is request's answer for a connector this replica is
// handing to another (Yield), beside ErrNotHolder, which a forwarded
// request's caller hears and asks the new holder.
var errYielding = errors.New("it is being handed to another replica")

// request is Request for a connector this replica runs, or one it takes
// over for a retire job.
func (r *Runner) request(ctx context.Context, connectorName string, req Request) (string, error) {
	r.reqMu.Lock()
	defer r.reqMu.Unlock()
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return "", ErrStopping
	}
	_, configured := r.specs[connectorName]
	switch {
	case req.Retire != nil && configured:
		r.mu.Unlock()
		return "", fmt.Errorf("%w: connector %s: remove its block from plugins.hcl and reload dirsyncd (SIGHUP) before retiring it", ErrConfigured, connectorName)
	case req.Retire == nil && !configured:
		r.mu.Unlock()
		return "", fmt.Errorf("%w %q", ErrUnknownConnector, connectorName)
	}
	l := r.lanes[connectorName]
	started := r.baseCtx != nil
	yielding := l != nil && l.yielding
	r.mu.Unlock()
	if yielding {
		// Set under reqMu, which this request holds: it stays set until
		// the lane is gone, and no job of this request may join it.
		return "", fmt.Errorf("%w %s: %w", ErrNotHolder, connectorName, errYielding)
	}
	if l == nil && started {
		var err error
		if l, err = r.laneFor(ctx, connectorName, req); err != nil || l == nil {
			return "", err
		}
	}
	r.mu.Lock()
	if l == nil {
		r.mu.Unlock()
		return "", errors.New("runner not started")
	}
	// Only Request adds to a queue, and requests take turns: the queue
	// can only shrink until this one adds its job.
	// A current job whose final state is stored is as good as done: its
	// worker is only tidying up (stopping the plugin).
	if req.IfIdle && (len(l.queue) > 0 || (l.current != nil && !events.Final(l.current.currentState()))) {
		busy := ""
		if l.current != nil {
			busy = l.current.id
		} else {
			busy = l.queue[0].id
		}
		r.mu.Unlock()
		return "", fmt.Errorf("%w for connector %s (job %s)", ErrBusy, connectorName, busy)
	}
	r.mu.Unlock()

	j := &job{id: newJobID(r.now()), connector: connectorName, req: req, state: events.StatePending, queued: r.now()}
	if err := r.record(ctx, j, events.StatePending, "", nil, ""); err != nil {
		return "", err
	}
	r.mu.Lock()
	if r.stopping {
		// Drain ran while the PENDING event was stored: the job must not
		// stay queued, or it would never end.
		r.mu.Unlock()
		r.recordCanceled(context.WithoutCancel(ctx), j, "dirsyncd is stopping; request the sync again once it runs")
		return "", ErrStopping
	}
	superseded := l.queue
	l.queue = []*job{j}
	if cur := l.current; cur != nil {
		cur.mu.Lock()
		if cur.cancel != nil && cur.state != events.StateSaving {
			cur.cancel(errSuperseded{j.id})
		}
		cur.mu.Unlock()
	}
	r.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	for _, old := range superseded {
		r.recordCanceled(ctx, old, errSuperseded{j.id}.Error())
	}
	return j.id, nil
}

// recordCanceled records that a queued job was canceled; a failure is
// logged (the next start ends such a job as interrupted).
func (r *Runner) recordCanceled(ctx context.Context, j *job, reason string) {
	if err := r.record(ctx, j, events.StateCanceled, reason, nil, ""); err != nil {
		r.log.Warn("recording cancellation", zap.String("connector", j.connector), zap.String("job", j.id), zap.Error(err))
	}
}

func (r *Runner) work(name string, l *lane) {
	defer r.wg.Done()
	defer close(l.done)
	for {
		select {
		case <-l.ctx.Done():
			if r.baseCtx.Err() == nil {
				// The connector is another replica's now: its queued
				// jobs are failed there (they are of this epoch).
				r.mu.Lock()
				l.queue = nil
				r.mu.Unlock()
				return
			}
			r.mu.Lock()
			queued := l.queue
			l.queue = nil
			r.mu.Unlock()
			for _, j := range queued {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = r.record(ctx, j, events.StateCanceled, "dirsyncd stopped before the job started; request it again", nil, "")
				cancel()
			}
			return
		case <-l.wake:
		}
		for {
			r.mu.Lock()
			if len(l.queue) == 0 || l.ctx.Err() != nil {
				r.mu.Unlock()
				break
			}
			j := l.queue[0]
			l.queue = l.queue[1:]
			l.current = j
			r.mu.Unlock()
			if j.req.Retire != nil {
				r.retire(l.ctx, j)
			} else {
				r.run(l.ctx, j)
			}
			r.mu.Lock()
			l.current = nil
			r.mu.Unlock()
		}
	}
}

// recordTimeout bounds storing one job state and seeing it in the read
// models, where the caller set no deadline of its own.
const recordTimeout = 30 * time.Second

// record stores a state change of j.
func (r *Runner) record(ctx context.Context, j *job, state, reason string, sum *events.Summary, cursor string) error {
	part := 0
	for i, s := range events.States() {
		if s == state {
			part = i
		}
	}
	d := events.SyncState{JobID: j.id, Connector: j.connector, State: state, Full: j.readsAll(),
		RequestedBy: j.req.RequestedBy, Reason: reason, Summary: sum, Cursor: cursor}
	if state == events.StatePending {
		d.Options = j.req.Options
	}
	if state == events.StateStarted && j.resumes != "" {
		d.Options, d.Resumes = j.req.Options, j.resumes
	}
	e := events.New(events.TypeSyncState, events.SyncSubject(j.connector, j.id), j.connector, j.id, part, r.now(), d)
	if _, ok := ctx.Deadline(); !ok {
		// A store or projector that stalls must fail the caller with a
		// reason, not hold it (and an API request) forever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, recordTimeout)
		defer cancel()
	}
	seq, err := r.appendFenced(ctx, j.connector, []events.Event{e}, nil)
	if err != nil {
		return fmt.Errorf("recording job %s %s: %w", j.id, state, err)
	}
	j.setState(state, r.now())
	if r.obs != nil && events.Final(state) {
		took := time.Duration(0)
		if !j.started.IsZero() {
			took = r.now().Sub(j.started)
		}
		r.obs.JobFinished(j.connector, state, sum, took)
	}
	fields := []zap.Field{zap.String("connector", j.connector), zap.String("job", j.id), zap.String("state", state)}
	if reason != "" {
		fields = append(fields, zap.String("reason", reason))
	}
	r.log.Info("job state", fields...)
	if err := r.proj.WaitFor(ctx, seq); err != nil {
		return fmt.Errorf("job %s %s is stored, but the read models do not show it yet (see /readyz): %w", j.id, state, err)
	}
	return nil
}

// recordFinal records a job's final state, retrying while the store
// refuses it (NATS restarting, a broker failover): a job must not stay in
// a running state in the read models because its end could not be written
// at the moment it ended. Final states are recorded even while the daemon
// stops, for up to finalGrace; an unrecorded one is then ended as
// interrupted at the next start. The event ID is deterministic, so an
// attempt whose acknowledgement was lost is stored once.
func (r *Runner) recordFinal(ctx context.Context, j *job, state, reason string, sum *events.Summary, log *zap.Logger) {
	if have := j.currentState(); events.Final(have) {
		// Its final state is stored: what failed came after (the wait for
		// the read models, cut short by a stop). A second final state
		// would contradict the first.
		log.Warn("job already ended; its later failure is not recorded", zap.String("state", have),
			zap.String("not_recorded", state), zap.String("reason", reason))
		return
	}
	const finalGrace = 30 * time.Second
	rctx := context.WithoutCancel(ctx)
	var giveUp time.Time
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(rctx, 10*time.Second)
		err := r.record(actx, j, state, reason, sum, "")
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("job state recorded after retrying", zap.String("state", state), zap.Int("attempts", attempt))
			}
			return
		}
		if errors.Is(err, store.ErrFenced) || errors.Is(err, ErrNotHolder) {
			// Another replica holds the connector: it ends this job
			// ("lease lost") as it takes over.
			log.Warn("job's final state not recorded: this replica no longer holds the connector; the replica that does ends the job",
				zap.String("state", state), zap.Error(err))
			return
		}
		if r.baseCtx.Err() != nil && giveUp.IsZero() {
			giveUp = time.Now().Add(finalGrace)
		}
		if !giveUp.IsZero() && time.Now().After(giveUp) {
			log.Error("cannot record final job state; the next start ends the job as interrupted", zap.String("state", state), zap.Error(err))
			return
		}
		if attempt == 1 {
			log.Warn("cannot record final job state yet (is NATS reachable?); retrying until it is stored", zap.String("state", state), zap.Error(err))
		}
		// Stopping cuts a wait short once, to start the grace period; after
		// that the waits run their course (a done channel would spin).
		stopping := r.baseCtx.Done()
		if !giveUp.IsZero() {
			stopping = nil
		}
		select {
		case <-time.After(wait):
		case <-stopping:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// failInterrupted ends the jobs of connector that an earlier holder (a
// previous run of this daemon, or another replica) left in a non-final
// state: their plugin is gone, so they can never finish. prev is the
// claim this replica's superseded.
func (r *Runner) failInterrupted(ctx context.Context, connector string, prev events.Claim) error {
	var open []*projections.Job
	r.proj.View(func(s *projections.State) {
		for _, j := range s.Jobs {
			if j.Connector == connector && !events.Final(j.State) {
				cp := *j
				open = append(open, &cp)
			}
		}
	})
	sort.Slice(open, func(a, b int) bool { return open[a].ID < open[b].ID })
	for _, pj := range open {
		j := &job{id: pj.ID, connector: pj.Connector, req: Request{Full: pj.Full, RequestedBy: pj.RequestedBy}, state: pj.State}
		reason := fmt.Sprintf("interrupted: dirsyncd stopped while the job was %s; run the sync again (the next completed sync repairs any partial changes)", pj.State)
		r.mu.Lock()
		lostHere := r.lost[connector] == prev.Epoch && prev.Epoch != 0
		r.mu.Unlock()
		switch {
		case prev.Replica != "" && prev.Replica != r.replica:
			reason = fmt.Sprintf("lease lost: replica %s stopped holding connector %s (epoch %d) while the job was %s, and replica %s took it over; "+
				"run the sync again (the next completed sync repairs any partial changes)", prev.Replica, connector, prev.Epoch, pj.State, r.replica)
		case lostHere:
			reason = fmt.Sprintf("lease lost: this replica (%s) could not renew connector %s's lease (epoch %d) in time while the job was %s "+
				"(NATS did not answer: a node lost, a leader election?), and has taken it back; run the sync again (the next completed sync repairs any partial changes)",
				r.replica, connector, prev.Epoch, pj.State)
		}
		if err := r.record(ctx, j, events.StateFailed, reason, nil, ""); err != nil {
			return err
		}
	}
	return nil
}

// newJobID returns a sortable, subject-safe sync ID.
func newJobID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	t = t.UTC()
	return fmt.Sprintf("%s%03d-%s", t.Format("20060102T150405"), t.Nanosecond()/int(time.Millisecond), hex.EncodeToString(b[:]))
}

// TestConnection starts the connector's plugin and asks it to authenticate
// and read a little of the directory.
func (r *Runner) TestConnection(ctx context.Context, connectorName string) (*connectorv1.TestConnectionResponse, error) {
	r.mu.Lock()
	spec, ok := r.specs[connectorName]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownConnector, connectorName)
	}
	wctx, cancel := context.WithTimeoutCause(ctx, TestSlotWait,
		fmt.Errorf("%w; retry in a few seconds", ErrPluginBusy))
	release, err := r.pluginSlot(wctx, spec.Plugin)
	cancel()
	if err != nil {
		return nil, err
	}
	defer release()
	conn, kill, err := r.launch(ctx, connectorName, zap.String("connector", connectorName))
	if err != nil {
		return nil, fmt.Errorf("starting the connector plugin: %w", err)
	}
	defer kill()
	return conn.TestConnection(ctx, spec.Config)
}
