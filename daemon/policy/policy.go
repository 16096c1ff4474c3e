// Package policy decides who becomes a recipient: a connector's import
// policy applied to its directory. Decide is a pure function of the
// directory, the policy and the current recipients, so the same input
// always yields the same recipients, and a changed policy applies to the
// whole directory at the next sync even where the directory did not change.
package policy

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Values of the policy's enumerations: those of the import block.
const (
	EmailFromMail    = config.EmailFromMail
	EmailFromUPN     = config.EmailFromUPN
	EmailFromPrimary = config.EmailFromPrimarySMTP
	TagModeAppend    = config.TagModeAppend
	TagModeReplace   = config.TagModeReplace
	OnRemovedArchive = config.OnRemovedArchive
	OnRemovedDelete  = config.OnRemovedDelete
	OnRemovedKeep    = config.OnRemovedKeep
)

// Reasons a directory user is not a recipient, as job summaries count them.
const (
	SkipNoEmail        = "no_email"
	SkipDisabled       = "disabled"
	SkipGuest          = "guest"
	SkipUnlicensed     = "unlicensed"
	SkipOutOfScope     = "out_of_scope"
	SkipDuplicateEmail = "duplicate_email"
	// SkipSharedMailbox, SkipRoom and SkipEquipment: a mailbox that is
	// not a person's (exclude_mailboxes); another excluded purpose is
	// counted as "mailbox_" and the purpose.
	SkipSharedMailbox = "shared_mailbox"
	SkipRoom          = "room"
	SkipEquipment     = "equipment"
)

// SkipMailbox returns the skip reason of a user whose mailbox purpose the
// policy excludes.
func SkipMailbox(purpose string) string {
	switch purpose {
	case "shared":
		return SkipSharedMailbox
	case "room":
		return SkipRoom
	case "equipment":
		return SkipEquipment
	}
	return "mailbox_" + purpose
}

// Policy is a connector's import policy: the import {} block of
// plugins.hcl (whose keys and defaults config.Import defines) with a job's
// one-time options laid over it. Scopes: groups are display names
// (case-insensitive) or object IDs; users are emails (case-insensitive) or
// object IDs; exclusions win. MaxRemovals is the runner's business.
type Policy struct {
	config.Import
}

// Default is the policy of a connector without an import block.
func Default() Policy {
	return Policy{config.DefaultImport()}
}

// With returns the policy with a job's one-time options laid over it.
func (p Policy) With(o *events.JobOptions) Policy {
	if o == nil {
		return p
	}
	if len(o.Tags) > 0 {
		p.Tags = slices.Clone(o.Tags)
	}
	if o.TagMode != "" {
		p.TagMode = o.TagMode
	}
	if o.UpdateExisting != nil {
		p.UpdateExisting = *o.UpdateExisting
	}
	if o.ExcludeUnlicensed != nil {
		p.ExcludeUnlicensed = *o.ExcludeUnlicensed
	}
	return p
}

// ReadAttributes is what the connector must read of each user: the
// preferred language and the manager, which every recipient carries, the
// sources of the attributes block and the attributes exclude_filter
// reads, each once, in a fixed order.
func (p Policy) ReadAttributes() []string {
	want := map[string]bool{connector.AttrPreferredLanguage: true, connector.AttrManager: true}
	for _, src := range p.Attributes {
		want[src] = true
	}
	for a := range p.ExcludeFilter {
		want[a] = true
	}
	var out []string
	for _, a := range connector.Attributes() {
		if want[a] {
			out = append(out, a)
		}
	}
	return out
}

// PassesUserRules reports whether u passes the rules that read only the
// user: an address, enabled, guest, licence, exclude_users,
// exclude_filter and the domains (not the group scopes, the mailbox purpose or duplicates). Only
// such users' mailboxes are worth a request to classify.
func (p Policy) PassesUserRules(id string, u events.User) bool {
	q := p
	q.ExcludeMailboxes = nil
	return q.skip(id, u, p.Email(u), nil) == ""
}

// ReadMailboxPurpose reports whether the connector must classify
// mailboxes: some purpose is excluded.
func (p Policy) ReadMailboxPurpose() bool { return len(p.ExcludeMailboxes) > 0 }

