package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// saveTimeout bounds SAVING, which is not canceled by newer requests.
const saveTimeout = 10 * time.Minute

// run drives one job to a final state.
func (r *Runner) run(laneCtx context.Context, j *job) {
	r.mu.Lock()
	spec, ok := r.specs[j.connector]
	r.mu.Unlock()
	if !ok {
		spec = Spec{Name: j.connector}
	}
	ctx, cancel := context.WithCancelCause(laneCtx)
	defer cancel(nil)
	j.mu.Lock()
	j.cancel = cancel
	j.mu.Unlock()
	started := r.now()
	j.started = started
	log := r.log.With(zap.String("connector", j.connector), zap.String("job", j.id))
	sum := &events.Summary{}

	finish := func(err error) {
		sum.DurationMS = r.now().Sub(started).Milliseconds()
		state, reason := r.endOf(ctx, j, err, "job", "run the sync again")
		sum.FullRead = sum.FullRead || j.readsAll()
		j.mu.Lock()
		failedRetries(sum, j.progress.Retrying)
		j.mu.Unlock()
		r.recordFinal(ctx, j, state, reason, sum, log)
	}

	var resumes string
	var carried *events.JobOptions
	r.proj.View(func(s *projections.State) { resumes, carried = resumeFrom(s, j.connector, j.id) })
	if resumes != "" {
		j.mu.Lock()
		j.req.Options, j.resumes = carryOptions(carried, j.req.Options), resumes
		j.mu.Unlock()
		log.Info("this job carries on the one-time options of a job that failed after storing part of its changes, so that they reach every recipient",
			zap.String("resumes", resumes), zap.Strings("tags", carried.Tags), zap.String("tagMode", carried.TagMode))
	}
	if err := r.record(ctx, j, events.StateStarted, "", nil, ""); err != nil {
		finish(err)
		return
	}
	// A slot first: the job waits (cancelable) while the plugin runs as
	// many processes as it may.
	j.mu.Lock()
	j.progress.Phase = phaseWaitingForSlot
	j.mu.Unlock()
	releaseSlot, err := r.pluginSlot(ctx, spec.Plugin)
	if err != nil {
		finish(err)
		return
	}
	defer releaseSlot()
	j.mu.Lock()
	j.progress.Phase = ""
	j.touchLocked(r.now())
	j.mu.Unlock()
	conn, kill, err := r.launch(ctx, j.connector, zap.String("connector", j.connector), zap.String("job", j.id))
	if err != nil {
		// The error may carry the plugin's own words (its answer to
		// Describe): cleaned like any plugin text.
		finish(fmt.Errorf("starting the connector plugin: %w", &pluginError{err: err}))
		return
	}
	defer kill()

	var cursor string
	var lastFull *time.Time
	r.proj.View(func(s *projections.State) {
		cursor = s.Cursors[j.connector]
		lastFull = s.SyncStatus(j.connector).LastFullReadAt
	})
	full := j.req.Full || cursor == "" ||
		(spec.FullSyncInterval > 0 && (lastFull == nil || r.now().Sub(*lastFull) >= spec.FullSyncInterval))
	if full && !j.req.Full && cursor != "" {
		log.Info("full read: full_sync_interval has passed since the last one", zap.Duration("full_sync_interval", spec.FullSyncInterval))
	}
	// The job records the read it does, not only the one asked for: a
	// first sync, or one past full_sync_interval, is a full read too.
	j.mu.Lock()
	j.full = full
	j.mu.Unlock()
	if err := r.record(ctx, j, events.StateRetrieving, "", nil, ""); err != nil {
		finish(err)
		return
	}
	snap := newSnapshot()
	snap.full = full
	var expected int64
	if full {
		r.proj.View(func(s *projections.State) { expected = int64(s.SyncStatus(j.connector).Users) })
	}
	pol := spec.Policy.With(j.req.Options)
	// broke is kept apart from what Sync returns: a connector may wrap or
	// replace the callback's error, and a broken protocol must say so.
	var broke error
	err = conn.Sync(ctx, &connectorv1.SyncRequest{Config: spec.Config, Cursor: cursor, Full: full,
		JobId: j.id, GroupTypes: pol.ReadGroupTypes(), Attributes: pol.ReadAttributes(), MailboxPurpose: pol.ReadMailboxPurpose()},
		func(b *connectorv1.SyncBatch) error {
			if err := snap.add(b, sum); err != nil {
				broke = err
				return err
			}
			if p := b.GetProgress(); p != nil {
				phase, _ := cleanText(p.GetPhase(), MaxTextRunes)
				j.mu.Lock()
				wave, fresh := retrying(p.GetRetrying(), j.progress.Retrying, r.now())
				j.progress = Progress{Phase: phase, Users: count(p.GetUsers()), Groups: count(p.GetGroups()),
					Memberships: count(p.GetMemberships()), Requests: count(p.GetRequests()), ExpectedUsers: expected,
					Retrying: wave}
				j.touchLocked(r.now())
				j.mu.Unlock()
				if fresh {
					// The plugin logs the wave too; this line names the job for
					// an operator reading only the daemon's own lines.
					log.Warn("the connector is retrying its directory", zap.String("cause", wave.Cause),
						zap.Int64("attempt", wave.Attempt), zap.Duration("wait", time.Duration(wave.WaitMS)*time.Millisecond),
						zap.Duration("budgetLeft", time.Duration(wave.BudgetLeftMS)*time.Millisecond))
				}
				sum.DirectoryRequests = count(p.GetRequests())
				sum.GraphRequests = sum.DirectoryRequests
				sum.SkippedMembers = count(p.GetSkippedMembers())
				sum.Retries = count(p.GetRetries())
				sum.ThrottleWaitMS = count(p.GetThrottleWaitMs())
			}
			return ctx.Err()
		})
	snap.report(sum)
	if len(sum.Rejected) > 0 || len(sum.Sanitized) > 0 {
		// Counts and IDs that passed the ID check only: a hostile value
		// must not reach the log either.
		log.Warn("objects the plugin read were dropped or had fields cleaned (by the plugin or dirsyncd); see the job summary",
			zap.String("plugin", spec.Plugin), zap.Any("rejected", sum.Rejected), zap.Any("sanitized", sum.Sanitized),
			zap.Strings("examples", snap.examples))
	}
	who := fmt.Sprintf("connector %s", j.connector)
	if spec.Plugin != "" {
		who = fmt.Sprintf("connector %s (plugin %q)", j.connector, spec.Plugin)
	}
	var found *connector.ProtocolError
	if broke == nil && errors.As(err, &found) {
		// The plugin client's own checks found it.
		broke = found
	}
	if broke != nil {
		finish(protocolFailure(j.connector, spec.Plugin, broke))
		return
	}
	if err != nil {
		finish(fmt.Errorf("%s: retrieving the directory: %w", who, &pluginError{err: err}))
		return
	}
	if !snap.done {
		finish(fmt.Errorf("%s: the plugin ended the sync without its final batch", who))
		return
	}
	mailboxWarning, err := r.classifyMailboxes(ctx, conn, j, spec, pol, snap, sum, log)
	if err != nil {
		finish(err)
		return
	}
	snap.report(sum)
	sum.FullRead, sum.ResyncReason = snap.complete, cleanMessage(snap.resyncReason)
	if snap.complete {
		// An incremental sync the connector turned into a full read (an
		// expired delta token): its next events say so, like its summary.
		j.mu.Lock()
		j.full = true
		j.mu.Unlock()
	}
	log.Info("directory retrieved", zap.Int64("users", sum.UsersRetrieved), zap.Int64("groups", sum.GroupsRetrieved),
		zap.Int64("memberships", sum.MembershipsRetrieved), zap.Int64("rejected", sum.RejectedObjects))

	if err := r.record(ctx, j, events.StateProcessing, "", nil, ""); err != nil {
		finish(err)
		return
	}
	var evs []events.Event
	var memo *planMemo
	active := 0
	// The plan takes the memo (planDelta updates it in place); the job
	// puts the next one back once its events are stored and folded.
	r.mu.Lock()
	last := r.memos[j.connector]
	delete(r.memos, j.connector)
	r.mu.Unlock()
	t0 := time.Now()
	var locked time.Duration
	r.proj.View(func(s *projections.State) {
		locked = time.Since(t0)
		evs, memo = plan(s, j.connector, j.id, spec, j.req.Options, snap, r.now(), sum, last)
		active = s.SyncStatus(j.connector).Recipients
	})
	if mailboxWarning != "" {
		sum.Warnings = append([]string{mailboxWarning}, sum.Warnings...)
	}
	// What the plugin sent is in evs now: let the collector have it
	// before SAVING, the job's memory peak.
	snap.release()
	if memo != nil {
		// Whether the plan followed the last one's or had to decide about
		// every user again (see planMemo), for whoever wonders why a
		// small change took long.
		log.Info("changes planned", zap.Bool("fromLastPlan", memo.delta), zap.Int("usersDecided", memo.decided), zap.Int("events", len(evs)),
			zap.Duration("took", time.Since(t0)), zap.Duration("waitedForReadModels", locked))
	}
	if err := ctx.Err(); err != nil {
		finish(err)
		return
	}
	opts := j.req.Options
	if opts == nil {
		opts = &events.JobOptions{}
	}
	limit := spec.MaxRemovals
	if limit == nil {
		limit = config.Limit{}
	}
	removals := sum.RecipientsArchived + sum.RecipientsRemoved
	if !opts.AllowMassRemoval && limit.Exceeded(removals, active) {
		guard := fmt.Sprintf("this sync would remove %d of %d recipients, "+GuardReason+" (%s); nothing was changed. "+
			"If the directory really lost them, run `dirsync sync %s --allow-mass-removal`; otherwise check the import policy and the connector's permissions",
			removals, active, limit, j.connector)
		if !opts.DryRun {
			finish(errors.New(guard))
			return
		}
		sum.Warnings = append(sum.Warnings, "a run without --dry-run would stop: "+guard)
	}
	if opts.DryRun {
		if err := r.keepDryRun(ctx, j.id, changesOf(evs)); err != nil {
			finish(err)
			return
		}
		sum.DryRun = true
		sum.DurationMS = r.now().Sub(started).Milliseconds()
		sum.Recipients = active
		if err := r.record(ctx, j, events.StateCompleted, "", sum, ""); err != nil {
			finish(err)
		}
		return
	}

	// SAVING goes on when the lease is lost meanwhile (not when the
	// daemon stops): the fence decides. Until another replica has claimed
	// the connector its batches are stored; after, the next one is
	// refused and the job ends there.
	sctx, scancel := context.WithTimeout(r.baseCtx, saveTimeout)
	defer scancel()
	// evs is not used past save, so the list (which save empties) is
	// garbage while the job's final state is recorded and the checkpoint
	// its events call for is encoded.
	planned := len(evs)
	if err := r.save(ctx, sctx, j, evs); err != nil {
		finish(err)
		return
	}
	r.mu.Lock()
	r.memos[j.connector] = memo
	r.mu.Unlock()
	r.proj.View(func(s *projections.State) { sum.Recipients = s.SyncStatus(j.connector).Recipients })
	sum.DurationMS = r.now().Sub(started).Milliseconds()
	if err := r.record(sctx, j, events.StateCompleted, "", sum, snap.cursor); err != nil {
		finish(err)
		return
	}
	log.Info("sync completed", zap.Int("events", planned), zap.Int("created", sum.RecipientsCreated),
		zap.Int("updated", sum.RecipientsUpdated), zap.Int("removed", sum.RecipientsRemoved),
		zap.Int64("duration_ms", sum.DurationMS))
}

