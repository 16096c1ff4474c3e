package jobs

// Intake: what the daemon accepts from a connector plugin.
//
// A plugin's output is untrusted. Recipients feed phishing-simulation
// campaigns and downstream services trust the events, so a value a plugin
// sends reaches an event, a log line or an API answer only once it passed
// here: text is cleaned, addresses are checked, IDs are checked, and a
// stream that breaks connector.v1 ends the job. The functions are pure;
// the snapshot (run.go) applies them and counts what they changed.

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/safetext"
)

// Reasons an object is dropped (Summary.Rejected) or a field cleaned
// (Summary.Sanitized). Both also carry the plugin's own reasons
// (Progress.rejected and Progress.sanitized).
const (
	// RejectInvalidID: an object or member ID that cannot be a directory
	// object ID (it would become a NATS subject token and a KV key).
	RejectInvalidID = "invalid_id"

	// SanitizeInvalidUTF8: bytes that are not UTF-8, replaced by U+FFFD.
	SanitizeInvalidUTF8 = "invalid_utf8"
	// SanitizeControlCharacters: control characters (C0 with CR, LF, TAB
	// and NUL, DEL, C1, the line and paragraph separators) and bidi
	// override and isolate characters, removed.
	SanitizeControlCharacters = "control_characters"
	// SanitizeTooLong: text cut to MaxTextRunes (or a list to its bound).
	SanitizeTooLong = "too_long"
	// SanitizeInvalidEmail: an address that is not a bare addr-spec,
	// dropped: the user has no address (the policy skips it as no_email).
	SanitizeInvalidEmail = "invalid_email"
	// SanitizeInvalidValue: a value outside what connector.v1 allows (a
	// negative license count, an unknown removal reason), replaced by the
	// nearest allowed one.
	SanitizeInvalidValue = "invalid_value"
)

// Bounds on what a plugin may send.
const (
	// MaxTextRunes bounds a directory text field (Entra's longest,
	// displayName, allows 256 characters).
	MaxTextRunes = 256
	// MaxBatchObjects bounds the users, groups and member IDs of one
	// batch: ten times what connector.MaxBatchObjects asks plugins to
	// send, so only a faulty plugin reaches it.
	MaxBatchObjects = 10 * connector.MaxBatchObjects
	// MaxCursorBytes bounds the cursor stored in the COMPLETED event.
	MaxCursorBytes = connector.MaxCursorBytes
	// maxMessageRunes bounds plugin text that is not a directory field
	// (its error messages, resync reasons), which reaches a job's reason.
	maxMessageRunes = 1024
	// maxGroupTypes bounds a group's groupTypes (Graph knows two values).
	maxGroupTypes = 32
	// maxProxyAddresses bounds the SMTP addresses kept for one user
	// (Exchange allows about 400 proxy addresses; a person has a few).
	maxProxyAddresses = 64
	// maxPluginReasons bounds the plugin's own reasons kept in a
	// summary, of rejected objects and of sanitized values each; the rest
	// are counted under "other".
	maxPluginReasons = 32
	// maxEmailLocal and maxEmailBytes are RFC 5321's limits.
	maxEmailLocal = 64
	maxEmailBytes = 254
)

// ErrProtocol means a plugin broke the connector.v1 sync protocol: the job
// fails and nothing it read is saved. It is connector.ErrProtocol, which
// the plugin client's own checks return too.
var ErrProtocol = connector.ErrProtocol

// fixes is the set of sanitising reasons applied to one field.
type fixes uint8

const (
	fixInvalidUTF8 fixes = 1 << iota
	fixControl
	fixTooLong
	fixInvalidEmail
	fixInvalidValue
)

