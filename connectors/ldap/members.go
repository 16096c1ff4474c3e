package ldap

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// Members are what one group entry says of its members.
type Members struct {
	// DNs are the member DNs as the directory wrote them; key them with
	// NormalizeDN to find the entries they name.
	DNs []string
	// Next lists the attribute descriptions to ask for, in a base search
	// of the group, to read the rest of the members: Active Directory
	// returns at most MaxValRange (1500 by default) values of an
	// attribute at once, as "member;range=0-1499", and the next ones must
	// be asked for as "member;range=1500-*". Empty when DNs holds all.
	Next []string
}

// Members returns the member DNs of a group entry, from each attribute of
// Attrs.Members, ranged or not. uniqueMember's optional UID suffix
// (#'0101'B) is dropped. It fails on a malformed range option.
func (d *Decoder) Members(e *goldap.Entry) (Members, error) {
	var out Members
	for _, a := range e.Attributes {
		if a == nil {
			continue
		}
		attr, r, ranged, err := ParseRangedAttribute(a.Name)
		if err != nil {
			return Members{}, err
		}
		if !d.isMemberAttribute(attr) {
			continue
		}
		for _, v := range a.Values {
			if strings.EqualFold(attr, "uniqueMember") {
				v = stripUID(v)
			}
			if strings.TrimSpace(v) != "" {
				out.DNs = append(out.DNs, v)
			}
		}
		if ranged && !r.Last() {
			out.Next = append(out.Next, r.NextDescription(attr))
		}
	}
	return out, nil
}

// DirSyncMemberChanges returns the members a group gained and lost, from
// an Active Directory DirSync change read with the
// DirSyncIncrementalValues flag: values of "member;range=1-1" were added,
// values of "member;range=0-0" removed. An unranged member attribute in
// such a change is an error: the change then lists all members, which
// only a read without that flag returns.
func (d *Decoder) DirSyncMemberChanges(e *goldap.Entry) (added, removed []string, err error) {
	for _, a := range e.Attributes {
		if a == nil {
			continue
		}
		attr, r, ranged, err := ParseRangedAttribute(a.Name)
		if err != nil {
			return nil, nil, err
		}
		if !d.isMemberAttribute(attr) {
			continue
		}
		switch {
		case ranged && r == (Range{Low: 1, High: 1}):
			added = append(added, a.Values...)
		case ranged && r == (Range{Low: 0, High: 0}):
			removed = append(removed, a.Values...)
		default:
			return nil, nil, fmt.Errorf("attribute %q is not an incremental member change (range=1-1 or range=0-0)", clip(a.Name, 80))
		}
	}
	return added, removed, nil
}

func (d *Decoder) isMemberAttribute(attr string) bool {
	for _, m := range d.Attrs.Members {
		if strings.EqualFold(attr, m) {
			return true
		}
	}
	return false
}

// stripUID drops the optional UID of a nameAndOptionalUID value
// (uniqueMember): "cn=a,dc=x#'0101'B" → "cn=a,dc=x".
func stripUID(v string) string {
	i := strings.LastIndex(v, "#'")
	if i < 0 || !strings.HasSuffix(v, "'B") || i+2 > len(v)-2 {
		return v
	}
	if strings.Trim(v[i+2:len(v)-2], "01") != "" {
		return v
	}
	return v[:i]
}

// RangeEnd is Range.High of a last range ("range=1500-*").
const RangeEnd = -1

// maxRangeBound bounds range numbers, so that High+1 never overflows.
const maxRangeBound = 1<<31 - 2

// Range is an attribute description's range option, range=Low-High, as
// Active Directory returns large multi-valued attributes in parts.
type Range struct {
	// Low is the index of the first value returned.
	Low int
	// High is the index of the last value returned, or RangeEnd ("*")
	// when no values follow.
	High int
}

// Last reports whether no values follow this range.
func (r Range) Last() bool { return r.High == RangeEnd }

