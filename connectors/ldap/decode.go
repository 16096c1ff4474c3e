package ldap

import (
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Reasons of Progress.rejected: entries the connector read but drops
// because they fail its own checks.
const (
	// RejectIDNotGUID: a user or group whose ID attribute is missing, or
	// is neither 16 bytes (Active Directory's binary objectGUID) nor a
	// textual GUID (OpenLDAP's entryUUID).
	RejectIDNotGUID = "id_not_guid"
	// RejectGroupTypeInvalid: an Active Directory group whose groupType
	// is not a 32-bit integer, so its kind cannot be told.
	RejectGroupTypeInvalid = "group_type_invalid"
	// RejectMemberDNInvalid: a member value that is not a DN (counted by
	// the caller when NormalizeDN fails).
	RejectMemberDNInvalid = "member_dn_invalid"
)

// Reasons of Progress.sanitized: values the connector passed on cleaned.
const (
	// SanitizeInvalidUTF8: an attribute value that held bytes that are not
	// UTF-8; they were replaced with U+FFFD.
	SanitizeInvalidUTF8 = "invalid_utf8"
)

// Tally counts what decoding rejected and sanitized, by the reasons
// Progress.rejected and Progress.sanitized name. One Tally lives for one
// sync; the zero value is ready to use, and a nil *Tally counts nothing.
// It is not safe for concurrent use.
type Tally struct {
	// Rejected counts dropped entries by reason.
	Rejected map[string]int64
	// Sanitized counts cleaned values by reason.
	Sanitized map[string]int64
}

// Reject counts one entry dropped for reason and returns the count of the
// reason so far.
func (t *Tally) Reject(reason string) int64 {
	if t == nil {
		return 0
	}
	if t.Rejected == nil {
		t.Rejected = map[string]int64{}
	}
	t.Rejected[reason]++
	return t.Rejected[reason]
}

// Sanitize counts one value cleaned for reason.
func (t *Tally) Sanitize(reason string) {
	if t == nil {
		return
	}
	if t.Sanitized == nil {
		t.Sanitized = map[string]int64{}
	}
	t.Sanitized[reason]++
}

// Fill copies the counts into p (nil maps when nothing was counted), so
// that the batch carrying p does not share them with later counting.
func (t *Tally) Fill(p *connectorv1.Progress) {
	p.Rejected, p.Sanitized = nil, nil
	if t == nil {
		return
	}
	if len(t.Rejected) > 0 {
		p.Rejected = maps.Clone(t.Rejected)
	}
	if len(t.Sanitized) > 0 {
		p.Sanitized = maps.Clone(t.Sanitized)
	}
}

// Decoder turns directory entries of one flavor into connector.v1 users
// and groups. It is pure: it reads only the entry and the options given.
type Decoder struct {
	// Flavor picks how IDs, disabled accounts and group kinds are read.
	Flavor Flavor
	// Attrs names the attributes read.
	Attrs Attributes
	// Want maps the user attributes a sync asked for (connector.Attributes'
	// names) to the directory's attributes that hold them.
	Want map[string]string
	// MailboxPurpose reads Exchange's msExchRecipientTypeDetails (Active
	// Directory) into User.mailbox_purpose.
	MailboxPurpose bool
	// DisabledAttr (OpenLDAP) is the attribute whose presence marks a
	// disabled user, when disabled_filter is a presence filter such as the
	// default (pwdAccountLockedTime=*); "" when the caller must tell (see
	// EntryOptions.Disabled).
	DisabledAttr string
}

// EntryOptions is what the caller knows of an entry besides its
// attributes.
type EntryOptions struct {
	// Partial says the entry holds only the attributes that changed (an
	// Active Directory DirSync change): an attribute absent from it is left
	// unset (unknown), where in a full read it means empty.
	Partial bool
	// Disabled, when set, says whether the user's account is disabled,
	// e.g. whether the entry matched disabled_filter in a search of its
	// own. It overrides what the entry says (userAccountControl,
	// DisabledAttr); nil lets the entry decide.
	Disabled *bool
}

// Attribute names the decoder reads besides Attributes.
const (
	attrCN                 = "cn"
	attrSAMAccountName     = "sAMAccountName"
	attrProxyAddresses     = "proxyAddresses"
	attrUserAccountControl = "userAccountControl"
	attrGroupType          = "groupType"
	attrIsDeleted          = "isDeleted"
)

// UserAttributes lists the attributes a user search must ask for.
func (d *Decoder) UserAttributes() []string {
	a := d.Attrs
	out := nonEmpty(a.ID, a.Mail, a.DisplayName, attrCN, a.GivenName, a.Surname, a.Department, a.JobTitle, a.UPN)
	switch d.Flavor {
	case FlavorActiveDirectory:
		out = append(out, attrProxyAddresses, attrUserAccountControl)
		if d.MailboxPurpose {
			out = append(out, attrRecipientTypeDetails)
		}
	case FlavorOpenLDAP:
		out = append(out, nonEmpty(d.DisabledAttr)...)
	}
	return append(out, sortedValues(d.Want)...)
}

// WantAttributes sets the user attributes a sync asks for (connector
// names), keeping those this flavor can read.
func (d *Decoder) WantAttributes(names []string) {
	m := attributeMap(d.Flavor)
	d.Want = map[string]string{}
	for _, n := range names {
		if a := m[n]; a != "" {
			d.Want[n] = a
		}
	}
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// GroupAttributes lists the attributes a group search must ask for,
// members included.
func (d *Decoder) GroupAttributes() []string {
	a := d.Attrs
	out := nonEmpty(a.ID, a.Mail, a.DisplayName, attrCN)
	if d.Flavor == FlavorActiveDirectory {
		out = append(out, attrSAMAccountName, attrGroupType)
	}
	return append(out, a.Members...)
}

func nonEmpty(names ...string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// User decodes a user entry. It returns false, after counting the reason
// in t, when the entry is dropped. A deleted Active Directory object
// (isDeleted TRUE, as DirSync returns tombstones) becomes a user with only
// Id and Removed. guest is always false (LDAP has no guest accounts) and
// licensed always unset (no licences); enabled, when known, is also sent
// as account_enabled for daemons that predate enabled.
func (d *Decoder) User(e *goldap.Entry, opts EntryOptions, t *Tally) (*connectorv1.User, bool) {
	id, ok := d.id(e)
	if !ok {
		t.Reject(RejectIDNotGUID)
		return nil, false
	}
	if d.deleted(e) {
		return &connectorv1.User{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}, true
	}
	r := reader{e: e, partial: opts.Partial, t: t}
	u := &connectorv1.User{
		Id:                id,
		UserPrincipalName: r.opt(d.Attrs.UPN),
		Mail:              r.opt(d.Attrs.Mail),
		DisplayName:       r.firstSet(d.displayChain()),
		GivenName:         r.opt(d.Attrs.GivenName),
		Surname:           r.opt(d.Attrs.Surname),
		Department:        r.opt(d.Attrs.Department),
		JobTitle:          r.opt(d.Attrs.JobTitle),
		Guest:             ptr(false),
	}
	if u.Mail != nil && *u.Mail == "" {
		if vals, present := r.values(attrProxyAddresses); present {
			if p := PrimarySMTP(vals); p != "" {
				u.Mail = ptr(r.clean(p))
			}
		}
	}
	if enabled := d.enabled(&r, opts); enabled != nil {
		u.Enabled, u.AccountEnabled = ptr(*enabled), ptr(*enabled)
	}
	if d.Flavor == FlavorActiveDirectory {
		if vals, present := r.values(attrProxyAddresses); present || !opts.Partial {
			u.ProxyAddressesKnown = true
			for _, v := range vals {
				u.ProxyAddresses = append(u.ProxyAddresses, r.clean(v))
			}
		}
		if d.MailboxPurpose {
			if v, present := r.first(attrRecipientTypeDetails); present || !opts.Partial {
				p, _ := MailboxPurpose(v)
				u.MailboxPurpose = ptr(p)
				if p == "" {
					// No mailbox of a purpose: the host is told nothing,
					// as for a user without a mailbox.
					u.MailboxPurpose = nil
				}
			}
		}
	}
	for name, attr := range d.Want {
		if v := r.opt(attr); v != nil {
			if u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
			u.Attributes[name] = *v
		}
	}
	return u, true
}

// enabled decides whether the account may sign in, nil when unknown.
func (d *Decoder) enabled(r *reader, opts EntryOptions) *bool {
	if opts.Disabled != nil {
		return ptr(!*opts.Disabled)
	}
	switch d.Flavor {
	case FlavorActiveDirectory:
		v, present := r.first(attrUserAccountControl)
		if !present {
			return nil
		}
		if disabled, ok := AccountDisabled(v); ok {
			return ptr(!disabled)
		}
	case FlavorOpenLDAP:
		if d.DisabledAttr == "" {
			return nil
		}
		vals, present := r.values(d.DisabledAttr)
		switch {
		case present && len(vals) > 0:
			return ptr(false)
		case present || !r.partial:
			return ptr(true)
		}
	}
	return nil
}

// Group decodes a group entry. It returns false, after counting the
// reason in t, when the entry is dropped. Its kind:
//
//   - Active Directory: groupType's bit 0x80000000 makes a security
//     group, "mail_security" when it also has a mail address; without the
//     bit it is a "distribution" group, with or without mail.
//   - OpenLDAP: groupOfNames and groupOfUniqueNames carry no such flag.
//     They are what applications and slapd's own ACLs authorize by, so a
//     group is "security"; one with a mail address is "mail_security" (an
//     access group that also has an address), never "distribution",
//     since nothing tells a mailing list apart.
//
// group_types stays empty and group_types_known false (Entra words).
// mail_enabled and security_enabled are set as far as they are known, so
// that a daemon built before kinds derives the same kind from them, except
// that it drops a distribution group without mail (Entra's rule), which no
// recipient can use anyway.
func (d *Decoder) Group(e *goldap.Entry, opts EntryOptions, t *Tally) (*connectorv1.Group, bool) {
	id, ok := d.id(e)
	if !ok {
		t.Reject(RejectIDNotGUID)
		return nil, false
	}
	if d.deleted(e) {
		return &connectorv1.Group{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}, true
	}
	r := reader{e: e, partial: opts.Partial, t: t}
	g := &connectorv1.Group{
		Id:          id,
		DisplayName: r.firstSet(d.displayChain()),
		Mail:        r.opt(d.Attrs.Mail),
	}
	var security *bool
	switch d.Flavor {
	case FlavorActiveDirectory:
		if v, present := r.first(attrGroupType); present {
			gt, ok := ParseGroupType(v)
			if !ok {
				t.Reject(RejectGroupTypeInvalid)
				return nil, false
			}
			security = ptr(gt&GroupTypeSecurity != 0)
		}
	default:
		security = ptr(true)
	}
	g.SecurityEnabled = security
	if g.Mail != nil {
		g.MailEnabled = ptr(*g.Mail != "")
	}
	switch {
	case security == nil:
	case !*security:
		g.Kind = ptr(connector.GroupDistribution)
	case g.MailEnabled == nil:
	case *g.MailEnabled:
		g.Kind = ptr(connector.GroupMailSecurity)
	default:
		g.Kind = ptr(connector.GroupSecurity)
	}
	return g, true
}

// displayChain is where a display name is looked for, in order.
func (d *Decoder) displayChain() []string {
	chain := nonEmpty(d.Attrs.DisplayName)
	if !strings.EqualFold(d.Attrs.DisplayName, attrCN) {
		chain = append(chain, attrCN)
	}
	if d.Flavor == FlavorActiveDirectory {
		chain = append(chain, attrSAMAccountName)
	}
	return chain
}

// deleted reports an Active Directory tombstone.
func (d *Decoder) deleted(e *goldap.Entry) bool {
	return d.Flavor == FlavorActiveDirectory && strings.EqualFold(strings.TrimSpace(e.GetEqualFoldAttributeValue(attrIsDeleted)), "TRUE")
}

// id returns the entry's ID as a lowercase canonical GUID string. Active
// Directory's objectGUID comes as 16 raw bytes; a textual GUID (OpenLDAP's
// entryUUID) is accepted from either flavor.
func (d *Decoder) id(e *goldap.Entry) (string, bool) {
	vals := rawValues(e, d.Attrs.ID)
	if len(vals) == 0 {
		return "", false
	}
	v := vals[0]
	if d.Flavor == FlavorActiveDirectory && len(v) == 16 {
		return GUIDFromBytes(v)
	}
	return CanonicalGUID(string(v))
}

// GUIDFromBytes formats a binary GUID as Active Directory stores
// objectGUID (Microsoft's layout: the first three fields little-endian,
// the last two big-endian) in the canonical lowercase form
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, the form Windows tools show. It
// returns false unless b has exactly 16 bytes.
func GUIDFromBytes(b []byte) (string, bool) {
	if len(b) != 16 {
		return "", false
	}
	be := [16]byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	copy(be[8:], b[8:])
	var out [36]byte
	hex.Encode(out[0:8], be[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], be[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], be[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], be[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], be[10:16])
	return string(out[:]), true
}

// GUIDBytes is the inverse of GUIDFromBytes: the 16 bytes Active Directory
// stores for a GUID string (either case), e.g. to search by objectGUID.
func GUIDBytes(s string) ([]byte, bool) {
	c, ok := CanonicalGUID(s)
	if !ok {
		return nil, false
	}
	be, err := hex.DecodeString(strings.ReplaceAll(c, "-", ""))
	if err != nil || len(be) != 16 {
		return nil, false
	}
	return []byte{be[3], be[2], be[1], be[0], be[5], be[4], be[7], be[6],
		be[8], be[9], be[10], be[11], be[12], be[13], be[14], be[15]}, true
}

// CanonicalGUID checks that s has the 8-4-4-4-12 hex form of a GUID (as
// OpenLDAP's entryUUID has) and returns it lowercase.
func CanonicalGUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// PrimarySMTP returns the primary SMTP address among Active Directory
// proxyAddresses values: the one whose prefix is "SMTP:" in capitals
// (secondary ones are "smtp:"), or "" when there is none.
func PrimarySMTP(proxyAddresses []string) string {
	for _, p := range proxyAddresses {
		if addr, ok := strings.CutPrefix(p, "SMTP:"); ok {
			if addr = strings.TrimSpace(addr); addr != "" {
				return addr
			}
		}
	}
	return ""
}

// uacAccountDisable is userAccountControl's ACCOUNTDISABLE flag.
const uacAccountDisable = 0x2

// AccountDisabled reads an Active Directory userAccountControl value (a
// decimal integer) and reports whether its ACCOUNTDISABLE bit (0x2) is
// set; false, false when the value is not a 32-bit integer.
func AccountDisabled(userAccountControl string) (disabled, ok bool) {
	v, ok := parseInt32Bits(userAccountControl)
	if !ok {
		return false, false
	}
	return v&uacAccountDisable != 0, true
}

// GroupTypeSecurity is groupType's flag of a security group
// (GROUP_TYPE_SECURITY_ENABLED); without it a group is a distribution
// group.
const GroupTypeSecurity uint32 = 0x80000000

// ParseGroupType reads an Active Directory groupType, a signed 32-bit
// decimal such as -2147483646 (global security) or 8 (universal
// distribution), as its bits. The unsigned form is accepted too.
func ParseGroupType(s string) (uint32, bool) {
	return parseInt32Bits(s)
}

// parseInt32Bits parses a decimal that fits 32 bits, signed or unsigned.
func parseInt32Bits(s string) (uint32, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < -1<<31 || n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// reader reads the attributes of one entry for decoding.
type reader struct {
	e       *goldap.Entry
	partial bool
	t       *Tally
}

// values returns the values of the named attribute and whether the entry
// has it at all (a DirSync change names a cleared attribute without
// values).
func (r *reader) values(name string) ([]string, bool) {
	if name == "" {
		return nil, false
	}
	for _, a := range r.e.Attributes {
		if a != nil && strings.EqualFold(a.Name, name) {
			return a.Values, true
		}
	}
	return nil, false
}

// first returns the first value of the named attribute, "" when it has
// none, and whether the entry has the attribute.
func (r *reader) first(name string) (string, bool) {
	vals, present := r.values(name)
	if len(vals) == 0 {
		return "", present
	}
	return vals[0], present
}

// opt returns the first value of the named attribute, cleaned: "" when
// the entry lacks it in a full read, nil when it lacks it in a partial
// one, or when no attribute is configured (name "").
func (r *reader) opt(name string) *string {
	if name == "" {
		return nil
	}
	v, present := r.first(name)
	if !present && r.partial {
		return nil
	}
	return ptr(r.clean(v))
}

// firstSet returns the first non-empty value along chain. In a partial
// entry an attribute absent before one is found makes the answer
// unknown (nil): the directory may still hold a value there.
func (r *reader) firstSet(chain []string) *string {
	for _, name := range chain {
		v, present := r.first(name)
		if v != "" {
			return ptr(r.clean(v))
		}
		if !present && r.partial {
			return nil
		}
	}
	return ptr("")
}

// clean replaces bytes that are not UTF-8 with U+FFFD, counting the value
// as sanitized.
func (r *reader) clean(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	r.t.Sanitize(SanitizeInvalidUTF8)
	return strings.ToValidUTF8(v, "\uFFFD")
}

// rawValues returns the byte values of the named attribute.
func rawValues(e *goldap.Entry, name string) [][]byte {
	if name == "" {
		return nil
	}
	for _, a := range e.Attributes {
		if a == nil || !strings.EqualFold(a.Name, name) {
			continue
		}
		if len(a.ByteValues) == len(a.Values) {
			return a.ByteValues
		}
		out := make([][]byte, len(a.Values)) // an entry built by hand
		for i, v := range a.Values {
			out[i] = []byte(v)
		}
		return out
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