// reasons names the fixes, in a fixed order.
func (f fixes) reasons() []string {
	var out []string
	for _, x := range []struct {
		bit  fixes
		name string
	}{{fixInvalidUTF8, SanitizeInvalidUTF8}, {fixControl, SanitizeControlCharacters}, {fixTooLong, SanitizeTooLong},
		{fixInvalidEmail, SanitizeInvalidEmail}, {fixInvalidValue, SanitizeInvalidValue}} {
		if f&x.bit != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// tally counts by reason.
type tally map[string]int64

func (t tally) add(f fixes) {
	for _, r := range f.reasons() {
		t[r]++
	}
}

// merged returns a new tally of t's counts plus other's.
func (t tally) merged(other tally) tally {
	out := maps.Clone(t)
	if out == nil {
		out = tally{}
	}
	for k, n := range other {
		out[k] += n
	}
	return out
}

// cleanText returns s fit for an event (safetext.Clean: invalid UTF-8
// replaced by U+FFFD, line-breaking and bidi characters removed, cut to
// max runes) and what it changed. The rule is shared with the checks of
// an operator's job options (events.JobOptions.Validated), which refuse
// what this removes.
func cleanText(s string, max int) (string, fixes) {
	out, c := safetext.Clean(s, max)
	var f fixes
	if c.InvalidUTF8 {
		f |= fixInvalidUTF8
	}
	if c.Removed {
		f |= fixControl
	}
	if c.Cut {
		f |= fixTooLong
	}
	return out, f
}

// cleanMessage makes plugin text that is not a directory field (an error
// message, a resync reason) fit for a job's reason and the log: line
// breaks and tabs become spaces, other stripped characters go, invalid
// UTF-8 becomes U+FFFD, and it is cut to maxMessageRunes.
func cleanMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	out, f := cleanText(s, maxMessageRunes)
	if f&fixTooLong != 0 {
		out += "…"
	}
	return out
}

// atext is RFC 5322's atext, the characters of a dot-atom local part.
var atext = func() (t [128]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-/=?^_`{|}~" {
		t[c] = true
	}
	return t
}()

// validEmail reports whether s is a bare addr-spec a mailer can take as it
// is: local@domain with a dot-atom local part of ASCII atext (no quotes,
// display name, angle brackets, spaces, commas or control characters) of
// at most 64 bytes, and a domain of at least two LDH labels (Unicode
// domains must come as punycode), at most 254 bytes in all. Entra's mail
// and userPrincipalName always have this form, guests' #EXT# UPNs too.
func validEmail(s string) bool {
	if len(s) > maxEmailBytes {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") || len(local) > maxEmailLocal {
		return false
	}
	return dotAtom(local) && hostname(domain)
}

// dotAtom reports whether s is atext separated by single dots.
func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c >= 128 || !atext[c]) {
			return false
		}
	}
	return true
}

// ldhLabel is a DNS label: letters, digits and hyphens, not at its ends.
var ldhLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// hostname reports whether s is two or more LDH labels separated by dots.
func hostname(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !ldhLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// cleanEmail returns s when it is a valid address (spaces at its ends,
// a common typing slip, are trimmed), and "" with fixInvalidEmail when it
// is not: an invalid address is never kept in any form.
func cleanEmail(s string) (string, fixes) {
	if t := strings.Trim(s, " "); validEmail(t) {
		return t, 0
	}
	if s == "" {
		return "", 0 // empty is "no address", not an invalid one
	}
	return "", fixInvalidEmail
}

// cleanUser returns u with every field fit for an event, and what was
// changed in each field. The user's ID is checked by the caller. u itself
// is not modified: it may be shared with the plugin's client.
func cleanUser(u *connectorv1.User) (*connectorv1.User, []fixes) {
	out := &connectorv1.User{Id: u.GetId(), AccountEnabled: u.AccountEnabled, Removed: u.GetRemoved(),
		AssignedLicenseCount: u.AssignedLicenseCount, Guest: u.Guest, Licensed: u.Licensed, Enabled: u.Enabled}
	var fx []fixes
	clean := func(p *string, by func(string) (string, fixes)) *string {
		if p == nil {
			return nil
		}
		v, f := by(*p)
		if f != 0 {
			fx = append(fx, f)
		}
		if v == *p {
			// The plugin's pointer, not a copy: a full read takes in
			// 100,000 users of eight fields each.
			return p
		}
		return &v
	}
	text := func(p *string) *string {
		return clean(p, func(s string) (string, fixes) { return cleanText(s, MaxTextRunes) })
	}
	email := func(p *string) *string { return clean(p, cleanEmail) }
	// The policy may take the address from the UPN (email_from = "upn"),
	// now or after a later change of plugins.hcl applied to the stored
	// directory: the UPN is checked as an address whatever the policy.
	out.UserPrincipalName = email(u.UserPrincipalName)
	out.Mail = email(u.Mail)
	out.DisplayName = text(u.DisplayName)
	out.GivenName = text(u.GivenName)
	out.Surname = text(u.Surname)
	out.Department = text(u.Department)
	out.JobTitle = text(u.JobTitle)
	out.UserType = text(u.UserType)
	if n := u.AssignedLicenseCount; n != nil && *n < 0 {
		zero := int32(0)
		out.AssignedLicenseCount = &zero
		fx = append(fx, fixInvalidValue)
	}
	if r, f := cleanRemoval(u.GetRemoved()); f != 0 {
		out.Removed = r
		fx = append(fx, f)
	}
	if u.GetProxyAddressesKnown() {
		var f fixes
		out.ProxyAddressesKnown = true
		out.ProxyAddresses, f = cleanProxyAddresses(u.GetProxyAddresses())
		if f != 0 {
			fx = append(fx, f)
		}
	}
	if p := u.MailboxPurpose; p != nil {
		// A purpose connector.v1 does not name is dropped, as if the
		// plugin had not read it: the policy must not guess from it.
		if slices.Contains(connector.MailboxPurposes(), *p) {
			out.MailboxPurpose = p
		} else {
			fx = append(fx, fixInvalidValue)
		}
	}
	if len(u.GetAttributes()) > 0 {
		out.Attributes = make(map[string]string, len(u.GetAttributes()))
		for k, v := range u.GetAttributes() {
			if !connector.IsAttribute(k) {
				fx = append(fx, fixInvalidValue)
				continue
			}
			v, f := cleanText(v, MaxTextRunes)
			if f != 0 {
				fx = append(fx, f)
			}
			out.Attributes[k] = v
		}
	}
	return out, fx
}

// cleanProxyAddresses keeps the SMTP addresses of a user's proxy
// addresses, as "SMTP:" (the first primary) or "smtp:" and a valid
// address, each address once, at most maxProxyAddresses. Other types
// (SIP, X500) have no use here and are dropped without a count.
func cleanProxyAddresses(in []string) ([]string, fixes) {
	var out []string
	var f fixes
	seen := map[string]bool{}
	primary := false
	for _, a := range in {
		if len(a) < 5 || !strings.EqualFold(a[:5], "smtp:") {
			continue
		}
		addr, af := cleanEmail(a[5:])
		f |= af
		if addr == "" || seen[strings.ToLower(addr)] {
			continue
		}
		if len(out) == maxProxyAddresses {
			f |= fixTooLong
			break
		}
		seen[strings.ToLower(addr)] = true
		prefix := "smtp:"
		if a[:5] == "SMTP:" && !primary {
			prefix, primary = "SMTP:", true
		}
		out = append(out, prefix+addr)
	}
	return out, f
}

// cleanGroup is cleanUser for a group.
func cleanGroup(g *connectorv1.Group) (*connectorv1.Group, []fixes) {
	out := &connectorv1.Group{Id: g.GetId(), MailEnabled: g.MailEnabled, SecurityEnabled: g.SecurityEnabled,
		Removed: g.GetRemoved(), GroupTypesKnown: g.GetGroupTypesKnown(), Kind: g.Kind}
	var fx []fixes
	// A kind connector.v1 does not name would break the group event's
	// schema: the group is kept without it, as if the plugin had not said.
	if k := g.Kind; k != nil && !slices.Contains(connector.GroupKinds(), *k) {
		out.Kind = nil
		fx = append(fx, fixInvalidValue)
	}
	if p := g.DisplayName; p != nil {
		v, f := cleanText(*p, MaxTextRunes)
		out.DisplayName = &v
		if f != 0 {
			fx = append(fx, f)
		}
	}
	if p := g.Mail; p != nil {
		v, f := cleanEmail(*p)
		out.Mail = &v
		if f != 0 {
			fx = append(fx, f)
		}
	}
	if types := g.GetGroupTypes(); types != nil {
		var f fixes
		if len(types) > maxGroupTypes {
			types, f = types[:maxGroupTypes], fixTooLong
		}
		out.GroupTypes = make([]string, len(types))
		for i, t := range types {
			var tf fixes
			out.GroupTypes[i], tf = cleanText(t, MaxTextRunes)
			f |= tf
		}
		if f != 0 {
			fx = append(fx, f)
		}
	}
	if r, f := cleanRemoval(g.GetRemoved()); f != 0 {
		out.Removed = r
		fx = append(fx, f)
	}
	return out, fx
}

// cleanRemoval maps a removal reason that connector.v1 does not know (it
// would break the removed event's schema) to "deleted".
func cleanRemoval(r *connectorv1.Removal) (*connectorv1.Removal, fixes) {
	if r == nil || r.GetReason() == "deleted" || r.GetReason() == "changed" {
		return r, 0
	}
	return &connectorv1.Removal{Reason: "deleted"}, fixInvalidValue
}

// checkBatch finds what in b breaks the protocol, given whether the final
// batch came already and whether the request was a full read: the rules of
// connector.StreamRules, which the conformance suite holds every connector
// to, with this daemon's tolerance for batch size.
func checkBatch(b *connectorv1.SyncBatch, done, full bool) error {
	r := connector.StreamRules{Full: full, MaxObjects: MaxBatchObjects, Ended: done}
	return r.Check(b)
}

// pluginReason accepts a plugin's own rejection reason as a summary key.
var pluginReason = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// pluginCounts returns a plugin's Progress.rejected or Progress.sanitized
// fit for a summary: keys that are not snake_case words, and those beyond
// maxPluginReasons in sorted order, are counted under "other"; counts
// below 1 are dropped.
func pluginCounts(m map[string]int64) tally {
	out := tally{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n := m[k]
		if n <= 0 {
			continue
		}
		if !pluginReason.MatchString(k) || (len(out) >= maxPluginReasons && out[k] == 0) {
			k = "other"
		}
		out[k] += n
	}
	return out
}

// pluginError is an error a plugin returned: its text is the plugin's and
// is shown only once cleaned (cleanMessage).
type pluginError struct{ err error }

func (e *pluginError) Error() string { return cleanMessage(e.err.Error()) }
func (e *pluginError) Unwrap() error { return e.err }
