package jobs

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// plan compares what a job retrieved with the stored state and returns
// the events that bring the state in line: directory facts first, then
// recipient decisions, each sorted by object ID so the same input always
// yields the same events with the same IDs.
//
// memo is what the connector's last plan decided, if the runner kept it:
// an incremental sync then decides only about the users its changes can
// touch (planDelta), with the same events and summary as a plan over the
// whole directory. plan returns the memo to keep once its events are
// folded, or nil.
func plan(s *projections.State, connector, jobID string, spec Spec, opts *events.JobOptions, snap *snapshot, now time.Time, sum *events.Summary, memo *planMemo) ([]events.Event, *planMemo) {
	old := s.Directories[connector]
	if old == nil {
		old = &projections.Directory{Users: map[string]events.User{}, Groups: map[string]events.Group{}, Members: map[string]map[string]struct{}{}}
	}
	snap.replaceMembers(old)
	pol := spec.Policy.With(opts)
	// A connector renamed with renamed_from takes over the old one's
	// active recipients (rename.go): the policy decides among them as
	// its own, and the old ones are archived before any of its events.
	ad := adopt(s, connector, spec.RenamedFrom)
	keep := memoable(s, connector, pol, ad)
	var evs []events.Event
	var next *planMemo
	if keep {
		evs, next = planDelta(s, old, connector, jobID, pol, snap, now, sum, memo)
	}
	if next == nil {
		evs, next = planFull(s, old, connector, jobID, pol, ad, keep, snap, now, sum)
	}
	if next == nil {
		return evs, nil
	}
	// The memo holds once these events are folded, and as long as no
	// other event changes a directory or a recipient.
	g := s.Generation(connector)
	n := uint64(len(evs))
	next.gen = projections.Generation{Instance: g.Instance, Own: g.Own + n, All: g.All + n}
	return evs, next
}

// planFull is plan over the whole directory; it returns a memo (without
// its generation) only when asked to keep one (see memoable).
func planFull(s *projections.State, old *projections.Directory, connector, jobID string, pol policy.Policy, ad *adoption, keep bool, snap *snapshot, now time.Time, sum *events.Summary) ([]events.Event, *planMemo) {
	nd := nextDirectory(old, snap)
	// Only the IDs that get an event are sorted: an incremental sync
	// touches a few of a large directory.
	changed := sortedWhere(nd.Users, func(id string, u events.User) bool {
		o, ok := old.Users[id]
		return !ok || o != u
	})
	removed := sortedWhere(old.Users, func(id string, _ events.User) bool {
		_, ok := nd.Users[id]
		return !ok
	})
	// The events of a first sync number hundreds of thousands: the list
	// is sized for the users' and grown once more for the recipients'
	// (below) rather than doubled all the way.
	evs := make([]events.Event, 0, len(changed)+len(removed)+2*len(nd.Groups))
	ev := func(typ, subject string, part int, data any) {
		evs = append(evs, events.New(typ, subject, connector, jobID, part, now, data))
	}
	for _, id := range changed {
		ev(events.TypeUserChanged, events.DirectorySubject(connector, "user", id), 0, nd.Users[id])
	}
	for _, id := range removed {
		ev(events.TypeUserRemoved, events.DirectorySubject(connector, "user", id), 0, events.Removed{ID: id, Reason: removalReason(snap.users[id])})
	}
	for _, id := range sortedKeys(nd.Groups) {
		g := nd.Groups[id]
		if o, ok := old.Groups[id]; !ok || !sameGroup(o, g) {
			ev(events.TypeGroupChanged, events.DirectorySubject(connector, "group", id), 0, g)
		}
		addMemberEvents(ev, connector, id, setDiff(nd.Members[id], old.Members[id]), setDiff(old.Members[id], nd.Members[id]),
			setDiff(nd.Nested[id], old.Nested[id]), setDiff(old.Nested[id], nd.Nested[id]))
	}
	for _, id := range sortedWhere(old.Groups, func(id string, _ events.Group) bool {
		_, ok := nd.Groups[id]
		return !ok
	}) {
		ev(events.TypeGroupRemoved, events.DirectorySubject(connector, "group", id), 0, events.Removed{ID: id, Reason: groupRemovalReason(snap.groups[id])})
	}
	sum.DirectoryEvents = len(evs)

	recipients := s.Recipients
	if ad != nil {
		recipients = ad.recipients
		evs = append(evs, ad.events(connector, jobID, now)...)
	}
	out := pol.DecideAmong(connector, nd, recipients)
	sum.Skipped, sum.DuplicateEmails, sum.Warnings = out.SkipCounts(), out.Duplicates, out.Warnings
	changes, cuts := recipientChanges(pol, out, s.Recipients[connector], ad, sum)
	sum.Warnings = append(sum.Warnings, cuts.warnings()...)
	if ad != nil {
		adopted := 0
		for _, c := range changes {
			if _, ok := ad.adopted[c.id]; ok && c.typ == events.TypeRecipientCreated {
				adopted++
			}
		}
		sum.Warnings = append(sum.Warnings, ad.note(connector, adopted))
	}
	evs = slices.Grow(evs, len(changes))
	addRecipientEvents(ev, connector, now, changes)
	if !keep || cuts.any() {
		return evs, nil
	}
	// The memo's counts are never changed in place (planMemo.next copies
	// them), so it may share the summary's.
	return evs, &planMemo{policy: policyKey(pol), skipped: sum.Skipped, wanted: len(out.Wanted), dups: out.DuplicateOf,
		emails: indexEmails(pol, nd.Users, s.Recipients[connector], changes), decided: len(nd.Users)}
}

