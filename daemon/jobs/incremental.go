package jobs

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// planMemo is what a plan decided over a connector's whole directory,
// kept by the runner between jobs so that an incremental sync decides
// again only about the users its changes can touch (planDelta) instead
// of the whole directory. It is right once the plan's events are folded
// and for as long as nothing else changes a directory or a recipient:
// while the state's Generation for the connector is gen.
type planMemo struct {
	gen projections.Generation
	// policy is policyKey of the policy the plan applied.
	policy string
	// skipped counts the users the policy skipped, by reason; wanted is
	// how many it wants.
	skipped map[string]int
	wanted  int
	// dups is policy.Outcome.DuplicateOf: every email several users want.
	dups map[string]string
	// emails finds who has an email; planDelta updates it in place, so a
	// memo serves one plan (the runner takes it for the plan).
	emails emailIndex
	// decided is how many users the plan decided about; delta says
	// whether it was planDelta's.
	decided int
	delta   bool
}

// emailIndex finds the directory users and the recipients that have an
// email: it maps keyHash of an email key to their object IDs. With it an
// incremental plan finds who shares an email with the users it decides
// about without reading every user (hash collisions only make it decide
// about a few more).
type emailIndex map[uint64][]string

// keyHash is the FNV-1a hash of an email key.
func keyHash(k string) uint64 {
	h := uint64(14695981039346656037)
	for i := range len(k) {
		h ^= uint64(k[i])
		h *= 1099511628211
	}
	return h
}

// add files id under email (nothing for an empty one).
func (x emailIndex) add(email, id string) {
	if k := policy.EmailKey(email); k != "" {
		h := keyHash(k)
		if !slices.Contains(x[h], id) {
			x[h] = append(x[h], id)
		}
	}
}

// remove takes id off email.
func (x emailIndex) remove(email, id string) {
	if k := policy.EmailKey(email); k != "" {
		h := keyHash(k)
		if ids := slices.DeleteFunc(x[h], func(o string) bool { return o == id }); len(ids) > 0 {
			x[h] = ids
		} else {
			delete(x, h)
		}
	}
}

// indexEmails indexes a directory's users under pol and a connector's
// recipients as a plan leaves them (cur with changes made).
func indexEmails(pol policy.Policy, users map[string]events.User, cur map[string]events.Recipient, changes []change) emailIndex {
	x := emailIndex{}
	for id, u := range users {
		x.addUser(pol, u, id)
	}
	after := newRecipientsAfter(cur, changes)
	for id := range cur {
		x.addAll(after.addresses(id), id)
	}
	for _, c := range changes {
		x.addAll(after.addresses(c.id), c.id)
	}
	return x
}

// addUser files id under every address of u: the email the policy takes
// and the others, since an alias counts in duplicate detection too.
func (x emailIndex) addUser(pol policy.Policy, u events.User, id string) {
	x.add(pol.Email(u), id)
	x.addAll(u.Addresses(), id)
}

// removeUser takes id off every address of u.
func (x emailIndex) removeUser(pol policy.Policy, u events.User, id string) {
	x.remove(pol.Email(u), id)
	for _, a := range u.Addresses() {
		x.remove(a, id)
	}
}

func (x emailIndex) addAll(emails []string, id string) {
	for _, e := range emails {
		x.add(e, id)
	}
}

// recipientsAfter is a connector's recipients (cur) as a plan's changes
// leave them, read without copying cur.
type recipientsAfter struct {
	cur     map[string]events.Recipient
	changed map[string]*change
}

func newRecipientsAfter(cur map[string]events.Recipient, changes []change) recipientsAfter {
	a := recipientsAfter{cur: cur, changed: map[string]*change{}}
	for i := range changes {
		a.changed[changes[i].id] = &changes[i]
	}
	return a
}

// addresses returns a recipient's email and aliases once the changes
// are made: none when it is removed.
func (a recipientsAfter) addresses(id string) []string {
	if c, ok := a.changed[id]; ok {
		if c.typ == events.TypeRecipientRemoved {
			return nil
		}
		return append([]string{c.r.Email}, c.r.Aliases...)
	}
	r, ok := a.cur[id]
	if !ok {
		return nil
	}
	return append([]string{r.Email}, r.Aliases...)
}

