package ldap

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// FuzzDecodeEntry feeds arbitrary entries through decoding as a sync
// would: an ID of any bytes, one attribute of any name and value (it may
// be mail, userAccountControl, groupType, proxyAddresses, isDeleted...),
// a member attribute of any description (ranged or not) whose values are
// DNs of any text, and the entry's DN. Nothing may panic; every string
// sent is valid UTF-8; an ID is rejected (and counted) or a canonical
// GUID, and a 16-byte objectGUID comes back from its string; member
// ranges ask for what follows; DN keys are their own canonical form.
func FuzzDecodeEntry(f *testing.F) {
	guid := mustHex(f, guidHex)
	seeds := []struct {
		ad, partial         bool
		dn                  string
		id                  []byte
		name                string
		value               []byte
		memberAttr, member2 string
	}{
		{true, false, "CN=Frank Foster,OU=Staff,DC=example,DC=test", guid, "userAccountControl", []byte("514"), "member;range=0-1499", "CN=a,DC=x"},
		{true, false, `CN=Smith\, John,DC=x`, guid, "groupType", []byte("-2147483646"), "member", `CN=b\2C c,DC=x`},
		{true, true, "CN=x", guid, "proxyAddresses", []byte("SMTP:a@example.test"), "member;range=1-1", "CN=y"},
		{true, false, `CN=carol\0ADEL:x,CN=Deleted Objects,DC=x`, guid, "isDeleted", []byte("TRUE"), "member;range=0-0", ""},
		{false, false, "uid=alice,ou=people,dc=example,dc=com", []byte("4c65828e-846d-1041-8668-47c1c14030f6"), "pwdAccountLockedTime", []byte("000001010000Z"), "uniqueMember", "uid=bob,dc=x#'01'B"},
		{false, false, "cn=\xff", []byte("4C65828E-846D-1041-8668-47C1C14030F6"), "displayName", []byte("Fr\xffnk"), "member;range=5-*", "cn=#0403616263,dc=x"},
		{true, false, "", []byte{1, 2, 3}, "mail", []byte{}, "member;range=9-1", "="},
		{false, true, "cn=a+cn=b", nil, "member;range=0-0", []byte("cn=q"), "Member;Range=0-4294967296", `cn=\ `},
	}
	for _, s := range seeds {
		f.Add(s.ad, s.partial, s.dn, s.id, s.name, s.value, s.memberAttr, s.member2)
	}
	f.Fuzz(func(t *testing.T, ad, partial bool, dn string, id []byte, name string, value []byte, memberAttr, member2 string) {
		d := olDecoder()
		if ad {
			d = adDecoder()
		}
		e := &goldap.Entry{DN: dn, Attributes: []*goldap.EntryAttribute{
			{Name: d.Attrs.ID, Values: []string{string(id)}, ByteValues: [][]byte{id}},
			goldap.NewEntryAttribute(name, []string{string(value)}),
			goldap.NewEntryAttribute(memberAttr, []string{dn, member2, string(value)}),
		}}
		if id == nil {
			e.Attributes = e.Attributes[1:]
		}
		opts := EntryOptions{Partial: partial}

		var tally Tally
		u, ok := d.User(e, opts, &tally)
		checkID(t, d, id, ok, u.GetId(), &tally)
		if ok {
			checkUser(t, u)
		}
		g, ok := d.Group(e, opts, &tally)
		if ok {
			checkID(t, d, id, true, g.GetId(), &tally)
			checkGroup(t, g)
		}

		m, err := d.Members(e)
		if err == nil {
			for _, next := range m.Next {
				attr, r, ranged, err := ParseRangedAttribute(next)
				if err != nil || !ranged || !r.Last() || !d.isMemberAttribute(attr) {
					t.Errorf("Next %q does not ask for the rest of a member attribute: %q %+v %v %v", next, attr, r, ranged, err)
				}
			}
		}
		_, _, _ = d.DirSyncMemberChanges(e)
		for _, s := range append([]string{dn, member2, string(value)}, m.DNs...) {
			checkDN(t, s)
		}
		_ = d.UserAttributes()
		_ = d.GroupAttributes()
		_ = DetectFlavor(e)
		_, _ = PresenceAttribute(string(value))
	})
}

// checkID holds an entry's ID to the rules: a 16-byte objectGUID in
// Active Directory, or a textual GUID, is kept as the canonical form;
// anything else is rejected and counted.
func checkID(t *testing.T, d *Decoder, raw []byte, ok bool, id string, tally *Tally) {
	t.Helper()
	binary := d.Flavor == FlavorActiveDirectory && len(raw) == 16
	_, textual := CanonicalGUID(string(raw))
	if want := binary || textual; ok != want {
		t.Fatalf("ID %x: kept %v, want %v", raw, ok, want)
	}
	if !ok {
		if tally.Rejected[RejectIDNotGUID] == 0 {
			t.Error("a rejected ID was not counted")
		}
		return
	}
	if c, valid := CanonicalGUID(id); !valid || c != id {
		t.Errorf("ID %q is not a canonical GUID", id)
	}
	if binary {
		back, ok := GUIDBytes(id)
		if !ok || !bytes.Equal(back, raw) {
			t.Errorf("objectGUID %x → %q → %x", raw, id, back)
		}
	}
}

