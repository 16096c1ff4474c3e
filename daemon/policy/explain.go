package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Verdicts of a rule in an Explanation.
const (
	VerdictPass = "pass"
	VerdictFail = "fail"
	// VerdictNone: the rule is not set, or not reached.
	VerdictNone = "n/a"
)

// Verdict is one rule of the import policy applied to one user.
type Verdict struct {
	// Rule names it as the import block does where it can: email,
	// mailbox, enabled, guest, licence, exclude_users, exclude_filter,
	// domains, include_groups, exclude_groups, duplicate. exclude_filter
	// is listed only when the policy sets one, so explanations of
	// policies without it read as they did before it.
	Rule    string `json:"rule"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
}

// Explanation is why a directory user is, or is not, a recipient: every
// rule of the policy with its verdict, and the decision, which is the
// policy's own (Decide), not a second reading of the rules.
type Explanation struct {
	Connector   string    `json:"connector"`
	ObjectID    string    `json:"objectId"`
	DisplayName string    `json:"displayName,omitempty"`
	Rules       []Verdict `json:"rules"`
	// Included is whether the policy wants the user as a recipient;
	// Reason is the skip reason when it does not.
	Included bool   `json:"included"`
	Reason   string `json:"reason,omitempty"`
	Decision string `json:"decision"`
	// Recipient is the user's recipient as stored, if it has one.
	Recipient *events.Recipient `json:"recipient,omitempty"`
}

// DescribeSkip says a skip reason to an admin.
func DescribeSkip(reason string) string {
	switch reason {
	case SkipNoEmail:
		return "no email address"
	case SkipDisabled:
		return "account disabled (include_disabled = false)"
	case SkipGuest:
		return "guest account (include_guests = false)"
	case SkipUnlicensed:
		return "no license assigned (exclude_unlicensed = true)"
	case SkipOutOfScope:
		return "out of the import scope (groups, domains or excluded users)"
	case SkipDuplicateEmail:
		return "another user has the same email address"
	case SkipSharedMailbox:
		return "shared mailbox (exclude_mailboxes)"
	case SkipRoom:
		return "room mailbox (exclude_mailboxes)"
	case SkipEquipment:
		return "equipment mailbox (exclude_mailboxes)"
	}
	if p, ok := strings.CutPrefix(reason, "mailbox_"); ok {
		return p + " mailbox (exclude_mailboxes)"
	}
	return reason
}

// Explain says why the user id of a connector's directory d is or is
// not a recipient. recipients are every connector's, as for
// DecideAmong. The decision is Decide's over the users that share an
// address with id (the only ones that can change it), so that an
// explanation costs a scan of the directory, not a whole plan.
func (p Policy) Explain(connectorName string, d *projections.Directory, recipients map[string]map[string]events.Recipient, id string) (Explanation, bool) {
	u, ok := d.Users[id]
	if !ok {
		return Explanation{}, false
	}
	ex := Explanation{Connector: connectorName, ObjectID: id, DisplayName: u.DisplayName}
	email := p.Email(u)
	rule := func(name, verdict, format string, args ...any) {
		ex.Rules = append(ex.Rules, Verdict{Rule: name, Verdict: verdict, Detail: fmt.Sprintf(format, args...)})
	}

	from := map[string]string{EmailFromMail: "mail", EmailFromUPN: "userPrincipalName", EmailFromPrimary: "the primary SMTP address"}[p.EmailFrom]
	if email == "" || !strings.Contains(email, "@") {
		rule("email", VerdictFail, "no address in %s (email_from = %q)", from, p.EmailFrom)
	} else {
		rule("email", VerdictPass, "%s, from %s (email_from = %q)", email, from, p.EmailFrom)
	}
	switch {
	case p.guessShared(u):
		rule("mailbox", VerdictFail, "not classified (the connector could not say); sign-in disabled with a mailbox, so taken for a shared mailbox: a guess until the connector is granted MailboxSettings.Read")
	case u.MailboxPurpose == "":
		rule("mailbox", VerdictNone, "not classified")
	case u.MailboxPurpose == events.MailboxUnknown:
		rule("mailbox", VerdictNone, "not classified: the connector could not say (grant it MailboxSettings.Read)")
	case u.MailboxPurpose == events.MailboxNone:
		rule("mailbox", VerdictPass, "no mailbox the connector could read")
	case slices.Contains(p.ExcludeMailboxes, u.MailboxPurpose):
		rule("mailbox", VerdictFail, "%s mailbox; exclude_mailboxes lists %s", u.MailboxPurpose, u.MailboxPurpose)
	default:
		rule("mailbox", VerdictPass, "%s mailbox", u.MailboxPurpose)
	}
	switch {
	case u.AccountEnabled:
		rule("enabled", VerdictPass, "account enabled")
	case p.IncludeDisabled:
		rule("enabled", VerdictPass, "account disabled, included (include_disabled = true)")
	default:
		rule("enabled", VerdictFail, "account disabled (include_disabled = false)")
	}
	switch {
	case !u.IsGuest():
		rule("guest", VerdictPass, "member")
	case p.IncludeGuests:
		rule("guest", VerdictPass, "guest account, included (include_guests = true)")
	default:
		rule("guest", VerdictFail, "guest account (include_guests = false)")
	}
	switch {
	case !p.ExcludeUnlicensed:
		rule("licence", VerdictNone, "not checked (exclude_unlicensed = false)")
	case u.IsUnlicensed():
		rule("licence", VerdictFail, "no licence (exclude_unlicensed = true)")
	case u.Licensed == events.OptUnset && u.UserType == "":
		rule("licence", VerdictPass, "the directory has no licences")
	default:
		rule("licence", VerdictPass, "licensed")
	}
	p.explainExclusions(&ex, id, u, email)
	p.explainGroups(&ex, d, id)

	// The decision: Decide over the users sharing an address with id.
	keys := map[string]bool{EmailKey(email): true}
	for _, a := range u.Addresses() {
		keys[EmailKey(a)] = true
	}
	delete(keys, "")
	sub := &projections.Directory{Users: map[string]events.User{id: u}, Groups: d.Groups, Members: d.Members, Nested: d.Nested, Others: d.User}
	for oid, o := range d.Users {
		if keys[EmailKey(p.Email(o))] || slices.ContainsFunc(o.Addresses(), func(a string) bool { return keys[EmailKey(a)] }) {
			sub.Users[oid] = o
		}
	}
	out := p.DecideAmong(connectorName, sub, recipients)
	if r, ok := recipients[connectorName][id]; ok {
		ex.Recipient = &r
	}
	_, ex.Included = out.Wanted[id]
	ex.Reason = out.Skipped[id]
	switch {
	case ex.Reason == SkipDuplicateEmail:
		rule("duplicate", VerdictFail, "%s is held by %s", email, out.HeldBy[id])
	case ex.Reason != "":
		rule("duplicate", VerdictNone, "not reached")
	case out.DuplicateOf[EmailKey(email)] != "":
		rule("duplicate", VerdictPass, "%s", out.DuplicateOf[EmailKey(email)])
	default:
		rule("duplicate", VerdictPass, "no other user or recipient has %s", email)
	}
	if ex.Included {
		ex.Decision = "included: " + out.Wanted[id].Reason
		if ex.Recipient != nil {
			ex.Decision += fmt.Sprintf("; recipient %s is %s", ex.Recipient.ID, ex.Recipient.Status)
		}
	} else {
		ex.Decision = "excluded: " + DescribeSkip(ex.Reason)
		if ex.Recipient != nil {
			ex.Decision += fmt.Sprintf("; recipient %s is %s", ex.Recipient.ID, ex.Recipient.Status)
		}
	}
	return ex, true
}

// explainExclusions adds the verdicts of exclude_users, exclude_filter
// and the domains.
func (p Policy) explainExclusions(ex *Explanation, id string, u events.User, email string) {
	rule := func(name, verdict, format string, args ...any) {
		ex.Rules = append(ex.Rules, Verdict{Rule: name, Verdict: verdict, Detail: fmt.Sprintf(format, args...)})
	}
	if len(p.ExcludeUsers) == 0 {
		rule("exclude_users", VerdictNone, "none listed")
	} else {
		addrs := append(u.Addresses(), strings.ToLower(email))
		named := ""
		for _, x := range p.ExcludeUsers {
			if x == id || slices.Contains(addrs, strings.ToLower(x)) {
				named = x
				break
			}
		}
		if named != "" {
			rule("exclude_users", VerdictFail, "named as %q", named)
		} else {
			rule("exclude_users", VerdictPass, "not named")
		}
	}
	if len(p.ExcludeFilter) > 0 {
		if attr, value, pattern, excluded := p.excludedBy(u); excluded {
			rule("exclude_filter", VerdictFail, "%s %q matches %q", attr, value, pattern)
		} else {
			rule("exclude_filter", VerdictPass, "no pattern matches (%s)", p.filterValues(u))
		}
	}
	domain := ""
	if i := strings.LastIndex(email, "@"); i >= 0 {
		domain = strings.ToLower(email[i+1:])
	}
	switch {
	case len(p.IncludeDomains) == 0 && len(p.ExcludeDomains) == 0:
		rule("domains", VerdictNone, "no domain rule")
	case slices.Contains(p.ExcludeDomains, domain):
		rule("domains", VerdictFail, "%s is in exclude_domains", domain)
	case len(p.IncludeDomains) > 0 && !slices.Contains(p.IncludeDomains, domain):
		rule("domains", VerdictFail, "%s is not in include_domains", domain)
	case len(p.IncludeDomains) > 0:
		rule("domains", VerdictPass, "%s is in include_domains", domain)
	default:
		rule("domains", VerdictPass, "%s is not in exclude_domains", domain)
	}
}

// explainGroups adds the verdicts of the group scopes, with the nesting
// path that puts the user in each group.
func (p Policy) explainGroups(ex *Explanation, d *projections.Directory, id string) {
	rule := func(name, verdict, format string, args ...any) {
		ex.Rules = append(ex.Rules, Verdict{Rule: name, Verdict: verdict, Detail: fmt.Sprintf(format, args...)})
	}
	in := func(list []string) (names []string, via []string) {
		for _, x := range list {
			for _, gid := range slices.Sorted(maps.Keys(d.Groups)) {
				g := d.Groups[gid]
				if gid != x && !strings.EqualFold(g.DisplayName, x) {
					continue
				}
				names = append(names, fmt.Sprintf("%q", g.DisplayName))
				if path := p.memberPath(d, gid, id); path != nil {
					via = append(via, strings.Join(path, " > "))
				}
			}
		}
		return names, via
	}
	if len(p.IncludeGroups) == 0 {
		rule("include_groups", VerdictNone, "no group scope")
	} else if names, via := in(p.IncludeGroups); len(via) > 0 {
		rule("include_groups", VerdictPass, "in %s", strings.Join(via, "; "))
	} else {
		rule("include_groups", VerdictFail, "in none of %s", strings.Join(names, ", "))
	}
	if len(p.ExcludeGroups) == 0 {
		rule("exclude_groups", VerdictNone, "none listed")
	} else if _, via := in(p.ExcludeGroups); len(via) > 0 {
		rule("exclude_groups", VerdictFail, "in %s", strings.Join(via, "; "))
	} else {
		rule("exclude_groups", VerdictPass, "in none")
	}
}

// memberPath returns the display names from group gid down to a group
// the user uid is a direct member of (gid alone for a direct member), the
// shortest such path, or nil when uid is not a member. Without
// nested_groups only direct membership counts.
func (p Policy) memberPath(d *projections.Directory, gid, uid string) []string {
	parent := map[string]string{gid: ""}
	queue := []string{gid}
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		if _, ok := d.Members[g][uid]; ok {
			var path []string
			for at := g; at != ""; at = parent[at] {
				path = append([]string{d.Groups[at].DisplayName}, path...)
			}
			return path
		}
		if !p.NestedGroups {
			continue
		}
		for _, c := range slices.Sorted(maps.Keys(d.Nested[g])) {
			if _, seen := parent[c]; !seen {
				parent[c] = g
				queue = append(queue, c)
			}
		}
	}
	return nil
}