// endOf is how a job that stopped on err ends: CANCELED when a newer
// request or the operator canceled it, FAILED as interrupted (the reason
// says what to do again) when dirsyncd stops, FAILED with err otherwise.
// what names the job in that reason ("job", "retire job").
func (r *Runner) endOf(ctx context.Context, j *job, err error, what, again string) (state, reason string) {
	var super errSuperseded
	switch {
	case errors.As(context.Cause(ctx), &super):
		return events.StateCanceled, super.Error()
	case errors.Is(context.Cause(ctx), errCanceledByOperator):
		return events.StateCanceled, errCanceledByOperator.Error()
	case r.baseCtx.Err() != nil:
		return events.StateFailed, fmt.Sprintf("interrupted: dirsyncd stopped while the %s was %s; %s", what, j.currentState(), again)
	case errors.Is(context.Cause(ctx), ErrLeaseLost):
		return events.StateFailed, fmt.Sprintf("lease lost: replica %s stopped holding connector %s while the %s was %s (%v); %s",
			r.replica, j.connector, what, j.currentState(), context.Cause(ctx), again)
	}
	return events.StateFailed, err.Error()
}

// save records SAVING and stores a job's events within sctx (saveTimeout),
// then waits until the read models show them. From SAVING on, a newer
// request waits for the job instead of canceling it: the events must all
// land. ctx, the job's cancelable context, is checked once more first.
func (r *Runner) save(ctx, sctx context.Context, j *job, evs []events.Event) error {
	j.mu.Lock()
	j.cancel = nil
	j.mu.Unlock()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if err := r.record(sctx, j, events.StateSaving, "", nil, ""); err != nil {
		return err
	}
	j.mu.Lock()
	j.progress.Phase, j.progress.Events = "saving", len(evs)
	j.mu.Unlock()
	seq, err := r.appendFenced(sctx, j.connector, evs, func(saved int) {
		j.mu.Lock()
		j.progress.Saved = saved
		j.touchLocked(r.now())
		j.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("storing %d events: %w", len(evs), err)
	}
	return r.proj.WaitFor(sctx, seq)
}

// changesOf lists the recipient changes among planned events, as a job's
// change list shows them.
func changesOf(evs []events.Event) []projections.Change {
	var out []projections.Change
	for _, e := range evs {
		kind := projections.ChangeKind(e.Type)
		if kind == "" {
			continue
		}
		c, _ := e.Data.(events.RecipientChange)
		out = append(out, projections.Change{Time: e.Time, JobID: e.JobID, Kind: kind, RecipientID: c.Recipient.ID,
			ObjectID: c.Recipient.ObjectID, Email: c.Recipient.Email, Changed: c.Changed, Reason: c.Reason})
	}
	return out
}

// protocolFailure is a job's failure reason when its plugin broke the
// protocol: it names the plugin, since the plugin is what must change.
func protocolFailure(connectorName, plugin string, broke error) error {
	who := "its plugin"
	if plugin != "" {
		who = fmt.Sprintf("plugin %q", plugin)
	}
	return fmt.Errorf("connector %s: %s %w; the plugin is faulty or does not match this dirsyncd version: update it, or report it to its author",
		connectorName, who, broke)
}

// failedRetries makes a failed job's summary count at least the
// attempts of the retry wave the plugin last reported and did not end
// (the job's live progress still holds it):
// the plugin's failure then says it retried (its error crosses gRPC as
// text only), and a plugin that sends no progress with its failure must
// not leave a summary of 0 requests beside it. Attempt n failed, so n
// requests were made and n-1 of them were retries.
func failedRetries(sum *events.Summary, wave *Retrying) {
	if wave == nil {
		return
	}
	n := wave.Attempt
	sum.DirectoryRequests = max(sum.DirectoryRequests, n)
	sum.GraphRequests = sum.DirectoryRequests
	sum.Retries = max(sum.Retries, n-1)
}

// count is a plugin's counter as a summary may hold it: never negative.
func count(n int64) int64 { return max(n, 0) }

func (j *job) currentState() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.state
}

