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
func plan(s *projections.State, connector, jobID string, spec Spec, opts *events.JobOptions, snap *snapshot, now time.Time, sum *events.Summary) []events.Event {
	old := s.Directories[connector]
	if old == nil {
		old = &projections.Directory{Users: map[string]events.User{}, Groups: map[string]events.Group{}, Members: map[string]map[string]struct{}{}}
	}
	nd := nextDirectory(old, snap)
	var evs []events.Event
	ev := func(typ, subject string, part int, data any) {
		evs = append(evs, events.New(typ, subject, connector, jobID, part, now, data))
	}

	// Only the IDs that get an event are sorted: an incremental sync
	// touches a few of a large directory.
	for _, id := range sortedWhere(nd.Users, func(id string, u events.User) bool {
		o, ok := old.Users[id]
		return !ok || o != u
	}) {
		ev(events.TypeUserChanged, events.DirectorySubject(connector, "user", id), 0, nd.Users[id])
	}
	for _, id := range sortedWhere(old.Users, func(id string, _ events.User) bool {
		_, ok := nd.Users[id]
		return !ok
	}) {
		ev(events.TypeUserRemoved, events.DirectorySubject(connector, "user", id), 0, events.Removed{ID: id, Reason: removalReason(snap.users[id])})
	}
	for _, id := range sortedKeys(nd.Groups) {
		g := nd.Groups[id]
		if o, ok := old.Groups[id]; !ok || !sameGroup(o, g) {
			ev(events.TypeGroupChanged, events.DirectorySubject(connector, "group", id), 0, g)
		}
		added := setDiff(nd.Members[id], old.Members[id])
		removed := setDiff(old.Members[id], nd.Members[id])
		for part := 0; len(added) > 0 || len(removed) > 0; part++ {
			n := min(len(added), events.MaxMembersPerEvent)
			a := added[:n]
			added = added[n:]
			m := min(len(removed), events.MaxMembersPerEvent-n)
			rm := removed[:m]
			removed = removed[m:]
			ev(events.TypeGroupMembersChanged, events.DirectorySubject(connector, "group", id), part,
				events.MembersChanged{GroupID: id, Added: a, Removed: rm})
		}
	}
	for _, id := range sortedWhere(old.Groups, func(id string, _ events.Group) bool {
		_, ok := nd.Groups[id]
		return !ok
	}) {
		ev(events.TypeGroupRemoved, events.DirectorySubject(connector, "group", id), 0, events.Removed{ID: id, Reason: groupRemovalReason(snap.groups[id])})
	}
	sum.DirectoryEvents = len(evs)

	pol := spec.Policy.With(opts)
	out := pol.Decide(connector, nd, s.Recipients[connector])
	sum.Skipped, sum.DuplicateEmails, sum.Warnings = out.SkipCounts(), out.Duplicates, out.Warnings
	have := s.Recipients[connector]
	rec := func(typ, id string, r events.Recipient, changed []string, reason string) {
		r.UpdatedAt = now.UTC()
		ev(typ, events.RecipientSubject(connector, id), 0, events.RecipientChange{Recipient: r, Changed: changed, Reason: reason})
	}
	// Decide every wanted recipient, then emit the changes in ID order.
	type change struct {
		id, typ string
		r       events.Recipient
		changed []string
		reason  string
	}
	var changes []change
	var cuts cutCounts
	merge := func(want events.Recipient, cur *events.Recipient) events.Recipient {
		r, cut := pol.Merge(want, cur)
		cuts.add(cut)
		return r
	}
	for id, w := range out.Wanted {
		cur, ok := have[id]
		switch {
		case !ok:
			changes = append(changes, change{id, events.TypeRecipientCreated, merge(w.Recipient, nil), nil, w.Reason})
			sum.RecipientsCreated++
		case cur.Status == events.RecipientArchived:
			r := merge(w.Recipient, &cur)
			changes = append(changes, change{id, events.TypeRecipientRestored, r, recipientChanges(cur, r), "user passes the import policy again"})
			sum.RecipientsRestored++
		default:
			r := merge(w.Recipient, &cur)
			changed := recipientChanges(cur, r)
			if len(changed) == 0 {
				sum.RecipientsUnchanged++
				continue
			}
			changes = append(changes, change{id, events.TypeRecipientUpdated, r, changed, w.Reason})
			sum.RecipientsUpdated++
		}
	}
	sum.Warnings = append(sum.Warnings, cuts.warnings()...)
	slices.SortFunc(changes, func(a, b change) int { return strings.Compare(a.id, b.id) })
	for _, c := range changes {
		rec(c.typ, c.id, c.r, c.changed, c.reason)
	}
	for _, id := range sortedWhere(have, func(id string, cur events.Recipient) bool {
		_, ok := out.Wanted[id]
		return !ok && cur.Status != events.RecipientArchived
	}) {
		cur := have[id]
		reason := "user is no longer in the directory"
		if why, ok := out.Skipped[id]; ok {
			reason = "user no longer passes the import policy: " + skipText(why)
		}
		switch pol.OnRemoved {
		case policy.OnRemovedKeep:
			sum.RecipientsKept++
		case policy.OnRemovedDelete:
			rec(events.TypeRecipientRemoved, id, cur, nil, reason)
			sum.RecipientsRemoved++
		default:
			r := cur
			r.Status = events.RecipientArchived
			rec(events.TypeRecipientArchived, id, r, []string{"status"}, reason)
			sum.RecipientsArchived++
		}
	}
	return evs
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
	nd := &projections.Directory{Users: map[string]events.User{}, Groups: map[string]events.Group{}, Members: map[string]map[string]struct{}{}}
	if !snap.complete {
		maps.Copy(nd.Users, old.Users)
		maps.Copy(nd.Groups, old.Groups)
		for g, set := range old.Members {
			nd.Members[g] = maps.Clone(set)
		}
	}
	for id, u := range snap.users {
		if u.GetRemoved() != nil {
			delete(nd.Users, id)
			continue
		}
		nd.Users[id] = applyUser(nd.Users[id], u)
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
			setAdd(nd.Members, g, id)
		}
	}
	for g, set := range snap.removed {
		for id := range set {
			delete(nd.Members[g], id)
		}
	}
	for g, set := range nd.Members {
		if _, ok := nd.Groups[g]; !ok {
			delete(nd.Members, g)
			continue
		}
		// A member that is no longer a user of the directory (deleted
		// between two delta rounds) is no member.
		for id := range set {
			if _, ok := nd.Users[id]; !ok {
				delete(set, id)
			}
		}
		if len(set) == 0 {
			delete(nd.Members, g)
		}
	}
	return nd
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
	if p.AccountEnabled != nil {
		u.AccountEnabled = p.GetAccountEnabled()
	}
	if p.UserType != nil {
		u.UserType = p.GetUserType()
	}
	if p.AssignedLicenseCount != nil {
		u.AssignedLicenseCount = int(p.GetAssignedLicenseCount())
	}
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
	return g
}

func sameGroup(a, b events.Group) bool {
	return a.ID == b.ID && a.DisplayName == b.DisplayName && a.Mail == b.Mail &&
		a.MailEnabled == b.MailEnabled && a.SecurityEnabled == b.SecurityEnabled &&
		slices.Equal(a.GroupTypes, b.GroupTypes)
}

// recipientChanges names the fields in which two recipients differ.
func recipientChanges(a, b events.Recipient) []string {
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
	return c
}

// skipText explains a skip reason to an admin.
func skipText(reason string) string {
	switch reason {
	case policy.SkipNoEmail:
		return "no email address"
	case policy.SkipDisabled:
		return "account disabled (include_disabled = false)"
	case policy.SkipGuest:
		return "guest account (include_guests = false)"
	case policy.SkipUnlicensed:
		return "no license assigned (exclude_unlicensed = true)"
	case policy.SkipOutOfScope:
		return "out of the import scope (groups, domains or excluded users)"
	case policy.SkipDuplicateEmail:
		return "another user has the same email address"
	}
	return reason
}

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