// addMemberEvents adds the events that add and remove members (sorted)
// of a group, users then nested groups, at most
// events.MaxMembersPerEvent IDs each.
func addMemberEvents(ev func(typ, subject string, part int, data any), connector, id string, added, removed, addedGroups, removedGroups []string) {
	// One sequence of parts: an event's ID derives from its part.
	part := 0
	emit := func(added, removed []string, data func(a, rm []string) events.MembersChanged) {
		for ; len(added) > 0 || len(removed) > 0; part++ {
			n := min(len(added), events.MaxMembersPerEvent)
			m := min(len(removed), events.MaxMembersPerEvent-n)
			ev(events.TypeGroupMembersChanged, events.DirectorySubject(connector, "group", id), part, data(added[:n], removed[:m]))
			added, removed = added[n:], removed[m:]
		}
	}
	emit(added, removed, func(a, rm []string) events.MembersChanged {
		return events.MembersChanged{GroupID: id, Added: a, Removed: rm}
	})
	emit(addedGroups, removedGroups, func(a, rm []string) events.MembersChanged {
		return events.MembersChanged{GroupID: id, AddedGroups: a, RemovedGroups: rm}
	})
}

// addRecipientEvents adds the events of a job's recipient changes.
func addRecipientEvents(ev func(typ, subject string, part int, data any), connector string, now time.Time, changes []change) {
	for _, c := range changes {
		r := c.r
		r.UpdatedAt = now.UTC()
		ev(c.typ, events.RecipientSubject(connector, c.id), 0, events.RecipientChange{Recipient: r, Changed: c.changed, Reason: c.reason})
	}
}

// change is one recipient event a job makes.
type change struct {
	id, typ string
	r       events.Recipient
	changed []string
	reason  string
	// key and oldKey are the EmailKey of the recipient's email after the
	// change, and before it when the recipient was active ("" when not).
	key, oldKey string
}