// maxExamples bounds the object IDs the intake log line names.
const maxExamples = 10

// snapshot accumulates what a plugin streamed for one job, through the
// intake (intake.go): its users, groups and members are checked and
// cleaned; the cursor is checked and the resync reason cleaned when used.
type snapshot struct {
	users   map[string]*connectorv1.User
	groups  map[string]*connectorv1.Group
	added   map[string]map[string]struct{}
	removed map[string]map[string]struct{}
	// replaced are the groups whose whole member list the plugin sent
	// (Membership.replace): the members it did not list are removed once
	// the stored members are known (replaceMembers).
	replaced map[string]bool
	// addedGroups and removedGroups are the nesting changes: group ID to
	// the IDs of groups that became or stopped being its direct members.
	addedGroups, removedGroups map[string]map[string]struct{}
	done                       bool
	complete                   bool
	full                       bool
	cursor                     string
	resyncReason               string
	// rejected and sanitized count the daemon's reasons since the read
	// (re)started; pluginRejected and pluginSanitized are the plugin's
	// latest Progress.rejected and Progress.sanitized (the plugin counts
	// since the sync began).
	rejected, sanitized, pluginRejected, pluginSanitized tally
	// examples are IDs of objects with a cleaned field, for the log.
	examples []string
}

// release drops the objects read, keeping the cursor and the counts.
func (s *snapshot) release() {
	s.users, s.groups, s.added, s.removed, s.replaced, s.addedGroups, s.removedGroups = nil, nil, nil, nil, nil, nil, nil
}

