package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Retire says what a retire job does with the recipients of a connector
// that is no longer in plugins.hcl.
//
// The rule is the request's, not the connector's on_removed: the import
// block that held on_removed went with the connector block, and nothing
// else records it (the events record decisions, not configuration).
// Archive is the default because it is the one that can be undone: the
// recipients and their history stay, a connector added again under the
// old name restores them, and a renamed connector's first sync creates
// its own without a duplicate email. Delete must be asked for; keep is
// refused, since keeping them active is what retiring ends.
type Retire struct {
	// OnRemoved is policy.OnRemovedArchive (also for "") or
	// policy.OnRemovedDelete.
	OnRemoved string
}

// ErrConfigured is returned for a retire request naming a connector that
// plugins.hcl still declares.
var ErrConfigured = errors.New("connector is still in plugins.hcl")

// ErrInvalidRetire is returned for a retire request whose options are
// wrong (the API answers 400).
var ErrInvalidRetire = errors.New("invalid retire request")

// RetireReason is the reason recipient events of a retire job give.
func RetireReason(connectorName string) string {
	return fmt.Sprintf("connector %s was retired (dirsync connector retire): it is no longer in plugins.hcl", connectorName)
}

// Unconfigured is a connector the read models know (it has recipients,
// jobs or a directory) that plugins.hcl no longer declares: removed or
// renamed, and not retired yet while Active > 0.
type Unconfigured struct {
	Name     string
	Active   int
	Archived int
	// RenamedTo is the configured connector whose renamed_from names this
	// one, if any.
	RenamedTo string
}

// Advice says what the operator should do about an unconfigured
// connector, in one line for the log and for `dirsync status`.
func (u Unconfigured) Advice() string {
	if u.Active == 0 {
		return fmt.Sprintf("connector %s is not in plugins.hcl and has no active recipient (%d archived): nothing to do", u.Name, u.Archived)
	}
	if u.RenamedTo != "" {
		return fmt.Sprintf("connector %s is not in plugins.hcl and still has %d active recipients: connector %s (renamed_from = %q) takes them over at its next sync",
			u.Name, u.Active, u.RenamedTo, u.Name)
	}
	return fmt.Sprintf("connector %s is not in plugins.hcl but still has %d active recipients, and users of other connectors with their emails are skipped as duplicate_email; "+
		"if it was removed, retire it (dirsync connector retire %s); if it was renamed, retire it or add renamed_from = %q to the new connector block",
		u.Name, u.Active, u.Name, u.Name)
}

// Unconfigured lists, sorted by name, the connectors the read models
// know that are not configured now.
func (r *Runner) Unconfigured() []Unconfigured {
	r.mu.Lock()
	configured := map[string]bool{}
	renamed := map[string]string{}
	for n, s := range r.specs {
		configured[n] = true
		if s.RenamedFrom != "" {
			renamed[s.RenamedFrom] = n
		}
	}
	r.mu.Unlock()
	var out []Unconfigured
	r.proj.View(func(s *projections.State) {
		for _, n := range s.Connectors() {
			if configured[n] {
				continue
			}
			st := s.SyncStatus(n)
			out = append(out, Unconfigured{Name: n, Active: st.Recipients, Archived: st.Archived, RenamedTo: renamed[n]})
		}
	})
	return out
}

// RetireConnector queues a retire job for a connector that is no longer
// in plugins.hcl: its recipients are archived (or deleted) under
// ret.OnRemoved, with the mass-removal guard of the default max_removals
// rule unless allowMassRemoval. It runs in the connector's lane, so it
// never runs beside another job of that connector; like a sync request,
// it cancels the connector's job that has not reached SAVING (a sync of
// a connector that is gone, or an earlier retire) and waits for one in
// SAVING.
func (r *Runner) RetireConnector(ctx context.Context, connectorName string, ret Retire, allowMassRemoval bool, requestedBy string) (string, error) {
	switch ret.OnRemoved {
	case "":
		ret.OnRemoved = policy.OnRemovedArchive
	case policy.OnRemovedArchive, policy.OnRemovedDelete:
	default:
		return "", fmt.Errorf("%w: on_removed %q: use %s (the default) or %s; keep would leave the recipients active, which retiring ends",
			ErrInvalidRetire, ret.OnRemoved, policy.OnRemovedArchive, policy.OnRemovedDelete)
	}
	r.mu.Lock()
	_, configured := r.specs[connectorName]
	r.mu.Unlock()
	if configured {
		return "", fmt.Errorf("%w: connector %s: remove its block from plugins.hcl and reload dirsyncd (SIGHUP) before retiring it", ErrConfigured, connectorName)
	}
	known := false
	r.proj.View(func(s *projections.State) { known = slices.Contains(s.Connectors(), connectorName) })
	if !known {
		return "", fmt.Errorf("%w %q: the read models hold no job, recipient or directory of it", ErrUnknownConnector, connectorName)
	}
	var opts *events.JobOptions
	if allowMassRemoval {
		opts = &events.JobOptions{AllowMassRemoval: true}
	}
	return r.Request(ctx, connectorName, Request{RequestedBy: requestedBy, Options: opts, Retire: &ret})
}