// recipientChanges decides what becomes of each of a connector's
// recipients (have) under the policy's outcome, counts it in sum and
// returns the changes in the order they are stored, with what Merge left
// off the recipients it wants: first the recipients
// that leave the active list, then the others in an order that frees an
// email before another recipient takes it (see orderChanges), so that a
// reader of the stream never sees two active recipients with one email
// but in a swap.
//
// ad, if not nil, holds the recipients of a connector this one was
// renamed from: a wanted user with none here but one there is created
// from that one (policy.Merge as for an existing recipient).
func recipientChanges(pol policy.Policy, out policy.Outcome, have map[string]events.Recipient, ad *adoption, sum *events.Summary) ([]change, cutCounts) {
	// Sized for the wanted users without a recipient yet: exact for a
	// first sync (growing a slice of 100,000 changes by doubling costs a
	// whole plan's worth of copying), small for a sync that changes little.
	changes := make([]change, 0, max(len(out.Wanted)-len(have), 0)+16)
	var cuts cutCounts
	merge := func(want events.Recipient, cur *events.Recipient) events.Recipient {
		r, cut := pol.Merge(want, cur)
		cuts.add(cut)
		return r
	}
	for id, w := range out.Wanted {
		cur, ok := have[id]
		var c change
		prev, adopted := ad.of(id)
		switch {
		case !ok && adopted:
			c = change{id: id, typ: events.TypeRecipientCreated, r: merge(w.Recipient, &prev), reason: ad.reason(id, w.Reason)}
			sum.RecipientsCreated++
		case !ok:
			c = change{id: id, typ: events.TypeRecipientCreated, r: merge(w.Recipient, nil), reason: w.Reason}
			sum.RecipientsCreated++
		case cur.Status == events.RecipientArchived:
			r := merge(w.Recipient, &cur)
			c = change{id: id, typ: events.TypeRecipientRestored, r: r, changed: recipientDiff(cur, r), reason: "user passes the import policy again"}
			sum.RecipientsRestored++
		default:
			r := merge(w.Recipient, &cur)
			changed := recipientDiff(cur, r)
			if len(changed) == 0 {
				sum.RecipientsUnchanged++
				continue
			}
			c = change{id: id, typ: events.TypeRecipientUpdated, r: r, changed: changed, reason: w.Reason, oldKey: policy.EmailKey(cur.Email)}
			sum.RecipientsUpdated++
		}
		c.key = policy.EmailKey(c.r.Email)
		changes = append(changes, c)
	}

	// Recipients the policy no longer wants leave the active list by
	// on_removed, but for those whose email is now another's, which keep
	// cannot keep (policy.Outcome.Released): they are archived.
	var leaving []change
	holders := make(map[string]string, len(have)+len(changes)) // email key → object ID, of the recipients active after the leavers left
	for id, cur := range have {
		if _, ok := out.Wanted[id]; ok && cur.Status != events.RecipientArchived {
			holders[policy.EmailKey(cur.Email)] = id
		}
	}
	for _, id := range sortedWhere(have, func(id string, cur events.Recipient) bool {
		_, ok := out.Wanted[id]
		return !ok && cur.Status != events.RecipientArchived
	}) {
		cur := have[id]
		reason := "user is no longer in the directory"
		if why, ok := out.Skipped[id]; ok {
			reason = "user no longer passes the import policy: " + skipText(why)
			if by := out.HeldBy[id]; by != "" {
				reason += "; " + by + " is the recipient"
			}
		}
		onRemoved := pol.OnRemoved
		if why, ok := out.Released[id]; ok {
			onRemoved = policy.OnRemovedArchive
			reason += "; archived although on_removed is keep: " + why
		}
		switch onRemoved {
		case policy.OnRemovedKeep:
			holders[policy.EmailKey(cur.Email)] = id
			sum.RecipientsKept++
		case policy.OnRemovedDelete:
			leaving = append(leaving, change{id: id, typ: events.TypeRecipientRemoved, r: cur, reason: reason})
			sum.RecipientsRemoved++
		default:
			r := cur
			r.Status = events.RecipientArchived
			leaving = append(leaving, change{id: id, typ: events.TypeRecipientArchived, r: r, changed: []string{"status"}, reason: reason})
			sum.RecipientsArchived++
		}
	}
	return orderChanges(leaving, changes, holders), cuts
}