// replaceMembers turns the groups whose whole member list the plugin sent
// into removals of the members old holds and the list lacks, so that
// planning sees only additions and removals. A complete snapshot
// replaces every group's members anyway.
func (s *snapshot) replaceMembers(old *projections.Directory) {
	if s.complete {
		return
	}
	for g := range s.replaced {
		for id := range old.Members[g] {
			if _, ok := s.added[g][id]; !ok {
				setAdd(s.removed, g, id)
			}
		}
		for id := range old.Nested[g] {
			if _, ok := s.addedGroups[g][id]; !ok {
				setAdd(s.removedGroups, g, id)
			}
		}
	}
	clear(s.replaced)
}

func newSnapshot() *snapshot {
	return &snapshot{users: map[string]*connectorv1.User{}, groups: map[string]*connectorv1.Group{},
		added: map[string]map[string]struct{}{}, removed: map[string]map[string]struct{}{}, replaced: map[string]bool{},
		addedGroups: map[string]map[string]struct{}{}, removedGroups: map[string]map[string]struct{}{},
		rejected: tally{}, sanitized: tally{}, pluginRejected: tally{}, pluginSanitized: tally{}}
}

// report writes the intake's counts into sum: Rejected and Sanitized
// merge the daemon's reasons with the plugin's (a reason both use, such
// as "invalid_utf8", adds up), RejectedObjects is Rejected's total.
func (s *snapshot) report(sum *events.Summary) {
	rej := s.rejected.merged(s.pluginRejected)
	var total int64
	for _, n := range rej {
		total += n
	}
	sum.Rejected, sum.RejectedObjects, sum.Sanitized = nil, total, nil
	if len(rej) > 0 {
		sum.Rejected = rej
	}
	if san := s.sanitized.merged(s.pluginSanitized); len(san) > 0 {
		sum.Sanitized = san
	}
}