// ReadGroupTypes is what the connector must read: the synced group kinds,
// or every kind when group scopes are set, since a scope may name a group
// of a kind that is not shown on recipients.
func (p Policy) ReadGroupTypes() []string {
	if len(p.IncludeGroups) > 0 || len(p.ExcludeGroups) > 0 {
		return connector.GroupKinds()
	}
	// A group of a kind shown may hold groups of any other kind (Entra's
	// Microsoft 365 groups hold no groups): their members count too.
	if p.NestedGroups && slices.ContainsFunc(p.GroupTypes, func(k string) bool { return k != connector.GroupUnified }) {
		return connector.GroupKinds()
	}
	return slices.Clone(p.GroupTypes)
}

// Want is one recipient the policy wants, and why.
type Want struct {
	// Recipient carries the directory's fields and the policy's tags;
	// Status, UpdatedAt and tags merged with an existing recipient are
	// left to the caller (see Merge).
	Recipient events.Recipient
	Reason    string
}

// Outcome is the policy applied to a directory.
type Outcome struct {
	// Wanted maps object ID to the recipient the policy wants.
	Wanted map[string]Want
	// Skipped maps object ID to the reason a user is not a recipient.
	Skipped map[string]string
	// HeldBy names, for each user skipped as SkipDuplicateEmail, the
	// recipient that has the email: "user <object ID>" of this connector,
	// or "recipient <ID> of connector <name>".
	HeldBy map[string]string
	// Released maps the object ID of an active recipient the policy no
	// longer wants to why it must leave the active list even under
	// on_removed = "keep": its email is now another recipient's.
	Released map[string]string
	// Duplicates describes each email shared by several users, or held by
	// another connector's recipient (at most maxDuplicates entries, see
	// ListDuplicates).
	Duplicates []string
	// DuplicateOf holds every one of those descriptions by email key.
	DuplicateOf map[string]string
	// Warnings are scope entries that match nothing, and the like.
	Warnings []string
}

// SkipCounts counts Skipped by reason.
func (o Outcome) SkipCounts() map[string]int {
	m := map[string]int{}
	for _, r := range o.Skipped {
		m[r]++
	}
	return m
}

// Decide applies the policy to a connector's directory as if no other
// connector had recipients; see DecideAmong.
func (p Policy) Decide(connectorName string, d *projections.Directory, current map[string]events.Recipient) Outcome {
	return p.DecideAmong(connectorName, d, map[string]map[string]events.Recipient{connectorName: current})
}

// DecideAmong applies the policy to a connector's directory. recipients
// are every connector's recipients now (connector → object ID →
// recipient), so that no two active recipients share an email: see
// oneRecipientPerEmail for who gets an email several want.
func (p Policy) DecideAmong(connectorName string, d *projections.Directory, recipients map[string]map[string]events.Recipient) Outcome {
	// Wanted is sized for every user: most pass a policy, and growing a
	// map of 100,000 costs more than filling it.
	out := Outcome{Wanted: make(map[string]Want, len(d.Users)), Skipped: map[string]string{}, HeldBy: map[string]string{}, Released: map[string]string{},
		DuplicateOf: map[string]string{}}
	shown, scope := p.groups(d, &out)

	for id, u := range d.Users {
		email := p.Email(u)
		if reason := p.skip(id, u, email, scope); reason != "" {
			out.Skipped[id] = reason
			continue
		}
		groups := shown[id]
		sort.Strings(groups)
		if groups == nil {
			groups = []string{}
		}
		tags := slices.Clone(p.Tags)
		if tags == nil {
			tags = []string{}
		}
		r := events.Recipient{
			ID: RecipientID(connectorName, id), Connector: connectorName, ObjectID: id,
			Email: email, DisplayName: u.DisplayName, GivenName: u.GivenName, Surname: u.Surname,
			Department: u.Department, JobTitle: u.JobTitle, Groups: groups, Tags: tags,
			Status: events.RecipientActive,
		}
		p.carry(&r, u, d)
		out.Wanted[id] = Want{Recipient: r, Reason: "user passes the import policy"}
	}
	p.oneRecipientPerEmail(connectorName, d, recipients, &out)
	out.Duplicates = ListDuplicates(out.DuplicateOf)
	return out
}