// orderChanges orders the changes of active recipients so that an email
// is given up before it is taken: a recipient whose email another takes
// over (its user renamed, or the first half of a chain of renames)
// changes first. Changes that wait for nothing come in object ID order.
// A cycle (two users swapping mails) cannot be ordered so: it is broken
// at its lowest object ID, and a reader of the stream sees one email
// twice for the length of one event; the job's end state has no
// duplicate either way. holders maps the email key of every recipient
// active once the job's leavers left to its object ID; it is used up.
// The ordered changes follow first (the leavers) in the slice returned.
func orderChanges(first, changes []change, holders map[string]string) []change {
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.id, b.id) })
	out := make([]change, 0, len(first)+len(changes))
	out = append(out, first...)
	done := make([]bool, len(changes))
	waiting := map[string][]int{} // email key → changes waiting for it
	free := func(c change) bool {
		h, ok := holders[c.key]
		return !ok || h == c.id
	}
	// emit stores change i, and then every change that waited for the
	// email it gave up.
	emit := func(i int, force bool) {
		type step struct {
			i     int
			force bool
		}
		stack := []step{{i, force}}
		for len(stack) > 0 {
			s := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			c := changes[s.i]
			if done[s.i] {
				continue
			}
			if !s.force && !free(c) {
				waiting[c.key] = append(waiting[c.key], s.i)
				continue
			}
			done[s.i] = true
			out = append(out, c)
			if c.oldKey != "" && c.oldKey != c.key && holders[c.oldKey] == c.id {
				delete(holders, c.oldKey)
				for _, j := range slices.Backward(waiting[c.oldKey]) {
					stack = append(stack, step{j, false})
				}
				delete(waiting, c.oldKey)
			}
			holders[c.key] = c.id
		}
	}
	for i := range changes {
		emit(i, false)
	}
	for i := range changes {
		emit(i, true)
	}
	return out
}

// cutCounts adds up what policy.Merge left off recipients, for the
// job's summary.
type cutCounts struct {
	tagRecipients, tags     int
	groupRecipients, groups int
}

func (c *cutCounts) add(cut policy.Cut) {
	if cut.Tags > 0 {
		c.tagRecipients++
		c.tags += cut.Tags
	}
	if cut.Groups > 0 {
		c.groupRecipients++
		c.groups += cut.Groups
	}
}

// any reports whether anything was left off.
func (c cutCounts) any() bool { return c.tags > 0 || c.groups > 0 }

// warnings says what was left off and what to do about it.
func (c cutCounts) warnings() []string {
	var out []string
	if c.tags > 0 {
		out = append(out, fmt.Sprintf("%d recipients reached the %d tags a recipient keeps: %d tags were not added to them; "+
			"a sync with tag_mode = \"replace\" (dirsync sync --tag-mode replace) sets their tags afresh",
			c.tagRecipients, events.MaxRecipientTags, c.tags))
	}
	if c.groups > 0 {
		out = append(out, fmt.Sprintf("%d recipients are members of more than %d synced groups: only the first %d by name are shown on them (%d left off); "+
			"narrow group_types to show fewer", c.groupRecipients, events.MaxRecipientGroups, events.MaxRecipientGroups, c.groups))
	}
	return out
}

