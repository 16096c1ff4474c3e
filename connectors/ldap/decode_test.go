package ldap

import (
	"bytes"
	"encoding/hex"
	"maps"
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// guidHex is an objectGUID as Active Directory stores it (what ldapsearch
// prints base64, here hex) and guidString the same GUID as Windows tools
// show it (Get-ADUser's ObjectGUID); checked against Python's
// uuid.UUID(bytes_le=...), which reads Microsoft's layout.
const (
	guidHex    = "2a3e8c5f1d9b4e47a1c2d3e4f5061728"
	guidString = "5f8c3e2a-9b1d-474e-a1c2-d3e4f5061728"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGUIDFromBytes(t *testing.T) {
	for hexBytes, want := range map[string]string{
		guidHex:                            guidString,
		"33221100554477668899aabbccddeeff": "00112233-4455-6677-8899-aabbccddeeff", // Wikipedia's example of the layout
		"00000000000000000000000000000000": "00000000-0000-0000-0000-000000000000",
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF": "ffffffff-ffff-ffff-ffff-ffffffffffff",
	} {
		b := mustHex(t, hexBytes)
		got, ok := GUIDFromBytes(b)
		if !ok || got != want {
			t.Errorf("GUIDFromBytes(%s) = %q, %v; want %q", hexBytes, got, ok, want)
		}
		back, ok := GUIDBytes(got)
		if !ok || !bytes.Equal(back, b) {
			t.Errorf("GUIDBytes(%q) = %x, %v; want %x", got, back, ok, b)
		}
	}
	if back, ok := GUIDBytes("5F8C3E2A-9B1D-474E-A1C2-D3E4F5061728"); !ok || hex.EncodeToString(back) != guidHex {
		t.Errorf("GUIDBytes of upper case: %x, %v", back, ok)
	}
	for _, n := range []int{0, 1, 15, 17, 36} {
		if s, ok := GUIDFromBytes(make([]byte, n)); ok {
			t.Errorf("%d bytes gave %q", n, s)
		}
	}
}

func TestCanonicalGUID(t *testing.T) {
	for in, want := range map[string]string{
		"4c65828e-846d-1041-8668-47c1c14030f6":   "4c65828e-846d-1041-8668-47c1c14030f6", // slapd's entryUUID
		"4C65828E-846D-1041-8668-47C1C14030F6":   "4c65828e-846d-1041-8668-47c1c14030f6",
		"4c65828e846d1041866847c1c14030f6":       "",
		"{4c65828e-846d-1041-8668-47c1c14030f6}": "",
		"4c65828e-846d-1041-8668-47c1c14030fg":   "",
		"4c65828e-846d-1041-8668_47c1c14030f6":   "",
		" 4c65828e-846d-1041-8668-47c1c14030f":   "",
		"":                                       "",
	} {
		got, ok := CanonicalGUID(in)
		if got != want || ok != (want != "") {
			t.Errorf("CanonicalGUID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// adUser returns an Active Directory user entry with the attributes given
// on top of a full set.
func adUser(t testing.TB, over map[string][]string) *goldap.Entry {
	attrs := map[string][]string{
		"objectGUID":         {string(mustHex(t, guidHex))},
		"cn":                 {"Frank Foster"},
		"displayName":        {"Frank Foster"},
		"givenName":          {"Frank"},
		"sn":                 {"Foster"},
		"mail":               {"frank@example.test"},
		"userPrincipalName":  {"frank@example.test"},
		"department":         {"Engineering"},
		"title":              {"Engineer"},
		"proxyAddresses":     {"smtp:ff@example.test", "SMTP:frank@example.test"},
		"userAccountControl": {"512"},
	}
	for k, v := range over {
		if v == nil {
			delete(attrs, k)
		} else {
			attrs[k] = v
		}
	}
	return goldap.NewEntry("CN=Frank Foster,OU=Staff,DC=example,DC=test", attrs)
}

func adDecoder() *Decoder {
	return &Decoder{Flavor: FlavorActiveDirectory, Attrs: DefaultAttributes(FlavorActiveDirectory)}
}

func olDecoder() *Decoder {
	return &Decoder{Flavor: FlavorOpenLDAP, Attrs: DefaultAttributes(FlavorOpenLDAP), DisabledAttr: "pwdAccountLockedTime"}
}

func TestDecodeADUser(t *testing.T) {
	var tally Tally
	u, ok := adDecoder().User(adUser(t, nil), EntryOptions{}, &tally)
	if !ok {
		t.Fatalf("rejected: %v", tally.Rejected)
	}
	want := &connectorv1.User{
		Id: guidString, UserPrincipalName: ptr("frank@example.test"), Mail: ptr("frank@example.test"),
		DisplayName: ptr("Frank Foster"), GivenName: ptr("Frank"), Surname: ptr("Foster"),
		Department: ptr("Engineering"), JobTitle: ptr("Engineer"),
		AccountEnabled: ptr(true), Enabled: ptr(true), Guest: ptr(false),
		ProxyAddresses: []string{"smtp:ff@example.test", "SMTP:frank@example.test"}, ProxyAddressesKnown: true,
	}
	if !proto.Equal(u, want) {
		t.Errorf("user\n %v\nwant\n %v", u, want)
	}
	if u.Licensed != nil || u.UserType != nil || u.AssignedLicenseCount != nil {
		t.Errorf("licence and Entra fields set: %v", u)
	}
	if len(tally.Rejected)+len(tally.Sanitized) != 0 {
		t.Errorf("tally %+v", tally)
	}
}

func TestUserAccountControl(t *testing.T) {
	for uac, wantEnabled := range map[string]*bool{
		"512":         ptr(true),  // NORMAL_ACCOUNT
		"514":         ptr(false), // NORMAL_ACCOUNT | ACCOUNTDISABLE
		"66048":       ptr(true),  // | DONT_EXPIRE_PASSWORD
		"66050":       ptr(false), // | DONT_EXPIRE_PASSWORD | ACCOUNTDISABLE
		"2":           ptr(false),
		"-2147483646": ptr(false), // high bit set as a signed value, ACCOUNTDISABLE too
		"4294967295":  ptr(false),
		"0x202":       nil, // not a decimal
		"":            nil,
		"99999999999": nil, // beyond 32 bits
	} {
		u, ok := adDecoder().User(adUser(t, map[string][]string{"userAccountControl": {uac}}), EntryOptions{}, nil)
		if !ok {
			t.Fatalf("uac %q: rejected", uac)
		}
		if !proto.Equal(&connectorv1.User{Enabled: u.Enabled, AccountEnabled: u.AccountEnabled},
			&connectorv1.User{Enabled: wantEnabled, AccountEnabled: wantEnabled}) {
			t.Errorf("uac %q: enabled %v account_enabled %v, want %v", uac, u.Enabled, u.AccountEnabled, wantEnabled)
		}
	}
	u, _ := adDecoder().User(adUser(t, map[string][]string{"userAccountControl": nil}), EntryOptions{}, nil)
	if u.Enabled != nil {
		t.Errorf("no userAccountControl: enabled %v, want unknown", *u.Enabled)
	}
	u, _ = adDecoder().User(adUser(t, map[string][]string{"userAccountControl": {"512"}}), EntryOptions{Disabled: ptr(true)}, nil)
	if u.GetEnabled() || u.Enabled == nil {
		t.Error("EntryOptions.Disabled does not override userAccountControl")
	}
}

func TestPrimarySMTP(t *testing.T) {
	tests := []struct {
		proxies []string
		want    string
	}{
		{[]string{"smtp:ff@example.test", "SMTP:frank@example.test", "X500:/o=Org/cn=frank"}, "frank@example.test"},
		{[]string{"smtp:a@example.test", "smtp:b@example.test"}, ""},
		{[]string{"sip:frank@example.test", "SMTP:"}, ""},
		{[]string{"Smtp:odd@example.test"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := PrimarySMTP(tt.proxies); got != tt.want {
			t.Errorf("PrimarySMTP(%q) = %q, want %q", tt.proxies, got, tt.want)
		}
	}

	// mail wins; an empty mail falls back to the primary address.
	for name, tt := range map[string]struct {
		over map[string][]string
		want string
	}{
		"mail set":              {map[string][]string{"mail": {"frank.foster@example.test"}}, "frank.foster@example.test"},
		"no mail":               {map[string][]string{"mail": nil}, "frank@example.test"},
		"no mail, no primary":   {map[string][]string{"mail": nil, "proxyAddresses": {"smtp:ff@example.test"}}, ""},
		"no mail, no addresses": {map[string][]string{"mail": nil, "proxyAddresses": nil}, ""},
	} {
		u, _ := adDecoder().User(adUser(t, tt.over), EntryOptions{}, nil)
		if u.Mail == nil || *u.Mail != tt.want {
			t.Errorf("%s: mail %v, want %q", name, u.Mail, tt.want)
		}
		if u.GetUserPrincipalName() != "frank@example.test" {
			t.Errorf("%s: UPN %q", name, u.GetUserPrincipalName())
		}
	}
}

func TestDecodeOpenLDAPUser(t *testing.T) {
	entry := func(over map[string][]string) *goldap.Entry {
		attrs := map[string][]string{
			"entryUUID": {"4C65828E-846D-1041-8668-47C1C14030F6"},
			"cn":        {"Alice Anders"},
			"givenName": {"Alice"},
			"sn":        {"Anders"},
			"mail":      {"alice@example.com", "a@example.com"},
			"title":     {"Lead"},
		}
		for k, v := range over {
			attrs[k] = v
		}
		return goldap.NewEntry("uid=alice,ou=people,dc=example,dc=com", attrs)
	}
	u, ok := olDecoder().User(entry(nil), EntryOptions{}, nil)
	if !ok {
		t.Fatal("rejected")
	}
	want := &connectorv1.User{
		Id: "4c65828e-846d-1041-8668-47c1c14030f6", Mail: ptr("alice@example.com"), DisplayName: ptr("Alice Anders"),
		GivenName: ptr("Alice"), Surname: ptr("Anders"), Department: ptr(""), JobTitle: ptr("Lead"),
		Enabled: ptr(true), AccountEnabled: ptr(true), Guest: ptr(false),
	}
	if !proto.Equal(u, want) {
		t.Errorf("user\n %v\nwant\n %v", u, want)
	}

	locked, _ := olDecoder().User(entry(map[string][]string{"pwdAccountLockedTime": {"000001010000Z"}}), EntryOptions{}, nil)
	if locked.Enabled == nil || *locked.Enabled || locked.GetAccountEnabled() {
		t.Errorf("locked user: enabled %v", locked.Enabled)
	}
	display, _ := olDecoder().User(entry(map[string][]string{"displayName": {"Ally"}}), EntryOptions{}, nil)
	if display.GetDisplayName() != "Ally" {
		t.Errorf("displayName not preferred to cn: %q", display.GetDisplayName())
	}

	custom := olDecoder()
	custom.DisabledAttr = "" // disabled_filter not a presence filter: the caller tells
	if u, _ := custom.User(entry(nil), EntryOptions{}, nil); u.Enabled != nil || u.AccountEnabled != nil {
		t.Errorf("custom disabled_filter, caller silent: enabled %v, want unknown", u.Enabled)
	}
	if u, _ := custom.User(entry(nil), EntryOptions{Disabled: ptr(true)}, nil); u.Enabled == nil || *u.Enabled {
		t.Errorf("caller said disabled: enabled %v", u.Enabled)
	}
	if u, _ := custom.User(entry(nil), EntryOptions{Disabled: ptr(false)}, nil); !u.GetEnabled() {
		t.Error("caller said enabled")
	}
}

func TestDecodePartialChange(t *testing.T) {
	// A DirSync change: the mail only, with objectGUID.
	e := goldap.NewEntry("CN=Bob,CN=Users,DC=example,DC=test", map[string][]string{
		"objectGUID":   {string(mustHex(t, guidHex))},
		"mail":         {"bob2@example.test"},
		"instanceType": {"4"},
	})
	u, ok := adDecoder().User(e, EntryOptions{Partial: true}, nil)
	if !ok {
		t.Fatal("rejected")
	}
	want := &connectorv1.User{Id: guidString, Mail: ptr("bob2@example.test"), Guest: ptr(false)}
	if !proto.Equal(u, want) {
		t.Errorf("partial user\n %v\nwant\n %v", u, want)
	}
	// The same entry in a full read: everything absent is empty.
	full, _ := adDecoder().User(e, EntryOptions{}, nil)
	if full.DisplayName == nil || *full.DisplayName != "" || full.Surname == nil || full.Enabled != nil {
		t.Errorf("full read of a sparse entry: %v", full)
	}
	// A cleared mail (attribute without values) with a primary address.
	cleared := goldap.NewEntry("CN=Bob", map[string][]string{
		"objectGUID": {string(mustHex(t, guidHex))}, "mail": {}, "proxyAddresses": {"SMTP:bob@example.test"},
	})
	if u, _ := adDecoder().User(cleared, EntryOptions{Partial: true}, nil); u.GetMail() != "bob@example.test" {
		t.Errorf("cleared mail: %v", u.Mail)
	}
	// displayName cleared, cn unchanged: unknown; cn changed too: cn.
	noDisplay := goldap.NewEntry("CN=Bob", map[string][]string{"objectGUID": {string(mustHex(t, guidHex))}, "displayName": {}})
	if u, _ := adDecoder().User(noDisplay, EntryOptions{Partial: true}, nil); u.DisplayName != nil {
		t.Errorf("display name %q, want unknown", *u.DisplayName)
	}
	noDisplay.Attributes = append(noDisplay.Attributes, goldap.NewEntryAttribute("cn", []string{"Bob B"}))
	if u, _ := adDecoder().User(noDisplay, EntryOptions{Partial: true}, nil); u.GetDisplayName() != "Bob B" {
		t.Errorf("display name %v, want cn", u.DisplayName)
	}
	// A tombstone.
	tomb := goldap.NewEntry(`CN=carol\0ADEL:5f8c3e2a-9b1d-474e-a1c2-d3e4f5061728,CN=Deleted Objects,DC=example,DC=test`, map[string][]string{
		"objectGUID": {string(mustHex(t, guidHex))}, "isDeleted": {"TRUE"},
	})
	if u, _ := adDecoder().User(tomb, EntryOptions{Partial: true}, nil); u.GetRemoved().GetReason() != "deleted" || u.GetId() != guidString || u.Mail != nil {
		t.Errorf("tombstone: %v", u)
	}
}

func TestDecodeRejectsBadIDs(t *testing.T) {
	var tally Tally
	for name, e := range map[string]*goldap.Entry{
		"AD no objectGUID":    adUser(t, map[string][]string{"objectGUID": nil}),
		"AD 15 bytes":         adUser(t, map[string][]string{"objectGUID": {string(make([]byte, 15))}}),
		"AD 17 bytes":         adUser(t, map[string][]string{"objectGUID": {string(make([]byte, 17))}}),
		"AD objectGUID empty": adUser(t, map[string][]string{"objectGUID": {}}),
	} {
		if u, ok := adDecoder().User(e, EntryOptions{}, &tally); ok {
			t.Errorf("%s: kept as %v", name, u)
		}
	}
	for name, id := range map[string]string{
		"OpenLDAP binary": string(mustHex(t, guidHex)),
		"OpenLDAP hex":    guidHex,
		"OpenLDAP junk":   "\xff\xfe-not-a-uuid",
	} {
		e := goldap.NewEntry("uid=x", map[string][]string{"entryUUID": {id}, "cn": {"x"}})
		if u, ok := olDecoder().User(e, EntryOptions{}, &tally); ok {
			t.Errorf("%s: kept as %v", name, u)
		}
		if g, ok := olDecoder().Group(e, EntryOptions{}, &tally); ok {
			t.Errorf("%s group: kept as %v", name, g)
		}
	}
	if tally.Rejected[RejectIDNotGUID] != 10 || len(tally.Rejected) != 1 {
		t.Errorf("rejected %v, want {id_not_guid: 10}", tally.Rejected)
	}
	// An AD attr_id holding a textual GUID is read as text.
	text := adUser(t, map[string][]string{"objectGUID": {guidString}})
	if u, ok := adDecoder().User(text, EntryOptions{}, nil); !ok || u.GetId() != guidString {
		t.Errorf("textual GUID in AD: %v %v", u, ok)
	}
}

func TestDecodeInvalidUTF8(t *testing.T) {
	var tally Tally
	u, ok := adDecoder().User(adUser(t, map[string][]string{
		"displayName": {"Fr\xffnk"}, "sn": {"Fo\xc3ster"}, "mail": {"frank@example.test"},
	}), EntryOptions{}, &tally)
	if !ok {
		t.Fatal("rejected")
	}
	if u.GetDisplayName() != "Fr\uFFFDnk" || u.GetSurname() != "Fo\uFFFDster" {
		t.Errorf("display %q surname %q", u.GetDisplayName(), u.GetSurname())
	}
	if tally.Sanitized[SanitizeInvalidUTF8] != 2 {
		t.Errorf("sanitized %v, want 2 invalid_utf8", tally.Sanitized)
	}
	var p connectorv1.Progress
	tally.Fill(&p)
	tally.Sanitize(SanitizeInvalidUTF8)
	if p.GetSanitized()[SanitizeInvalidUTF8] != 2 || p.Rejected != nil {
		t.Errorf("Fill: %v (must not share the map)", &p)
	}
	var nilTally *Tally
	nilTally.Reject("x")
	nilTally.Fill(&p)
	if p.Sanitized != nil {
		t.Error("nil Tally filled counts")
	}
}

func TestGroupKinds(t *testing.T) {
	group := func(over map[string][]string) *goldap.Entry {
		attrs := map[string][]string{
			"objectGUID":     {string(mustHex(t, guidHex))},
			"cn":             {"engineers"},
			"sAMAccountName": {"engineers-sam"},
			"groupType":      {"-2147483646"},
		}
		for k, v := range over {
			if v == nil {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		return goldap.NewEntry("CN=engineers,OU=Staff,DC=example,DC=test", attrs)
	}
	tests := []struct {
		name      string
		over      map[string][]string
		kind      string
		mail, sec *bool
	}{
		{"global security", nil, "security", ptr(false), ptr(true)},
		{"global security with mail", map[string][]string{"mail": {"eng@example.test"}}, "mail_security", ptr(true), ptr(true)},
		{"universal security", map[string][]string{"groupType": {"-2147483640"}}, "security", ptr(false), ptr(true)},
		{"builtin (system) security", map[string][]string{"groupType": {"-2147483643"}}, "security", ptr(false), ptr(true)},
		{"unsigned form", map[string][]string{"groupType": {"2147483650"}}, "security", ptr(false), ptr(true)},
		{"universal distribution with mail", map[string][]string{"groupType": {"8"}, "mail": {"everyone@example.test"}}, "distribution", ptr(true), ptr(false)},
		{"global distribution without mail", map[string][]string{"groupType": {"2"}}, "distribution", ptr(false), ptr(false)},
	}
	for _, tt := range tests {
		g, ok := adDecoder().Group(group(tt.over), EntryOptions{}, nil)
		if !ok {
			t.Errorf("%s: rejected", tt.name)
			continue
		}
		want := &connectorv1.Group{Id: guidString, DisplayName: ptr("engineers"), Mail: ptr(firstOr(tt.over["mail"], "")),
			Kind: ptr(tt.kind), MailEnabled: tt.mail, SecurityEnabled: tt.sec}
		if !proto.Equal(g, want) {
			t.Errorf("%s:\n %v\nwant\n %v", tt.name, g, want)
		}
		if g.GroupTypesKnown || len(g.GroupTypes) != 0 {
			t.Errorf("%s: group_types set: %v", tt.name, g)
		}
	}

	var tally Tally
	if g, ok := adDecoder().Group(group(map[string][]string{"groupType": {"security"}}), EntryOptions{}, &tally); ok {
		t.Errorf("groupType not a number: kept as %v", g)
	}
	if tally.Rejected[RejectGroupTypeInvalid] != 1 {
		t.Errorf("rejected %v", tally.Rejected)
	}
	// Display name: displayName, else cn, else sAMAccountName.
	if g, _ := adDecoder().Group(group(map[string][]string{"displayName": {"Engineering"}}), EntryOptions{}, nil); g.GetDisplayName() != "Engineering" {
		t.Errorf("displayName: %q", g.GetDisplayName())
	}
	if g, _ := adDecoder().Group(group(map[string][]string{"cn": nil}), EntryOptions{}, nil); g.GetDisplayName() != "engineers-sam" {
		t.Errorf("sAMAccountName fallback: %q", g.GetDisplayName())
	}
	// No groupType (not readable, or a partial change): kind unknown.
	if g, _ := adDecoder().Group(group(map[string][]string{"groupType": nil}), EntryOptions{}, nil); g.Kind != nil || g.SecurityEnabled != nil {
		t.Errorf("no groupType: %v", g)
	}
	// A partial change of groupType only: a distribution group's kind is
	// known; a security group's depends on mail, which it does not say.
	partial := goldap.NewEntry("CN=x", map[string][]string{"objectGUID": {string(mustHex(t, guidHex))}, "groupType": {"8"}})
	if g, _ := adDecoder().Group(partial, EntryOptions{Partial: true}, nil); g.GetKind() != "distribution" || g.Mail != nil || g.MailEnabled != nil {
		t.Errorf("partial distribution: %v", g)
	}
	partial = goldap.NewEntry("CN=x", map[string][]string{"objectGUID": {string(mustHex(t, guidHex))}, "groupType": {"-2147483646"}})
	if g, _ := adDecoder().Group(partial, EntryOptions{Partial: true}, nil); g.Kind != nil || !g.GetSecurityEnabled() {
		t.Errorf("partial security: %v", g)
	}

	// OpenLDAP: access groups; with a mail address, mail_security.
	ol := func(mail ...string) *goldap.Entry {
		attrs := map[string][]string{"entryUUID": {"4c65828e-846d-1041-8668-47c1c14030f6"}, "cn": {"engineers"},
			"objectClass": {"groupOfNames"}, "member": {"uid=alice,ou=people,dc=example,dc=com"}}
		if len(mail) > 0 {
			attrs["mail"] = mail
		}
		return goldap.NewEntry("cn=engineers,ou=groups,dc=example,dc=com", attrs)
	}
	if g, _ := olDecoder().Group(ol(), EntryOptions{}, nil); g.GetKind() != "security" || g.GetDisplayName() != "engineers" ||
		!g.GetSecurityEnabled() || g.GetMailEnabled() || g.MailEnabled == nil {
		t.Errorf("OpenLDAP group: %v", g)
	}
	if g, _ := olDecoder().Group(ol("eng@example.com"), EntryOptions{}, nil); g.GetKind() != "mail_security" || !g.GetMailEnabled() {
		t.Errorf("OpenLDAP group with mail: %v", g)
	}
}

func TestDecoderAttributes(t *testing.T) {
	ad := adDecoder()
	users, groups := ad.UserAttributes(), ad.GroupAttributes()
	for _, want := range []string{"objectGUID", "mail", "proxyAddresses", "userAccountControl", "userPrincipalName", "cn"} {
		if !contains(users, want) {
			t.Errorf("AD user attributes %v lack %s", users, want)
		}
	}
	for _, want := range []string{"objectGUID", "groupType", "member", "sAMAccountName", "mail"} {
		if !contains(groups, want) {
			t.Errorf("AD group attributes %v lack %s", groups, want)
		}
	}
	ol := olDecoder()
	users, groups = ol.UserAttributes(), ol.GroupAttributes()
	for _, want := range []string{"entryUUID", "pwdAccountLockedTime", "departmentNumber"} {
		if !contains(users, want) {
			t.Errorf("OpenLDAP user attributes %v lack %s", users, want)
		}
	}
	if contains(users, "") || contains(users, "userAccountControl") {
		t.Errorf("OpenLDAP user attributes %v", users)
	}
	if !contains(groups, "uniqueMember") || !contains(groups, "member") {
		t.Errorf("OpenLDAP group attributes %v", groups)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// The attributes a sync asks for are read under each flavor's names, an
// absent one as empty in a full read and unknown in a change; Exchange's
// recipient type gives the mailbox's purpose.
func TestDecodeIdentity(t *testing.T) {
	d := adDecoder()
	d.WantAttributes([]string{"preferredLanguage", "companyName", "extensionAttribute3", "manager", "usageLocation"})
	d.MailboxPurpose = true
	for _, a := range []string{"preferredLanguage", "company", "extensionAttribute3", "msExchRecipientTypeDetails"} {
		if !slices.Contains(d.UserAttributes(), a) {
			t.Errorf("the user search does not ask for %s: %v", a, d.UserAttributes())
		}
	}
	u, _ := d.User(adUser(t, map[string][]string{"preferredLanguage": {"de-DE"}, "company": {"Contoso"}, "msExchRecipientTypeDetails": {"4"}}), EntryOptions{}, nil)
	if want := map[string]string{"preferredLanguage": "de-DE", "companyName": "Contoso", "extensionAttribute3": "", "manager": ""}; !maps.Equal(u.GetAttributes(), want) {
		t.Errorf("attributes %v; want %v (usageLocation is not read)", u.GetAttributes(), want)
	}
	if u.GetMailboxPurpose() != "shared" {
		t.Errorf("mailbox purpose %v; want shared", u.MailboxPurpose)
	}
	// A manager's DN is taken out, to be resolved to its ID.
	u, _ = d.User(adUser(t, map[string][]string{"manager": {"CN=Max Mustermann,OU=Staff,DC=example,DC=test"}}), EntryOptions{}, nil)
	ref, ok := takeManager(u)
	if !ok || ref.user != guidString || ref.dn != normalOrRaw("cn=max mustermann,ou=staff,dc=example,dc=test") {
		t.Errorf("manager reference %+v, %v", ref, ok)
	}
	if _, still := u.GetAttributes()["manager"]; still {
		t.Error("the manager's DN is still among the attributes sent")
	}
	// A change that does not carry them leaves them unknown.
	e := goldap.NewEntry("CN=Bob", map[string][]string{"objectGUID": {string(mustHex(t, guidHex))}, "company": {"Fabrikam"}})
	if u, _ := d.User(e, EntryOptions{Partial: true}, nil); !maps.Equal(u.GetAttributes(), map[string]string{"companyName": "Fabrikam"}) || u.MailboxPurpose != nil || u.ProxyAddressesKnown {
		t.Errorf("partial: attributes %v, purpose %v, proxies known %v", u.GetAttributes(), u.MailboxPurpose, u.ProxyAddressesKnown)
	}
	// OpenLDAP: employeeNumber is the employee ID; no proxy addresses.
	o := olDecoder()
	o.WantAttributes([]string{"employeeId", "extensionAttribute3"})
	ou, _ := o.User(goldap.NewEntry("uid=alice,ou=people,dc=example,dc=com", map[string][]string{
		"entryUUID": {"4C65828E-846D-1041-8668-47C1C14030F6"}, "cn": {"Alice Anders"}, "employeeNumber": {"E-17"},
	}), EntryOptions{}, nil)
	if !maps.Equal(ou.GetAttributes(), map[string]string{"employeeId": "E-17"}) || ou.ProxyAddressesKnown {
		t.Errorf("OpenLDAP: attributes %v, proxies known %v", ou.GetAttributes(), ou.ProxyAddressesKnown)
	}
}

func TestMailboxPurpose(t *testing.T) {
	for v, want := range map[string]string{"1": "user", "2": "linked", "4": "shared", "16": "room", "32": "equipment",
		"2147483648": "user", "34359738368": "shared", "8589934592": "room", "17179869184": "equipment", "128": "", "": "", "x": ""} {
		if got, _ := MailboxPurpose(v); got != want {
			t.Errorf("MailboxPurpose(%q) = %q; want %q", v, got, want)
		}
	}
}
