// Package policy decides who becomes a recipient: a connector's import
// policy applied to its directory. Decide is a pure function of the
// directory, the policy and the current recipients, so the same input
// always yields the same recipients, and a changed policy applies to the
// whole directory at the next sync even where the directory did not change.
package policy

import (
	"fmt"
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
)

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

// ReadGroupTypes is what the connector must read: the synced group kinds,
// or every kind when group scopes are set, since a scope may name a group
// of a kind that is not shown on recipients.
func (p Policy) ReadGroupTypes() []string {
	if len(p.IncludeGroups) > 0 || len(p.ExcludeGroups) > 0 {
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
		out.Wanted[id] = Want{
			Recipient: events.Recipient{
				ID: RecipientID(connectorName, id), Connector: connectorName, ObjectID: id,
				Email: email, DisplayName: u.DisplayName, GivenName: u.GivenName, Surname: u.Surname,
				Department: u.Department, JobTitle: u.JobTitle, Groups: groups, Tags: tags,
				Status: events.RecipientActive,
			},
			Reason: "user passes the import policy",
		}
	}
	p.oneRecipientPerEmail(connectorName, recipients, &out)
	out.Duplicates = ListDuplicates(out.DuplicateOf)
	return out
}

// Email is the email a user's recipient gets from the directory: its
// mail, or its user principal name under email_from = "upn".
func (p Policy) Email(u events.User) string {
	if p.EmailFrom == EmailFromUPN {
		return strings.TrimSpace(u.UserPrincipalName)
	}
	return strings.TrimSpace(u.Mail)
}

// RecipientID is the stable ID of a connector's recipient for a user.
func RecipientID(connectorName, objectID string) string { return connectorName + "." + objectID }

// skip returns why a user is not a recipient, or "".
func (p Policy) skip(id string, u events.User, email string, scope map[string]bool) string {
	if email == "" || !strings.Contains(email, "@") {
		return SkipNoEmail
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
	for _, x := range p.ExcludeUsers {
		if x == id || strings.EqualFold(x, email) {
			return SkipOutOfScope
		}
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
	for gid, members := range d.Members {
		g, ok := d.Groups[gid]
		if !ok || !slices.Contains(p.GroupTypes, g.KindOf()) {
			continue
		}
		for uid := range members {
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
		for uid := range d.Members[gid] {
			scope[uid] = true
		}
	}
	for gid := range excl {
		for uid := range d.Members[gid] {
			scope[uid] = false
		}
	}
	return shown, scope
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
