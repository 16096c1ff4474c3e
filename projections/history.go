package projections

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// ChangeOf turns a recipient event into its entry in a change list or a
// history; ok is false for any other event or one that does not decode.
func ChangeOf(e events.Event) (Change, bool) {
	if ChangeKind(e.Type) == "" {
		return Change{}, false
	}
	var c events.RecipientChange
	if err := e.DecodeData(&c); err != nil {
		return Change{}, false
	}
	r := c.Recipient
	return Change{Seq: e.Seq, Time: e.Time, JobID: e.JobID, Kind: ChangeKind(e.Type), RecipientID: r.ID,
		ObjectID: r.ObjectID, Email: r.Email, Changed: c.Changed, Reason: c.Reason}, true
}

func change(m store.Message) (Change, bool) {
	if m.Err != nil {
		return Change{}, false
	}
	return ChangeOf(m.Event)
}

// JobChanges reads the recipient changes a job made from the stream, in
// order; none (and no error) for a job that changed nothing. Only where
// the job's events are is kept in memory (State.Spans).
func (p *Projector) JobChanges(ctx context.Context, jobID string) ([]Change, error) {
	p.mu.RLock()
	sp, ok := p.state.Spans[jobID]
	p.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	subjects := make([]string, len(sp.Connectors))
	for i, c := range sp.Connectors {
		subjects[i] = events.RecipientSubject(c, ">")
	}
	out := make([]Change, 0, sp.Count)
	err := p.store.Read(ctx, subjects, sp.First, sp.Last, func(m store.Message) error {
		if c, ok := change(m); ok && c.JobID == jobID {
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the changes of job %s: %w", jobID, err)
	}
	return out, nil
}

// History finds every recipient that has or ever had email (compared
// without regard to case) and reads each one's changes from the stream:
// the recipients as they are now (archived ones included), and each
// one's changes in order, removed recipients' too.
func (p *Projector) History(ctx context.Context, email string) ([]events.Recipient, map[string][]Change, error) {
	var now []events.Recipient
	ids := map[string]bool{}
	p.mu.RLock()
	for _, m := range p.state.Recipients {
		for _, r := range m {
			if strings.EqualFold(r.Email, email) {
				now = append(now, r)
				ids[r.ID] = true
			}
		}
	}
	for _, id := range p.state.FormerEmails[strings.ToLower(email)] {
		ids[id] = true
	}
	p.mu.RUnlock()
	slices.SortFunc(now, func(a, b events.Recipient) int { return strings.Compare(a.ID, b.ID) })
	out := map[string][]Change{}
	for id := range ids {
		// A recipient's ID is "<connector>.<object ID>", the tail of
		// its subject.
		var hist []Change
		err := p.store.Read(ctx, []string{events.SubjectRoot + ".recipients." + id}, 1, 0, func(m store.Message) error {
			if c, ok := change(m); ok {
				hist = append(hist, c)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("reading the history of recipient %s: %w", id, err)
		}
		if len(hist) > 0 {
			out[id] = hist
		}
	}
	return now, out, nil
}