// policyKey tells policies apart for a memo: every key of the import
// block but where it is written and max_removals (the runner's business).
func policyKey(p policy.Policy) string {
	var zero config.Import
	p.Range, p.MaxRemovals = zero.Range, zero.MaxRemovals
	return fmt.Sprintf("%#v", p.Import)
}

// memoable reports whether a plan of connector under pol can be memoized.
// What a memo cannot follow makes every plan a whole one:
// on_removed = "keep" (a kept recipient's fate hangs on emails anywhere
// in the directory), a rename's adoption, another connector's active
// recipients (their emails bar this connector's users), and a recipient
// cut to its bounds (planFull returns no memo then).
func memoable(s *projections.State, connector string, pol policy.Policy, ad *adoption) bool {
	if ad != nil || pol.OnRemoved == policy.OnRemovedKeep {
		return false
	}
	for c := range s.Recipients {
		if c != connector && s.SyncStatus(c).Recipients > 0 {
			return false
		}
	}
	return true
}

// planDelta plans an incremental sync from memo, the connector's last
// plan, with the events and summary planFull would give; it returns a
// nil memo (and no events) when it cannot: a complete snapshot, no or a
// stale memo, a policy other than the memo's, or anything the memo does
// not cover.
//
// The users whose decision can change are those the snapshot changed,
// the members that came to or left a group, every member of a group
// whose name or kind changed (their groups, and a group scope), and,
// since one email goes to one recipient, every user and recipient that
// shares an email with one of those, and so on. The policy decides about
// them as they were and as they are; the whole directory's counts are
// the memo's, minus the first, plus the second. Every other user keeps
// its decision, and its recipient, already brought in line by the
// memo's plan, gets no event.
func planDelta(s *projections.State, old *projections.Directory, connector, jobID string, pol policy.Policy, snap *snapshot, now time.Time, sum *events.Summary, memo *planMemo) ([]events.Event, *planMemo) {
	if snap.complete || memo == nil || memo.policy != policyKey(pol) || memo.gen != s.Generation(connector) || touchesNesting(old, snap, pol.NestedGroups) {
		return nil, nil
	}
	d := overlay{old: old, snap: snap}
	var evs []events.Event
	ev := func(typ, subject string, part int, data any) {
		evs = append(evs, events.New(typ, subject, connector, jobID, part, now, data))
	}
	groups, moved := d.directoryEvents(ev, connector)
	affected := d.affected(groups, moved)
	d.addReports(pol, affected)
	cur := s.Recipients[connector]
	d.closeOverEmails(pol, cur, affected, memo.emails)

	have := map[string]events.Recipient{}
	for id := range affected {
		if r, ok := cur[id]; ok {
			have[id] = r
		}
	}
	among := map[string]map[string]events.Recipient{connector: have}
	was := pol.DecideAmong(connector, d.sub(affected, nil), among)
	is := pol.DecideAmong(connector, d.sub(affected, moved), among)
	if !steady(pol, was, have) {
		return nil, nil
	}
	ds := *sum
	ds.DirectoryEvents = len(evs)
	changes, cuts := recipientChanges(pol, is, have, nil, &ds)
	next, ok := memo.next(was, is)
	if cuts.any() || !ok {
		return nil, nil
	}
	ds.Skipped, ds.DuplicateEmails, ds.Warnings = next.skipped, policy.ListDuplicates(next.dups), is.Warnings
	// The users not affected are wanted as before, and unchanged.
	ds.RecipientsUnchanged += memo.wanted - len(was.Wanted)
	addRecipientEvents(ev, connector, now, changes)
	*sum = ds
	d.reindex(pol, cur, affected, changes, memo.emails)
	next.emails, next.decided = memo.emails, len(affected)
	return evs, next
}