// carry sets what a recipient carries besides its identity: its
// aliases, language, manager and the attributes block's fields.
func (p Policy) carry(r *events.Recipient, u events.User, d *projections.Directory) {
	for _, a := range u.Addresses() {
		if a != strings.ToLower(r.Email) && (a != strings.ToLower(u.UserPrincipalName) || isSMTP(u, a)) {
			r.Aliases = append(r.Aliases, a)
		}
	}
	sort.Strings(r.Aliases)
	r.Language, _ = u.Attributes.Get(connector.AttrPreferredLanguage)
	if m, ok := u.Attributes.Get(connector.AttrManager); ok && m != "" {
		r.ManagerID = m
		if mu, ok := d.User(m); ok {
			r.ManagerEmail = p.Email(mu)
		}
	}
	for field, src := range p.Attributes {
		if v, ok := u.Attributes.Get(src); ok && v != "" {
			if r.Attributes == nil {
				r.Attributes = map[string]string{}
			}
			r.Attributes[field] = v
		}
	}
}

// isSMTP reports whether address a (lower case) is one of u's SMTP proxy
// addresses: a UPN that is no mail address is not an alias.
func isSMTP(u events.User, a string) bool {
	for x := range u.SMTPAddresses() {
		if strings.EqualFold(x, a) {
			return true
		}
	}
	return strings.EqualFold(u.Mail, a)
}

// Email is the email a user's recipient gets from the directory: its
// mail, its user principal name under email_from = "userPrincipalName",
// or its primary SMTP address under email_from = "primary_smtp".
func (p Policy) Email(u events.User) string {
	switch p.EmailFrom {
	case EmailFromUPN:
		return strings.TrimSpace(u.UserPrincipalName)
	case EmailFromPrimary:
		return u.PrimarySMTP()
	}
	return strings.TrimSpace(u.Mail)
}

// guessShared is the fallback when the connector could not say what u's
// mailbox is for (events.MailboxUnknown: Graph without
// MailboxSettings.Read; a connector that cannot classify at all leaves
// the purpose empty, and nothing is guessed): Exchange creates
// shared and resource mailboxes as accounts with sign-in blocked, so a
// disabled account with a mailbox is taken for a shared one. It matters
// only under include_disabled, as a disabled account is skipped anyway
// otherwise, and explain says it is a guess.
func (p Policy) guessShared(u events.User) bool {
	return u.MailboxPurpose == events.MailboxUnknown && !u.AccountEnabled && p.IncludeDisabled && strings.TrimSpace(u.Mail) != "" &&
		slices.Contains(p.ExcludeMailboxes, "shared")
}

// RecipientID is the stable ID of a connector's recipient for a user.
func RecipientID(connectorName, objectID string) string { return connectorName + "." + objectID }

// skip returns why a user is not a recipient, or "".
func (p Policy) skip(id string, u events.User, email string, scope map[string]bool) string {
	if email == "" || !strings.Contains(email, "@") {
		return SkipNoEmail
	}
	// Before disabled: Exchange creates shared and resource mailboxes
	// with sign-in blocked, and the admin should see them counted as
	// what they are.
	if u.MailboxPurpose != "" && slices.Contains(p.ExcludeMailboxes, u.MailboxPurpose) {
		return SkipMailbox(u.MailboxPurpose)
	}
	if p.guessShared(u) {
		return SkipSharedMailbox
	}
	if !u.AccountEnabled && !p.IncludeDisabled {
		return SkipDisabled
	}
	if u.IsGuest() && !p.IncludeGuests {
		return SkipGuest
	}
	if p.ExcludeUnlicensed && u.IsUnlicensed() {
		return SkipUnlicensed
	}
	lower := strings.ToLower(email)
	if len(p.ExcludeUsers) > 0 {
		// Any address of the user: an admin names the one they know,
		// which may be an alias.
		addrs := append(u.Addresses(), lower)
		for _, x := range p.ExcludeUsers {
			if x == id || slices.Contains(addrs, strings.ToLower(x)) {
				return SkipOutOfScope
			}
		}
	}
	if _, _, _, excluded := p.excludedBy(u); excluded {
		return SkipOutOfScope
	}
	domain := lower[strings.LastIndex(lower, "@")+1:]
	if slices.Contains(p.ExcludeDomains, domain) {
		return SkipOutOfScope
	}
	if len(p.IncludeDomains) > 0 && !slices.Contains(p.IncludeDomains, domain) {
		return SkipOutOfScope
	}
	if scope != nil && !scope[id] {
		return SkipOutOfScope
	}
	return ""
}

