package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// unclassified reports whether the connector never said what u's mailbox
// is for: never asked, or it could not say.
func unclassified(u events.User) bool {
	return u.MailboxPurpose == "" || u.MailboxPurpose == events.MailboxUnknown
}

// classifyMailboxes asks the connector what users' mailboxes are for,
// when the policy excludes some purposes: only users that pass the rules
// reading the user alone (policy.PassesUserRules) and that this read
// brought new or changed, or that were never classified (an earlier
// policy did not keep them, or the connector could not say), since the
// directory answers per user (Graph: a mailboxSettings request each, 20
// to a $batch). The answers go into the snapshot's users, a user the
// read did not bring as a partial user holding only its purpose, and the
// directory keeps them (nextDirectory), so a later sync asks only about
// changes; a user asked about without a mailbox is kept as
// events.MailboxNone, and every user asked about when the connector could
// not say (Graph without MailboxSettings.Read) as events.MailboxUnknown,
// for the policy's guess (asked again at the next sync). A connector
// without the call (LDAP, a plugin built before it) is not asked; one
// that may not ask its directory says so, and the warning returned goes
// into the job's summary.
func (r *Runner) classifyMailboxes(ctx context.Context, conn connector.Connector, j *job, spec Spec, pol policy.Policy, snap *snapshot, sum *events.Summary, log *zap.Logger) (string, error) {
	mc, ok := conn.(connector.MailboxClassifier)
	if !ok || !pol.ReadMailboxPurpose() {
		return "", nil
	}
	var ids []string
	// markUnknown: the users asked about that are not MailboxUnknown yet,
	// to mark if the connector cannot say.
	markUnknown := map[string]bool{}
	r.proj.View(func(s *projections.State) {
		old := s.Directories[j.connector]
		if !snap.complete && old != nil {
			// An incremental read brings only changes: the users it did
			// not bring and that were never classified are asked about
			// too once they pass (the policy changed, or the directory
			// could not say before). A full read brings everyone.
			for id, ou := range old.Users {
				if _, read := snap.users[id]; !read && unclassified(ou) && pol.PassesUserRules(id, ou) {
					ids = append(ids, id)
					markUnknown[id] = ou.MailboxPurpose != events.MailboxUnknown
				}
			}
		}
		for id, pu := range snap.users {
			if pu.GetRemoved() != nil || pu.MailboxPurpose != nil {
				continue
			}
			var ou events.User
			had := false
			if old != nil {
				ou, had = old.Users[id]
			}
			nu := applyUser(ou, pu)
			if !pol.PassesUserRules(id, nu) {
				continue
			}
			if had && !unclassified(ou) && nu == ou {
				continue // classified, and unchanged since
			}
			ids = append(ids, id)
			markUnknown[id] = ou.MailboxPurpose != events.MailboxUnknown
		}
	})
	if len(ids) == 0 {
		return "", nil
	}
	slices.Sort(ids)
	j.mu.Lock()
	j.progress.Phase = fmt.Sprintf("classifying %d mailboxes", len(ids))
	j.touchLocked(r.now())
	j.mu.Unlock()
	classified := 0
	purposes := connector.MailboxPurposes()
	// set records what the connector said of a user; answered are those
	// it said something of in this job.
	answered := make(map[string]bool, len(ids))
	set := func(id, purpose string) {
		u, read := snap.users[id]
		if !read {
			u = &connectorv1.User{Id: id}
			snap.users[id] = u
		}
		u.MailboxPurpose = proto.String(purpose)
		answered[id] = true
	}
	for batch := range slices.Chunk(ids, connector.MaxBatchObjects) {
		asked := make(map[string]bool, len(batch))
		for _, id := range batch {
			asked[id] = true
		}
		resp, err := mc.ClassifyMailboxes(ctx, &connectorv1.ClassifyMailboxesRequest{Config: spec.Config, UserIds: batch, JobId: j.id})
		if errors.Is(err, connector.ErrNotSupported) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("connector %s: classifying mailboxes (shared, room, equipment): %w", j.connector, &pluginError{err: err})
		}
		sum.DirectoryRequests += resp.GetRequests()
		sum.GraphRequests = sum.DirectoryRequests
		sum.Retries += resp.GetRetries()
		sum.ThrottleWaitMS += resp.GetThrottleWaitMs()
		if why := resp.GetUnavailable(); why != "" {
			why = cleanMessage(why)
			log.Warn("mailbox purposes not read", zap.String("why", why))
			// Every user asked about is marked: the policy guesses for
			// them, explain says so, and the next sync asks again.
			for _, id := range ids {
				if markUnknown[id] && !answered[id] {
					set(id, events.MailboxUnknown)
				}
			}
			return "mailbox purposes not read, so shared, room and equipment mailboxes are not told apart from people's (a disabled account with a mailbox is taken for a shared one where include_disabled = true): " + why, nil
		}
		// A user asked about and left out has no mailbox the connector
		// could read: what was said of it before no longer holds.
		for _, id := range batch {
			purpose, ok := resp.GetPurposes()[id]
			switch {
			case !ok:
				purpose = events.MailboxNone
			case !slices.Contains(purposes, purpose):
				snap.sanitized.add(fixInvalidValue)
				continue
			default:
				classified++
			}
			set(id, purpose)
		}
		for id := range resp.GetPurposes() {
			if !asked[id] {
				snap.sanitized.add(fixInvalidValue)
			}
		}
	}
	log.Info("mailboxes classified", zap.Int("asked", len(ids)), zap.Int("classified", classified))
	return "", nil
}