// cleaned counts an object's cleaned fields.
func (s *snapshot) cleaned(id string, fx []fixes) {
	if len(fx) == 0 {
		return
	}
	for _, f := range fx {
		s.sanitized.add(f)
	}
	if len(s.examples) < maxExamples && !slices.Contains(s.examples, id) {
		s.examples = append(s.examples, id)
	}
}

// add takes one batch in. It returns an error (wrapping ErrProtocol) when
// the batch breaks the protocol; the snapshot must then be dropped.
func (s *snapshot) add(b *connectorv1.SyncBatch, sum *events.Summary) error {
	if err := checkBatch(b, s.done, s.full); err != nil {
		return err
	}
	if p := b.GetProgress(); p != nil {
		s.pluginRejected = pluginCounts(p.GetRejected())
		s.pluginSanitized = pluginCounts(p.GetSanitized())
	}
	if b.GetRestart() {
		clear(s.users)
		clear(s.groups)
		clear(s.added)
		clear(s.removed)
		clear(s.replaced)
		clear(s.addedGroups)
		clear(s.removedGroups)
		clear(s.rejected)
		clear(s.sanitized)
		s.examples = nil
		sum.UsersRetrieved, sum.GroupsRetrieved, sum.MembershipsRetrieved = 0, 0, 0
	}
	for _, u := range b.GetUsers() {
		if !connector.ValidObjectID(u.GetId()) {
			s.rejected[RejectInvalidID]++
			continue
		}
		u, fx := cleanUser(u)
		s.cleaned(u.GetId(), fx)
		sum.UsersRetrieved++
		if old, ok := s.users[u.GetId()]; ok {
			connector.MergeUser(old, u)
			continue
		}
		s.users[u.GetId()] = u
	}
	for _, g := range b.GetGroups() {
		if !connector.ValidObjectID(g.GetId()) {
			s.rejected[RejectInvalidID]++
			continue
		}
		g, fx := cleanGroup(g)
		s.cleaned(g.GetId(), fx)
		sum.GroupsRetrieved++
		s.groups[g.GetId()] = g
	}
	for _, m := range b.GetMemberships() {
		if !connector.ValidObjectID(m.GetGroupId()) {
			s.rejected[RejectInvalidID]++
			continue
		}
		if m.GetReplace() {
			s.replaced[m.GetGroupId()] = true
		}
		for _, id := range m.GetAddedUserIds() {
			if !connector.ValidObjectID(id) {
				s.rejected[RejectInvalidID]++
				continue
			}
			sum.MembershipsRetrieved++
			setAdd(s.added, m.GetGroupId(), id)
			delete(s.removed[m.GetGroupId()], id)
		}
		for _, id := range m.GetRemovedUserIds() {
			if !connector.ValidObjectID(id) {
				s.rejected[RejectInvalidID]++
				continue
			}
			setAdd(s.removed, m.GetGroupId(), id)
			delete(s.added[m.GetGroupId()], id)
		}
		for _, id := range m.GetAddedGroupIds() {
			if !connector.ValidObjectID(id) {
				s.rejected[RejectInvalidID]++
				continue
			}
			sum.MembershipsRetrieved++
			setAdd(s.addedGroups, m.GetGroupId(), id)
			delete(s.removedGroups[m.GetGroupId()], id)
		}
		for _, id := range m.GetRemovedGroupIds() {
			if !connector.ValidObjectID(id) {
				s.rejected[RejectInvalidID]++
				continue
			}
			setAdd(s.removedGroups, m.GetGroupId(), id)
			delete(s.addedGroups[m.GetGroupId()], id)
		}
	}
	if b.GetDone() {
		s.done, s.complete, s.cursor, s.resyncReason = true, b.GetComplete(), b.GetCursor(), b.GetResyncReason()
	}
	return nil
}