// groups returns, per user, the display names of the synced groups it is
// a member of, and the group scope: nil when no group scope is set, else
// true for users in an included group (or every user when only exclusions
// are set) and false for users in an excluded group.
func (p Policy) groups(d *projections.Directory, out *Outcome) (map[string][]string, map[string]bool) {
	shown := map[string][]string{}
	members := p.membersOf(d)
	for gid, g := range d.Groups {
		if !slices.Contains(p.GroupTypes, g.KindOf()) {
			continue
		}
		for uid := range members(gid) {
			shown[uid] = append(shown[uid], g.DisplayName)
		}
	}
	if len(p.IncludeGroups) == 0 && len(p.ExcludeGroups) == 0 {
		return shown, nil
	}
	match := func(list []string, what string) map[string]bool {
		ids := map[string]bool{}
		for _, x := range list {
			found := false
			for gid, g := range d.Groups {
				if gid == x || strings.EqualFold(g.DisplayName, x) {
					ids[gid], found = true, true
				}
			}
			if !found {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s entry %q names no group in the directory", what, x))
			}
		}
		return ids
	}
	incl, excl := match(p.IncludeGroups, "include_groups"), match(p.ExcludeGroups, "exclude_groups")
	sort.Strings(out.Warnings)
	scope := map[string]bool{}
	if len(p.IncludeGroups) == 0 {
		for uid := range d.Users {
			scope[uid] = true
		}
	}
	for gid := range incl {
		for uid := range members(gid) {
			scope[uid] = true
		}
	}
	for gid := range excl {
		for uid := range members(gid) {
			scope[uid] = false
		}
	}
	return shown, scope
}

// membersOf returns what gives a group's user members under the policy:
// its direct members, and with nested_groups those of every group nested
// in it at any depth, each once; a cycle of nesting ends where it
// started.
func (p Policy) membersOf(d *projections.Directory) func(gid string) map[string]struct{} {
	return func(gid string) map[string]struct{} {
		if !p.NestedGroups || len(d.Nested[gid]) == 0 {
			return d.Members[gid]
		}
		out := maps.Clone(d.Members[gid])
		if out == nil {
			out = map[string]struct{}{}
		}
		seen := map[string]bool{gid: true}
		queue := slices.Collect(maps.Keys(d.Nested[gid]))
		for len(queue) > 0 {
			g := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if seen[g] {
				continue
			}
			seen[g] = true
			maps.Copy(out, d.Members[g])
			for c := range d.Nested[g] {
				if !seen[c] {
					queue = append(queue, c)
				}
			}
		}
		return out
	}
}

// Cut counts what Merge left off a recipient to keep it within the
// bounds of a recipient (events.MaxRecipientTags,
// events.MaxRecipientGroups), so that its event always fits in a stream
// message. The runner counts them in the job's summary.
type Cut struct {
	// Tags is how many tags the recipient did not get: those past
	// MaxRecipientTags, the newest (the job's own) first, since the tags
	// a recipient holds already are what earlier campaigns rely on.
	Tags int
	// Groups is how many of the recipient's synced groups are not shown
	// on it: those past MaxRecipientGroups in display-name order.
	Groups int
}

// Merge decides what a recipient becomes when the policy wants it: tags
// appended or replaced, fields kept when !UpdateExisting, and the whole
// held within a recipient's bounds (what it left off is in Cut). cur is
// nil for a new recipient.
func (p Policy) Merge(want events.Recipient, cur *events.Recipient) (events.Recipient, Cut) {
	var r events.Recipient
	switch {
	case cur == nil:
		r = want
	case p.UpdateExisting:
		r = want
		if p.TagMode == TagModeAppend {
			r.Tags = appendTags(cur.Tags, want.Tags)
		}
		r.Status = events.RecipientActive
	default:
		r = *cur
		r.Groups = slices.Clone(cur.Groups)
		r.Tags = slices.Clone(cur.Tags)
		r.Status = events.RecipientActive
	}
	var cut Cut
	r.Tags, cut.Tags = bounded(r.Tags, events.MaxRecipientTags)
	r.Groups, cut.Groups = bounded(r.Groups, events.MaxRecipientGroups)
	return r, cut
}

// appendTags returns have followed by the tags of add it does not hold,
// in order; Merge then keeps the first MaxRecipientTags.
func appendTags(have, add []string) []string {
	out := slices.Clone(have)
	if out == nil {
		out = []string{}
	}
	for _, t := range add {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// bounded returns the first max items of list and how many it left off.
func bounded(list []string, max int) ([]string, int) {
	if len(list) <= max {
		return list, 0
	}
	return slices.Clone(list[:max]), len(list) - max
}