func checkUser(t *testing.T, u *connectorv1.User) {
	t.Helper()
	if u.GetRemoved() != nil {
		return
	}
	for _, s := range []*string{u.UserPrincipalName, u.Mail, u.DisplayName, u.GivenName, u.Surname, u.Department, u.JobTitle} {
		if s != nil && !utf8.ValidString(*s) {
			t.Errorf("user value %q is not UTF-8", *s)
		}
	}
	if u.Guest == nil || *u.Guest || u.Licensed != nil {
		t.Errorf("guest %v licensed %v", u.Guest, u.Licensed)
	}
	if (u.Enabled == nil) != (u.AccountEnabled == nil) || u.GetEnabled() != u.GetAccountEnabled() {
		t.Errorf("enabled %v, account_enabled %v", u.Enabled, u.AccountEnabled)
	}
}

func checkGroup(t *testing.T, g *connectorv1.Group) {
	t.Helper()
	if g.GetRemoved() != nil {
		return
	}
	for _, s := range []*string{g.DisplayName, g.Mail} {
		if s != nil && !utf8.ValidString(*s) {
			t.Errorf("group value %q is not UTF-8", *s)
		}
	}
	if g.Kind != nil && !slices.Contains(connector.GroupKinds(), *g.Kind) {
		t.Errorf("kind %q", *g.Kind)
	}
	// The kind agrees with mail_enabled and security_enabled, which older
	// daemons classify by.
	switch g.GetKind() {
	case connector.GroupMailSecurity:
		if !g.GetMailEnabled() || !g.GetSecurityEnabled() {
			t.Errorf("mail_security group: mail %v security %v", g.MailEnabled, g.SecurityEnabled)
		}
	case connector.GroupSecurity:
		if g.MailEnabled == nil || g.GetMailEnabled() || !g.GetSecurityEnabled() {
			t.Errorf("security group: mail %v security %v", g.MailEnabled, g.SecurityEnabled)
		}
	case connector.GroupDistribution:
		if g.SecurityEnabled == nil || g.GetSecurityEnabled() {
			t.Errorf("distribution group: security %v", g.SecurityEnabled)
		}
	}
	if g.GroupTypesKnown || len(g.GroupTypes) > 0 {
		t.Error("group_types set")
	}
}

// checkDN: a DN key is valid UTF-8 and its own canonical form.
func checkDN(t *testing.T, dn string) {
	t.Helper()
	key, err := NormalizeDN(dn)
	if err != nil {
		return
	}
	if !utf8.ValidString(key) || key == "" {
		t.Errorf("NormalizeDN(%q) = %q", dn, key)
	}
	again, err := NormalizeDN(key)
	if err != nil || again != key {
		t.Errorf("NormalizeDN(%q) = %q, but NormalizeDN(%q) = %q, %v", dn, key, key, again, err)
	}
	if strings.ToLower(key) != key && utf8.ValidString(key) {
		// Escapes are lowercase hex and values are lowered: only runes
		// without a lowercase form may stay.
		for _, r := range key {
			if strings.ToLower(string(r)) != string(r) && strings.ToUpper(strings.ToLower(string(r))) == string(r) {
				t.Errorf("NormalizeDN(%q) = %q keeps upper case %q", dn, key, r)
				break
			}
		}
	}
}

// FuzzNormalizeDN checks DN keys alone, from any text: valid UTF-8, their
// own canonical form, and equal for DNs that differ only in case.
func FuzzNormalizeDN(f *testing.F) {
	for _, s := range []string{
		"CN=Frank Foster,OU=Staff,DC=example,DC=test",
		`CN=Smith\, John, OU=Staff,DC=example,DC=test`,
		`cn=a\2Bb+uid=x;dc=y`,
		`CN=\#x\ ,DC=y`,
		"cn=#04024869,dc=x",
		"cn=\xff\xfe,dc=x",
		`cn=\ff\fe,dc=x`,
		`CN=Müller\0A,DC=x`,
		"",
		"=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dn string) {
		checkDN(t, dn)
		key, err := NormalizeDN(dn)
		if err != nil || !isASCII(dn) {
			return
		}
		// ASCII case never matters.
		if upper, err := NormalizeDN(strings.ToUpper(dn)); err == nil && upper != key && !strings.Contains(dn, "#") && !strings.Contains(dn, `\`) {
			t.Errorf("NormalizeDN(%q) = %q, of its upper case %q", dn, key, upper)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