// retire drives a retire job to a final state: STARTED, PROCESSING
// (deciding), SAVING (the recipient events), COMPLETED with a summary.
// There is no plugin to start and nothing to retrieve.
func (r *Runner) retire(laneCtx context.Context, j *job) {
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
		state, reason := r.endOf(ctx, j, err, "retire job", "retire the connector again")
		r.recordFinal(ctx, j, state, reason, sum, log)
	}
	for _, state := range []string{events.StateStarted, events.StateProcessing} {
		if err := r.record(ctx, j, state, "", nil, ""); err != nil {
			finish(err)
			return
		}
	}
	if err := r.stillUnconfigured(j.connector); err != nil {
		finish(err)
		return
	}
	var evs []events.Event
	var active int
	r.proj.View(func(s *projections.State) {
		evs, active = retireEvents(s, j.connector, j.id, j.req.Retire.OnRemoved, r.now(), sum)
	})
	removals := sum.RecipientsArchived + sum.RecipientsRemoved
	if j.req.Retire.OnRemoved == policy.OnRemovedDelete {
		removals = active // deleting archived recipients removes nobody from the list
	}
	limit := config.Limit{}
	if (j.req.Options == nil || !j.req.Options.AllowMassRemoval) && limit.Exceeded(removals, active) {
		finish(fmt.Errorf("retiring connector %s would remove %d of its %d active recipients, "+GuardReason+" (%s; "+
			"the connector's own max_removals went with its block in plugins.hcl); nothing was changed. "+
			"If they should go, confirm with `dirsync connector retire %s --allow-mass-removal`",
			j.connector, removals, active, limit, j.connector))
		return
	}
	sctx, scancel := context.WithTimeout(r.baseCtx, saveTimeout) // as a sync's SAVING (run.go)
	defer scancel()
	if err := r.save(ctx, sctx, j, evs); err != nil {
		finish(fmt.Errorf("%w; retire the connector again to finish", err))
		return
	}
	r.proj.View(func(s *projections.State) { sum.Recipients = s.SyncStatus(j.connector).Recipients })
	sum.DurationMS = r.now().Sub(started).Milliseconds()
	if err := r.record(sctx, j, events.StateCompleted, "", sum, ""); err != nil {
		finish(err)
		return
	}
	log.Info("connector retired", zap.Int("archived", sum.RecipientsArchived), zap.Int("deleted", sum.RecipientsRemoved))
}

// stillUnconfigured fails a retire job whose connector came back into
// plugins.hcl (a reload) after it was queued.
func (r *Runner) stillUnconfigured(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.specs[name]; ok {
		return fmt.Errorf("connector %s is in plugins.hcl again (reloaded after the retire was requested): nothing was retired; "+
			"remove it from plugins.hcl first if it should go", name)
	}
	return nil
}

// retireEvents returns the recipient events that retire a connector, in
// object ID order, with the count of its active recipients before. Under
// archive, its active recipients are archived; under delete, all its
// recipients, archived ones too, are deleted: the connector is gone.
func retireEvents(s *projections.State, connectorName, jobID, onRemoved string, now time.Time, sum *events.Summary) ([]events.Event, int) {
	have := s.Recipients[connectorName]
	active := 0
	var evs []events.Event
	reason := RetireReason(connectorName)
	for _, id := range sortedKeys(have) {
		cur := have[id]
		isActive := cur.Status != events.RecipientArchived
		if isActive {
			active++
		}
		switch {
		case onRemoved == policy.OnRemovedDelete:
			evs = append(evs, events.New(events.TypeRecipientRemoved, events.RecipientSubject(connectorName, id), connectorName, jobID, 0, now,
				events.RecipientChange{Recipient: cur, Reason: reason}))
			sum.RecipientsRemoved++
		case isActive:
			evs = append(evs, archivedEvent(connectorName, jobID, cur, now, reason))
			sum.RecipientsArchived++
		}
	}
	return evs, active
}

// archivedEvent is the event that archives recipient r of connectorName,
// as a job that retires or renames the connector writes it.
func archivedEvent(connectorName, jobID string, r events.Recipient, now time.Time, reason string) events.Event {
	r.Status = events.RecipientArchived
	r.UpdatedAt = now.UTC()
	return events.New(events.TypeRecipientArchived, events.RecipientSubject(connectorName, r.ObjectID), connectorName, jobID, 0, now,
		events.RecipientChange{Recipient: r, Changed: []string{"status"}, Reason: reason})
}

// WarnUnconfigured logs a warning for each connector the read models
// know that plugins.hcl no longer declares and that still has active
// recipients, and returns them all (at start and at each reload).
func (r *Runner) WarnUnconfigured(log *zap.Logger) []Unconfigured {
	list := r.Unconfigured()
	for _, u := range list {
		if u.Active > 0 {
			log.Warn(u.Advice(), zap.String("connector", u.Name), zap.Int("activeRecipients", u.Active), zap.String("renamedTo", u.RenamedTo))
		}
	}
	return list
}
