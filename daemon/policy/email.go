package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// maxDuplicates bounds Outcome.Duplicates: a summary names the first
// ones, the skip counts say how many there are.
const maxDuplicates = 100

// EmailKey is the form in which emails are compared: mail is
// case-insensitive, and the intake (cleanEmail in daemon/jobs) admits
// only ASCII addresses with the spaces at their ends trimmed, so the
// lower case of the trimmed address is all the normalisation there is.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// holder is an active recipient of another connector that has an email.
type holder struct{ id, connector string }

// oneRecipientPerEmail keeps the invariant that no two active recipients,
// of any connector, share an email (compared by EmailKey). The email a
// wanted user gets is the one Merge gives it: with update_existing =
// false an existing recipient keeps its stored email, so a stored email
// the directory no longer gives its user still counts as taken. Who gets
// an email that several want, in this order:
//
//  0. (Aliases.) An address is one mailbox's: mail to an alias reaches
//     the mailbox whose alias it is, whether or not its user is a
//     recipient. A user wanting as its email another directory user's
//     alias (an SMTP proxy address other than that user's own email), or
//     an alias of another connector's active recipient, is skipped as
//     duplicate_email: that mail would reach the alias's owner.
//  1. An active recipient of another connector keeps it; this connector's
//     users that want it are skipped. A connector renamed or removed in
//     plugins.hcl and not retired shows up this way (counted, and one
//     warning naming it) instead of as a second list of the same people.
//  2. Of this connector's wanted users, the one whose recipient is active
//     with that email now, else the lowest object ID; the others are
//     skipped, and an active recipient among them leaves the list by
//     on_removed. A user who takes over a leaver's or a renamed user's
//     email thus gets it in the same sync (the leaver's recipient is
//     archived, the renamed user's updated), while a user whose email
//     is still a stored recipient's (update_existing = false) waits.
//  3. With on_removed = "keep", an active recipient the policy no longer
//     wants stays only while nobody above has its email (and, of kept
//     recipients sharing one, only the lowest object ID): keep protects
//     recipients of users who left, never at the price of a duplicate.
//     The others are Released; the caller archives them.
//
// Emails are visited in order and object IDs sorted, so the outcome does
// not depend on map order.
func (p Policy) oneRecipientPerEmail(connectorName string, d *projections.Directory, recipients map[string]map[string]events.Recipient, out *Outcome) {
	current := recipients[connectorName]
	elsewhere := heldElsewhere(connectorName, recipients, func(r events.Recipient) []string { return []string{r.Email} })
	claims := make(map[string][]string, len(out.Wanted))
	for id, w := range out.Wanted {
		k := EmailKey(p.emailOf(w.Recipient, current))
		claims[k] = append(claims[k], id)
	}
	// The aliases of this connector's users and of the other
	// connectors' active recipients, by key: the lowest ID that has it.
	aliasOf := map[string]string{}
	for id, u := range d.Users {
		if u.ProxyAddresses == "" {
			continue
		}
		own := EmailKey(p.Email(u))
		for a := range u.SMTPAddresses() {
			if k := EmailKey(a); k != own {
				if o, ok := aliasOf[k]; !ok || id < o {
					aliasOf[k] = id
				}
			}
		}
	}
	elsewhereAlias := heldElsewhere(connectorName, recipients, func(r events.Recipient) []string { return r.Aliases })
	byConnector := map[string]int{}
	owner := make(map[string]string, len(claims)) // email key → object ID whose recipient gets it
	for _, k := range slices.Sorted(maps.Keys(claims)) {
		ids := claims[k]
		slices.Sort(ids)
		if h, ok := elsewhere[k]; ok {
			out.skipDuplicates(k, fmt.Sprintf("recipient %s of connector %q", h.id, h.connector), ids)
			byConnector[h.connector] += len(ids)
			continue
		}
		if h, ok := elsewhereAlias[k]; ok {
			out.skipDuplicates(k, fmt.Sprintf("recipient %s of connector %q, an alias of it", h.id, h.connector), ids)
			byConnector[h.connector] += len(ids)
			continue
		}
		if o, ok := aliasOf[k]; ok {
			out.skipDuplicates(k, fmt.Sprintf("user %s, an alias of it", o), ids)
			continue
		}
		keep := ids[0]
		for _, id := range ids {
			if r, ok := current[id]; ok && r.Status == events.RecipientActive && EmailKey(r.Email) == k {
				keep = id
				break
			}
		}
		owner[k] = keep
		if len(ids) > 1 {
			out.skipDuplicates(k, "user "+keep, slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == keep }))
		}
	}
	for _, c := range slices.Sorted(maps.Keys(byConnector)) {
		out.Warnings = append(out.Warnings, fmt.Sprintf(
			"%d users skipped as duplicate_email: their emails belong to active recipients of connector %q; if it was renamed or removed in plugins.hcl, retire it (dirsync connector retire %s)",
			byConnector[c], c, c))
	}
	if p.OnRemoved != OnRemovedKeep {
		return
	}
	var leaving []string
	for id, r := range current {
		if _, ok := out.Wanted[id]; !ok && r.Status == events.RecipientActive {
			leaving = append(leaving, id)
		}
	}
	slices.Sort(leaving)
	kept := map[string]string{}
	for _, id := range leaving {
		k := EmailKey(current[id].Email)
		if o, ok := owner[k]; ok {
			out.Released[id] = fmt.Sprintf("its email is now user %s's", o)
		} else if h, ok := elsewhere[k]; ok {
			out.Released[id] = fmt.Sprintf("its email is recipient %s's of connector %q", h.id, h.connector)
		} else if o, ok := kept[k]; ok {
			out.Released[id] = fmt.Sprintf("its email is also the kept recipient's of user %s", o)
		} else {
			kept[k] = id
		}
	}
}

// emailOf is the email the recipient of a wanted user gets, as Merge
// gives it, without building the whole recipient (Merge clones and bounds
// tags and groups, and plan merges each recipient once more anyway): the
// stored one under update_existing = false, else the directory's.
func (p Policy) emailOf(want events.Recipient, current map[string]events.Recipient) string {
	if cur, ok := current[want.ObjectID]; ok && !p.UpdateExisting {
		return cur.Email
	}
	return want.Email
}

// heldElsewhere maps the keys of the addresses (their emails, or their
// aliases) of other connectors' active recipients to the recipient with
// the lowest ID among those that have it.
func heldElsewhere(connectorName string, recipients map[string]map[string]events.Recipient, addresses func(events.Recipient) []string) map[string]holder {
	held := map[string]holder{}
	for c, rs := range recipients {
		if c == connectorName {
			continue
		}
		for _, r := range rs {
			if r.Status != events.RecipientActive {
				continue
			}
			for _, a := range addresses(r) {
				k := EmailKey(a)
				if h, ok := held[k]; !ok || r.ID < h.id {
					held[k] = holder{r.ID, c}
				}
			}
		}
	}
	return held
}

// skipDuplicates skips the users ids, sorted, whose email is holder's.
func (o *Outcome) skipDuplicates(email, holder string, ids []string) {
	for _, id := range ids {
		delete(o.Wanted, id)
		o.Skipped[id] = SkipDuplicateEmail
		o.HeldBy[id] = holder
	}
	o.DuplicateOf[email] = fmt.Sprintf("%s: %s is the recipient; skipped %s", email, holder, strings.Join(ids, ", "))
}

// ListDuplicates is what a job's summary says of DuplicateOf: the first
// maxDuplicates descriptions, by email.
func ListDuplicates(of map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(of)) {
		if len(out) == maxDuplicates {
			break
		}
		out = append(out, of[k])
	}
	return out
}
