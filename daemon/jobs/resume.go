package jobs

import (
	"slices"
	"strings"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// A job that FAILS in SAVING has stored part of its events. Changes that
// follow from the directory and the import block repair themselves: the
// next job plans the whole directory against the recipients as stored.
// One-time options do not: the next job has none, so a tag the failed job
// gave to part of the recipients would stay on that part only, and the
// next sync would call them unchanged. So the next job that gets as far
// as running carries on the failed job's one-time options with its own
// (resumeFrom, carryOptions), records that on its STARTED event
// (events.SyncState.Resumes), and once it COMPLETES every recipient has
// them: the failed job's intent is applied whole, never in part.

// resumeFrom returns the job of connector whose one-time options the job
// self must carry on, and those options: the connector's latest final job
// that reached SAVING (jobs that never did stored nothing), when that job
// FAILED and had options that change recipients. "" when there is none.
func resumeFrom(s *projections.State, connector, self string) (string, *events.JobOptions) {
	var ids []string
	for id, j := range s.Jobs {
		if j.Connector == connector && id != self && events.Final(j.State) {
			ids = append(ids, id)
		}
	}
	// Job IDs sort by the time they were requested.
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	for _, id := range ids {
		j := s.Jobs[id]
		if !slices.ContainsFunc(j.History, func(c projections.StateChange) bool { return c.State == events.StateSaving }) {
			continue
		}
		// A retire job (it never reads the directory: no RETRIEVING) is
		// no sync whose options a sync could carry on, and it leaves no
		// active recipient to repair.
		retire := !slices.ContainsFunc(j.History, func(c projections.StateChange) bool { return c.State == events.StateRetrieving })
		if retire || j.State != events.StateFailed || !changesRecipients(j.Options) {
			return "", nil
		}
		o := *j.Options
		return id, &o
	}
	return "", nil
}

// changesRecipients reports whether one-time options change what a job
// stores: tags, a tag mode, or consent to a mass removal.
func changesRecipients(o *events.JobOptions) bool {
	return o != nil && (len(o.Tags) > 0 || o.TagMode != "" || o.AllowMassRemoval)
}

// carryOptions returns the options of a job that carries on inherited:
// the inherited tags and then its own, the tag mode its own if it sets
// one, mass removal allowed if either allows it, and its own dry run.
func carryOptions(inherited, own *events.JobOptions) *events.JobOptions {
	out := *inherited
	out.DryRun = false
	out.Tags = slices.Clone(inherited.Tags)
	if own != nil {
		for _, t := range own.Tags {
			if !slices.Contains(out.Tags, t) {
				out.Tags = append(out.Tags, t)
			}
		}
		if own.TagMode != "" {
			out.TagMode = own.TagMode
		}
		out.AllowMassRemoval = out.AllowMassRemoval || own.AllowMassRemoval
		out.DryRun = own.DryRun
	}
	return &out
}