// NextDescription returns the attribute description that asks for the
// values after this range, e.g. "member;range=1500-*" after 0-1499.
func (r Range) NextDescription(attr string) string {
	return attr + ";range=" + strconv.Itoa(r.High+1) + "-*"
}

// ParseRangedAttribute splits an attribute description such as
// "member;range=0-1499" into the attribute ("member") and its range.
// Without a range option, ranged is false and attr is desc. Other options
// stay in attr ("member;binary"), so they never pass for the plain
// attribute. A range option that does not read Low-High or Low-* with
// 0 <= Low <= High is an error.
func ParseRangedAttribute(desc string) (attr string, r Range, ranged bool, err error) {
	parts := strings.Split(desc, ";")
	kept := parts[:1]
	for _, opt := range parts[1:] {
		if len(opt) < len("range=") || !strings.EqualFold(opt[:len("range=")], "range=") {
			kept = append(kept, opt)
			continue
		}
		if ranged {
			return "", Range{}, false, fmt.Errorf("attribute %q has two range options", clip(desc, 80))
		}
		ranged = true
		lo, hi, ok := strings.Cut(opt[len("range="):], "-")
		low, okLow := rangeBound(lo)
		high, okHigh := rangeBound(hi)
		switch {
		case !ok || !okLow:
		case hi == "*":
			r = Range{Low: low, High: RangeEnd}
			continue
		case okHigh && high >= low:
			r = Range{Low: low, High: high}
			continue
		}
		return "", Range{}, false, fmt.Errorf("attribute %q has a malformed range option: want range=<low>-<high> or range=<low>-*", clip(desc, 80))
	}
	return strings.Join(kept, ";"), r, ranged, nil
}

// rangeBound parses a range number: decimal digits, at most
// maxRangeBound.
func rangeBound(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxRangeBound {
		return 0, false
	}
	return n, true
}

// NormalizeDN returns a canonical form of a DN, so that the DNs a group
// lists as members find the entries a search returned however each was
// written: attribute types and values lowercase (Active Directory and
// OpenLDAP's usual naming attributes, cn, ou, dc, uid, match without
// case), no spaces around separators, the values of a multi-valued RDN
// sorted, and values escaped one way (RFC 4514: `\,` `\+` `\"` `\\` `\<`
// `\>` `\;`, a leading `\#` or space and a trailing space, control and
// non-UTF-8 bytes as `\xx`). So "CN=Smith\, John, OU=Staff,DC=Example" and
// "cn=smith\2c john,ou=staff,dc=example" have the same form. The result is
// valid UTF-8 and its own canonical form. An empty DN, or one whose
// attribute types are not attribute names, is an error.
func NormalizeDN(dn string) (string, error) {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("not a DN: %w", err)
	}
	if len(parsed.RDNs) == 0 {
		return "", errors.New("empty DN")
	}
	var b strings.Builder
	b.Grow(len(dn))
	for i, rdn := range parsed.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		avas := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			if !isAttributeName(a.Type) {
				return "", fmt.Errorf("not a DN: %q is not an attribute type", clip(a.Type, 40))
			}
			avas[j] = strings.ToLower(a.Type) + "=" + escapeDNValue(strings.ToLower(a.Value))
		}
		sort.Strings(avas)
		b.WriteString(strings.Join(avas, "+"))
	}
	return b.String(), nil
}

// escapeDNValue escapes an attribute value for a DN string (RFC 4514 2.4),
// keeping printable UTF-8 as it is.
func escapeDNValue(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, `\%02x`, v[i])
		case (i == 0 && (r == ' ' || r == '#')) || (i == len(v)-1 && r == ' '):
			b.WriteByte('\\')
			b.WriteRune(r)
		case strings.ContainsRune(`"+,;<>\`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteString(v[i : i+size])
		}
		i += size
	}
	return b.String()
}

// clip returns at most n bytes of s, as valid UTF-8, for messages about
// untrusted values.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