// nextDirectory applies a snapshot to the stored directory: a complete
// snapshot replaces it, an incremental one is merged into it.
func nextDirectory(old *projections.Directory, snap *snapshot) *projections.Directory {
	// Sized up front: growing maps of 100,000 users costs a first sync
	// more than filling them.
	nu, ng := len(snap.users), len(snap.groups)
	if !snap.complete {
		nu, ng = nu+len(old.Users), ng+len(old.Groups)
	}
	nd := &projections.Directory{Users: make(map[string]events.User, nu), Groups: make(map[string]events.Group, ng),
		Members: make(map[string]map[string]struct{}, ng), Nested: map[string]map[string]struct{}{}}
	if !snap.complete {
		maps.Copy(nd.Users, old.Users)
		maps.Copy(nd.Groups, old.Groups)
		for g, set := range old.Members {
			nd.Members[g] = maps.Clone(set)
		}
		for g, set := range old.Nested {
			nd.Nested[g] = maps.Clone(set)
		}
	}
	for id, u := range snap.users {
		if u.GetRemoved() != nil {
			delete(nd.Users, id)
			continue
		}
		base := nd.Users[id]
		if snap.complete && u.MailboxPurpose == nil {
			// A mailbox's purpose is asked of the directory only when a
			// user is new or changes (classifyMailboxes): a full read
			// keeps what it said before.
			base.MailboxPurpose = old.Users[id].MailboxPurpose
		}
		nd.Users[id] = applyUser(base, u)
	}
	for id, g := range snap.groups {
		if g.GetRemoved() != nil {
			delete(nd.Groups, id)
			continue
		}
		nd.Groups[id] = applyGroup(nd.Groups[id], g)
	}
	for g, set := range snap.added {
		for id := range set {
			// The user's own copy of the ID: each membership the plugin
			// sent is a string of its own.
			setAdd(nd.Members, g, nd.UserID(id))
		}
	}
	removeFrom(nd.Members, snap.removed)
	for g, set := range snap.addedGroups {
		for id := range set {
			setAdd(nd.Nested, g, id)
		}
	}
	removeFrom(nd.Nested, snap.removedGroups)
	// Nesting is kept between groups of the directory: a group gone, or
	// one not read (a kind not asked for), nests nothing and is nested
	// in nothing, as the fold of a group's removal leaves it.
	prune(nd.Nested, nd.Groups, func(id string) bool { _, ok := nd.Groups[id]; return ok })
	// A member that is no longer a user of the directory (deleted between
	// two delta rounds) is no member.
	prune(nd.Members, nd.Groups, func(id string) bool { _, ok := nd.Users[id]; return ok })
	return nd
}

// removeFrom takes the IDs of removed out of sets, by group.
func removeFrom(sets, removed map[string]map[string]struct{}) {
	for g, set := range removed {
		for id := range set {
			delete(sets[g], id)
		}
	}
}

// prune drops the sets of groups the directory lacks, the IDs that fail
// keep, and the sets left empty.
func prune(sets map[string]map[string]struct{}, groups map[string]events.Group, keep func(id string) bool) {
	for g, set := range sets {
		if _, ok := groups[g]; !ok {
			delete(sets, g)
			continue
		}
		for id := range set {
			if !keep(id) {
				delete(set, id)
			}
		}
		if len(set) == 0 {
			delete(sets, g)
		}
	}
}

func applyUser(u events.User, p *connectorv1.User) events.User {
	u.ID = p.GetId()
	if p.UserPrincipalName != nil {
		u.UserPrincipalName = p.GetUserPrincipalName()
	}
	if p.Mail != nil {
		u.Mail = p.GetMail()
	}
	if p.DisplayName != nil {
		u.DisplayName = p.GetDisplayName()
	}
	if p.GivenName != nil {
		u.GivenName = p.GetGivenName()
	}
	if p.Surname != nil {
		u.Surname = p.GetSurname()
	}
	if p.Department != nil {
		u.Department = p.GetDepartment()
	}
	if p.JobTitle != nil {
		u.JobTitle = p.GetJobTitle()
	}
	// enabled is account_enabled under its neutral name; a plugin built
	// before it sends account_enabled only.
	if p.Enabled != nil {
		u.AccountEnabled = p.GetEnabled()
	} else if p.AccountEnabled != nil {
		u.AccountEnabled = p.GetAccountEnabled()
	}
	if p.UserType != nil {
		u.UserType = p.GetUserType()
	}
	if p.AssignedLicenseCount != nil {
		u.AssignedLicenseCount = int(p.GetAssignedLicenseCount())
	}
	if p.Guest != nil {
		u.Guest = p.GetGuest()
	}
	// A plugin built before licensed sends the licence count only.
	if p.Licensed != nil {
		u.Licensed = events.OptBoolOf(p.GetLicensed())
	} else if p.AssignedLicenseCount != nil {
		u.Licensed = events.OptBoolOf(p.GetAssignedLicenseCount() > 0)
	}
	if p.GetProxyAddressesKnown() {
		u.ProxyAddresses = events.ListOf(p.GetProxyAddresses()...)
	}
	if p.MailboxPurpose != nil {
		u.MailboxPurpose = p.GetMailboxPurpose()
	}
	// Attributes a change does not name keep their values.
	u.Attributes = u.Attributes.With(p.GetAttributes())
	return u
}