func setAdd(m map[string]map[string]struct{}, k, v string) {
	set, ok := m[k]
	if !ok {
		set = map[string]struct{}{}
		m[k] = set
	}
	set[v] = struct{}{}
}

// retrying turns a plugin's report of a retry wave into the job's live
// progress, cleaned like any text a plugin sends, given the progress of
// the report before (prev). A wave already known (the same report on a
// later batch) keeps its start time, so that the wait counts from when
// the plugin began it, not from its next batch; fresh says the report
// begins a new wave.
func retrying(rt *connectorv1.Retrying, prev *Retrying, now time.Time) (wave *Retrying, fresh bool) {
	if rt == nil {
		return nil, false
	}
	cause, _ := cleanText(rt.GetCause(), MaxTextRunes)
	out := &Retrying{Cause: cause, Attempt: max(rt.GetAttempt(), 0), WaitMS: max(rt.GetWaitMs(), 0),
		BudgetLeftMS: max(rt.GetBudgetLeftMs(), 0), Since: now}
	if prev != nil && prev.Cause == out.Cause && prev.Attempt == out.Attempt && prev.WaitMS == out.WaitMS && prev.BudgetLeftMS == out.BudgetLeftMS {
		out.Since = prev.Since
		return out, false
	}
	return out, true
}