// touchesNesting reports whether the snapshot changes nesting or a group
// nested in another or holding one: its members' groups and scopes
// reach further than the users it names, and the whole plan decides.
// Nesting is rare and changes seldom; most incremental syncs touch none.
// Without nested_groups (nesting false) only a change of the nesting
// itself counts, for its directory events: a nested group's members
// count only for themselves.
func touchesNesting(old *projections.Directory, snap *snapshot, nesting bool) bool {
	if len(snap.addedGroups) > 0 || len(snap.removedGroups) > 0 {
		return true
	}
	if !nesting || len(old.Nested) == 0 {
		return false
	}
	nested := map[string]bool{}
	for g, set := range old.Nested {
		nested[g] = true
		for c := range set {
			nested[c] = true
		}
	}
	for _, m := range []map[string]map[string]struct{}{snap.added, snap.removed} {
		for g := range m {
			if nested[g] {
				return true
			}
		}
	}
	for g := range snap.groups {
		if nested[g] {
			return true
		}
	}
	return false
}

// directoryEvents adds the snapshot's directory events in planFull's
// order (changed users, removed users, changed groups with their member
// changes, removed groups) and returns the groups it may change and the
// member changes of those that remain.
func (d overlay) directoryEvents(ev func(typ, subject string, part int, data any), connector string) (map[string]bool, map[string]memberDelta) {
	var gone []string
	for _, id := range sortedKeys(d.snap.users) {
		nu, ok := d.user(id)
		ou, had := d.old.Users[id]
		switch {
		case ok && (!had || ou != nu):
			ev(events.TypeUserChanged, events.DirectorySubject(connector, "user", id), 0, nu)
		case !ok && had:
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		ev(events.TypeUserRemoved, events.DirectorySubject(connector, "user", id), 0, events.Removed{ID: id, Reason: removalReason(d.snap.users[id])})
	}
	groups := d.touchedGroups(gone)
	moved := map[string]memberDelta{}
	for _, id := range sortedKeys(groups) {
		g, ok := d.group(id)
		if !ok {
			continue
		}
		if o, had := d.old.Groups[id]; !had || !sameGroup(o, g) {
			ev(events.TypeGroupChanged, events.DirectorySubject(connector, "group", id), 0, g)
		}
		moved[id] = d.moved(id, gone)
		addMemberEvents(ev, connector, id, sortedKeys(moved[id].added), sortedKeys(moved[id].removed), nil, nil)
	}
	for _, id := range sortedKeys(groups) {
		if _, ok := d.group(id); !ok {
			if _, had := d.old.Groups[id]; had {
				ev(events.TypeGroupRemoved, events.DirectorySubject(connector, "group", id), 0, events.Removed{ID: id, Reason: groupRemovalReason(d.snap.groups[id])})
			}
		}
	}
	return groups, moved
}

// affected are the users the snapshot changed and those whose groups it
// changed: a group whose object changed (name, kind, gone, new) changes
// what all its members are shown and whether a scope holds them; one
// whose members changed, only the members that came or went.
func (d overlay) affected(groups map[string]bool, moved map[string]memberDelta) map[string]bool {
	out := map[string]bool{}
	for id := range d.snap.users {
		out[id] = true
	}
	for g := range groups {
		o, had := d.old.Groups[g]
		n, has := d.group(g)
		if had != has || (has && !sameGroup(o, n)) {
			for id := range d.old.Members[g] {
				out[id] = true
			}
		}
		for id := range moved[g].added {
			out[id] = true
		}
		for id := range moved[g].removed {
			out[id] = true
		}
	}
	return out
}

// addReports adds to affected the users whose manager the snapshot gave
// another email, added or removed: their recipients carry the manager's
// email. Only then does it read the whole directory.
func (o overlay) addReports(pol policy.Policy, affected map[string]bool) {
	changed := map[string]bool{}
	for id := range o.snap.users {
		ou, had := o.old.Users[id]
		nu, has := o.user(id)
		if had != has || pol.Email(ou) != pol.Email(nu) {
			changed[id] = true
		}
	}
	if len(changed) == 0 {
		return
	}
	managedBy := func(u events.User) bool {
		m, ok := u.Attributes.Get(connector.AttrManager)
		return ok && changed[m]
	}
	for id, u := range o.old.Users {
		if managedBy(u) {
			affected[id] = true
		}
	}
	for id := range o.snap.users {
		if u, ok := o.user(id); ok && managedBy(u) {
			affected[id] = true
		}
	}
}

// steady reports whether the recipients have (the users of) was as the
// memo's plan left them: an active recipient, unchanged by a new merge,
// for each user it wants, and none active for the others. If not, the
// memo is wrong, and the whole plan decides.
func steady(pol policy.Policy, was policy.Outcome, have map[string]events.Recipient) bool {
	for id, r := range have {
		if _, wanted := was.Wanted[id]; !wanted && r.Status == events.RecipientActive {
			return false
		}
	}
	for id, w := range was.Wanted {
		r, ok := have[id]
		if !ok || r.Status != events.RecipientActive {
			return false
		}
		if m, cut := pol.Merge(w.Recipient, &r); cut.Tags > 0 || cut.Groups > 0 || len(recipientDiff(r, m)) > 0 {
			return false
		}
	}
	return true
}

// next is the memo's counts with the affected users decided as is
// instead of as was; false if they do not add up (the memo is wrong).
func (m *planMemo) next(was, is policy.Outcome) (*planMemo, bool) {
	skipped := maps.Clone(m.skipped)
	for _, why := range was.Skipped {
		skipped[why]--
	}
	for _, why := range is.Skipped {
		skipped[why]++
	}
	for why, n := range skipped {
		if n < 0 {
			return nil, false
		}
		if n == 0 {
			delete(skipped, why)
		}
	}
	dups := maps.Clone(m.dups)
	for k := range was.DuplicateOf {
		delete(dups, k)
	}
	maps.Copy(dups, is.DuplicateOf)
	return &planMemo{policy: m.policy, skipped: skipped, wanted: m.wanted - len(was.Wanted) + len(is.Wanted), dups: dups, delta: true}, true
}

// reindex brings the email index in line with the plan: the affected
// users' and recipients' emails as the changes leave them.
func (d overlay) reindex(pol policy.Policy, cur map[string]events.Recipient, affected map[string]bool, changes []change, x emailIndex) {
	after := newRecipientsAfter(cur, changes)
	for id := range affected {
		if u, ok := d.old.Users[id]; ok {
			x.removeUser(pol, u, id)
		}
		if r, ok := cur[id]; ok {
			x.remove(r.Email, id)
			for _, a := range r.Aliases {
				x.remove(a, id)
			}
		}
		if u, ok := d.user(id); ok {
			x.addUser(pol, u, id)
		}
		x.addAll(after.addresses(id), id)
	}
}

// overlay is an incremental snapshot laid over the stored directory,
// read without copying it: what nextDirectory would make of the two.
type overlay struct {
	old  *projections.Directory
	snap *snapshot
}

// user returns a user as the snapshot leaves it.
func (o overlay) user(id string) (events.User, bool) {
	if p, ok := o.snap.users[id]; ok {
		if p.GetRemoved() != nil {
			return events.User{}, false
		}
		return applyUser(o.old.Users[id], p), true
	}
	u, ok := o.old.Users[id]
	return u, ok
}

// group returns a group as the snapshot leaves it.
func (o overlay) group(id string) (events.Group, bool) {
	if p, ok := o.snap.groups[id]; ok {
		if p.GetRemoved() != nil {
			return events.Group{}, false
		}
		return applyGroup(o.old.Groups[id], p), true
	}
	g, ok := o.old.Groups[id]
	return g, ok
}

// memberDelta is how a group's members change: added and removed.
type memberDelta struct{ added, removed map[string]struct{} }

// moved returns how the snapshot changes the members of an existing
// group g, given the users it removed (gone), without copying them: a
// group such as "All Company" holds every user. Only users of the
// directory are members.
func (o overlay) moved(g string, gone []string) memberDelta {
	m := memberDelta{added: map[string]struct{}{}, removed: map[string]struct{}{}}
	was := o.old.Members[g]
	for id := range o.snap.added[g] {
		_, had := was[id]
		_, out := o.snap.removed[g][id]
		if _, ok := o.user(id); ok && !had && !out {
			m.added[id] = struct{}{}
		}
	}
	for id := range o.snap.removed[g] {
		if _, had := was[id]; had {
			m.removed[id] = struct{}{}
		}
	}
	for _, id := range gone {
		if _, had := was[id]; had {
			m.removed[id] = struct{}{}
		}
	}
	return m
}

// has reports whether id is a member of g once d applies.
func (d memberDelta) has(was map[string]struct{}, id string) bool {
	if _, ok := d.added[id]; ok {
		return true
	}
	_, in := was[id]
	_, out := d.removed[id]
	return in && !out
}

// touchedGroups are the groups whose object or members the snapshot may
// change: those it names, and those that held a user it removed.
func (o overlay) touchedGroups(gone []string) map[string]bool {
	out := map[string]bool{}
	for _, m := range []map[string]map[string]struct{}{o.snap.added, o.snap.removed} {
		for g := range m {
			out[g] = true
		}
	}
	for g := range o.snap.groups {
		out[g] = true
	}
	if len(gone) == 0 {
		return out
	}
	for g, set := range o.old.Members {
		for _, id := range gone {
			if _, ok := set[id]; ok {
				out[g] = true
				break
			}
		}
	}
	return out
}

// closeOverEmails adds to affected every user and recipient that shares
// an email key (its directory email before or after, or its recipient's)
// with one in affected, until none is left out: the policy gives an
// email to one of those who want it, so they are decided together. The
// memo's index holds the emails of those not affected: they have not
// changed since.
func (o overlay) closeOverEmails(pol policy.Policy, cur map[string]events.Recipient, affected map[string]bool, index emailIndex) {
	seen := map[uint64]bool{}
	var queue []uint64
	add := func(email string) {
		if k := policy.EmailKey(email); k != "" {
			if h := keyHash(k); !seen[h] {
				seen[h] = true
				queue = append(queue, h)
			}
		}
	}
	keysOf := func(id string) {
		for _, u := range []func(string) (events.User, bool){func(id string) (events.User, bool) { u, ok := o.old.Users[id]; return u, ok }, o.user} {
			if u, ok := u(id); ok {
				add(pol.Email(u))
				for _, a := range u.Addresses() {
					add(a)
				}
			}
		}
		if r, ok := cur[id]; ok {
			add(r.Email)
			for _, a := range r.Aliases {
				add(a)
			}
		}
	}
	for id := range affected {
		keysOf(id)
	}
	for len(queue) > 0 {
		h := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, id := range index[h] {
			if !affected[id] {
				affected[id] = true
				keysOf(id)
			}
		}
	}
}

// sub is the directory restricted to the users of ids, as it was (moved
// nil) or as the snapshot leaves it (moved: the member changes of the
// groups it touched that remain). Groups stay whole: a scope names them.
func (o overlay) sub(ids map[string]bool, moved map[string]memberDelta) *projections.Directory {
	// Nesting as it was: planDelta runs only when the snapshot changes
	// none (touchesNesting).
	d := &projections.Directory{Users: map[string]events.User{}, Groups: o.old.Groups, Members: map[string]map[string]struct{}{}, Nested: o.old.Nested}
	user := func(id string) (events.User, bool) {
		u, ok := o.old.Users[id]
		return u, ok
	}
	d.Others = user
	if moved != nil {
		user = o.user
		d.Others = o.user
		if len(o.snap.groups) > 0 {
			d.Groups = maps.Clone(o.old.Groups)
			for id := range o.snap.groups {
				if g, ok := o.group(id); ok {
					d.Groups[id] = g
				} else {
					delete(d.Groups, id)
				}
			}
		}
	}
	for id := range ids {
		if u, ok := user(id); ok {
			d.Users[id] = u
		}
	}
	// A group moved does not name is as it was (all of them when moved
	// is nil).
	member := func(g, id string) bool {
		if m, ok := moved[g]; ok {
			return m.has(o.old.Members[g], id)
		}
		_, ok := o.old.Members[g][id]
		return ok
	}
	for g, set := range o.old.Members {
		if _, ok := d.Groups[g]; !ok && moved != nil {
			continue
		}
		// The cheaper way round: a group's members, or the users.
		if len(set) < len(ids) {
			for id := range set {
				if ids[id] && member(g, id) {
					setAdd(d.Members, g, id)
				}
			}
		} else {
			for id := range ids {
				if member(g, id) {
					setAdd(d.Members, g, id)
				}
			}
		}
	}
	for g, m := range moved {
		for id := range m.added {
			if ids[id] {
				setAdd(d.Members, g, id)
			}
		}
	}
	return d
}