func applyGroup(g events.Group, p *connectorv1.Group) events.Group {
	g.ID = p.GetId()
	if p.DisplayName != nil {
		g.DisplayName = p.GetDisplayName()
	}
	if p.Mail != nil {
		g.Mail = p.GetMail()
	}
	if p.GetGroupTypesKnown() || g.GroupTypes == nil {
		g.GroupTypes = slices.Clone(p.GetGroupTypes())
		if g.GroupTypes == nil {
			g.GroupTypes = []string{}
		}
	}
	if p.MailEnabled != nil {
		g.MailEnabled = p.GetMailEnabled()
	}
	if p.SecurityEnabled != nil {
		g.SecurityEnabled = p.GetSecurityEnabled()
	}
	if p.Kind != nil {
		g.Kind = p.GetKind()
	}
	return g
}

func sameGroup(a, b events.Group) bool {
	return a.ID == b.ID && a.DisplayName == b.DisplayName && a.Mail == b.Mail &&
		a.MailEnabled == b.MailEnabled && a.SecurityEnabled == b.SecurityEnabled &&
		a.Kind == b.Kind && slices.Equal(a.GroupTypes, b.GroupTypes)
}

// recipientDiff names the fields in which two recipients differ.
func recipientDiff(a, b events.Recipient) []string {
	var c []string
	add := func(name string, same bool) {
		if !same {
			c = append(c, name)
		}
	}
	add("email", a.Email == b.Email)
	add("displayName", a.DisplayName == b.DisplayName)
	add("givenName", a.GivenName == b.GivenName)
	add("surname", a.Surname == b.Surname)
	add("department", a.Department == b.Department)
	add("jobTitle", a.JobTitle == b.JobTitle)
	add("groups", slices.Equal(a.Groups, b.Groups))
	add("tags", slices.Equal(a.Tags, b.Tags))
	add("status", a.Status == b.Status)
	add("aliases", slices.Equal(a.Aliases, b.Aliases))
	add("language", a.Language == b.Language)
	add("managerId", a.ManagerID == b.ManagerID)
	add("managerEmail", a.ManagerEmail == b.ManagerEmail)
	add("attributes", maps.Equal(a.Attributes, b.Attributes))
	return c
}

// skipText explains a skip reason to an admin.
func skipText(reason string) string { return policy.DescribeSkip(reason) }

func removalReason(u *connectorv1.User) string {
	if u != nil && u.GetRemoved() != nil {
		return u.GetRemoved().GetReason()
	}
	return "missing"
}

func groupRemovalReason(g *connectorv1.Group) string {
	if g != nil && g.GetRemoved() != nil {
		return g.GetRemoved().GetReason()
	}
	return "missing"
}

// setDiff returns the members of a not in b, sorted.
func setDiff(a, b map[string]struct{}) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// sortedWhere returns the keys of m whose entry passes keep, sorted.
func sortedWhere[V any](m map[string]V, keep func(string, V) bool) []string {
	var out []string
	for k, v := range m {
		if keep(k, v) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
