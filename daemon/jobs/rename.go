package jobs

import (
	"fmt"
	"maps"
	"time"

	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// A connector renamed in plugins.hcl with renamed_from = "old" takes over
// old's active recipients at its next sync, in that one job:
//
//   - every active recipient of old is archived (a recipient.archived
//     event on old's subject, reason naming the rename), before any
//     event of the new connector's recipients, so a reader of the stream
//     never sees one email active under both names;
//   - the new connector's policy decides as if old's active recipients
//     were its own (same tenant, same object IDs): a user it wants whose
//     object ID old had becomes a recipient of the new connector created
//     from old's recipient (its stored email under update_existing =
//     false, its tags under tag_mode = "append"), with a reason naming
//     old's recipient ID, so `dirsync recipients history <email>` shows
//     both halves of the story;
//   - a user it does not want stays archived under old.
//
// Old's archived recipients are left as they are. Once old has no active
// recipient, renamed_from does nothing; it can stay in plugins.hcl.

// adoption is what a sync of a connector with renamed_from takes over.
type adoption struct {
	from string
	// recipients is the recipients of every connector as the policy
	// decides among them: old's active ones moved to the new connector.
	recipients map[string]map[string]events.Recipient
	// adopted maps an object ID to old's recipient, relabelled as the
	// new connector's, for those the new connector does not have yet.
	adopted map[string]events.Recipient
	// retiring lists old's active recipients, all archived by the job.
	retiring []events.Recipient
}

// adopt returns what a sync of connectorName takes over from the
// connector it was renamed from, or nil when there is nothing (no
// renamed_from, or old has no active recipient).
func adopt(s *projections.State, connectorName, from string) *adoption {
	if from == "" {
		return nil
	}
	old := s.Recipients[from]
	a := &adoption{from: from, adopted: map[string]events.Recipient{}}
	mine := maps.Clone(s.Recipients[connectorName])
	if mine == nil {
		mine = map[string]events.Recipient{}
	}
	for _, id := range sortedWhere(old, func(_ string, r events.Recipient) bool { return r.Status != events.RecipientArchived }) {
		r := old[id]
		a.retiring = append(a.retiring, r)
		if _, ok := mine[id]; ok {
			continue // the new connector has its own already: old's only goes
		}
		r.ID, r.Connector = policy.RecipientID(connectorName, id), connectorName
		a.adopted[id] = r
		mine[id] = r
	}
	if len(a.retiring) == 0 {
		return nil
	}
	a.recipients = maps.Clone(s.Recipients)
	delete(a.recipients, from)
	a.recipients[connectorName] = mine
	return a
}

// events archives old's active recipients, in object ID order.
func (a *adoption) events(to, jobID string, now time.Time) []events.Event {
	var evs []events.Event
	for _, r := range a.retiring {
		reason := fmt.Sprintf("connector %s was renamed to %s (renamed_from = %q)", a.from, to, a.from)
		if _, ok := a.adopted[r.ObjectID]; ok {
			reason += "; recipient " + policy.RecipientID(to, r.ObjectID) + " takes over if the user passes its import policy"
		}
		evs = append(evs, archivedEvent(a.from, jobID, r, now, reason))
	}
	return evs
}

// of returns the adopted recipient with object ID id, if any; a nil
// adoption has none.
func (a *adoption) of(id string) (events.Recipient, bool) {
	if a == nil {
		return events.Recipient{}, false
	}
	r, ok := a.adopted[id]
	return r, ok
}

// reason is the reason of a recipient the new connector creates from an
// adopted one.
func (a *adoption) reason(objectID, why string) string {
	return fmt.Sprintf("adopted from recipient %s (renamed_from = %q): %s", policy.RecipientID(a.from, objectID), a.from, why)
}

// note is the job summary's line about the adoption.
func (a *adoption) note(to string, created int) string {
	return fmt.Sprintf("renamed_from = %q: the %d active recipients of connector %s were archived under %s, and %d of them adopted by %s; "+
		"users %s does not import stay archived under %s",
		a.from, len(a.retiring), a.from, a.from, created, to, to, a.from)
}
