package testenv

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// parseLDIF reads entries and the four change types, with base64
// values, folded lines and comments; a malformed record names its line.
func TestLDAPParseLDIF(t *testing.T) {
	tests := []struct {
		name    string
		ldif    string
		want    []ldifRecord
		wantErr string
	}{
		{
			name: "entry with base64, folding and comments",
			ldif: "version: 1\n\n# people\ndn: uid=a,dc=x\nobjectClass: top\nobjectClass: person\n# a comment\n  folded into it\ncn:: QWxpY2U=\nsn: And\n ers\n",
			want: []ldifRecord{{line: 4, dn: "uid=a,dc=x", changeType: "add", attrs: []ldap.Attribute{
				{Type: "objectClass", Vals: []string{"top", "person"}},
				{Type: "cn", Vals: []string{"Alice"}},
				{Type: "sn", Vals: []string{"Anders"}},
			}}},
		},
		{
			name: "modify, delete and modrdn",
			ldif: "dn: uid=a,dc=x\nchangetype: modify\nreplace: mail\nmail: a@x\n-\nadd: description\ndescription: one\ndescription: two\n-\ndelete: title\n-\n\n" +
				"dn: uid=b,dc=x\nchangetype: delete\n\n" +
				"dn: uid=c,dc=x\r\nchangetype: modrdn\r\nnewrdn: uid=d\r\ndeleteoldrdn: 0\r\nnewsuperior: ou=y,dc=x\r\n",
			want: []ldifRecord{
				{line: 1, dn: "uid=a,dc=x", changeType: "modify", mods: []ldap.Change{
					{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: "mail", Vals: []string{"a@x"}}},
					{Operation: ldap.AddAttribute, Modification: ldap.PartialAttribute{Type: "description", Vals: []string{"one", "two"}}},
					{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: "title"}},
				}},
				{line: 13, dn: "uid=b,dc=x", changeType: "delete"},
				{line: 16, dn: "uid=c,dc=x", changeType: "modrdn", newRDN: "uid=d", newSup: "ou=y,dc=x"},
			},
		},
		{name: "no dn", ldif: "cn: a\n", wantErr: "line 1: a record starts with dn:"},
		{name: "unknown changetype", ldif: "dn: cn=a\nchangetype: rename\n", wantErr: `changetype "rename"`},
		{name: "bad base64", ldif: "dn: cn=a\ncn:: !!\n", wantErr: "line 2: base64"},
		{name: "missing separator", ldif: "dn: cn=a\nchangetype: modify\nreplace: cn\ncn: b\nsn: c\n", wantErr: "line 5:"},
		{name: "URL value", ldif: "dn: cn=a\njpegPhoto:< file:///x\n", wantErr: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLDIF(tt.ldif)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// UnicodePwd is what the research note's seed holds for Passw0rd!frank.
func TestLDAPUnicodePwd(t *testing.T) {
	if got, want := UnicodePwd("Passw0rd!frank"), "IgBQAGEAcwBzAHcAMAByAGQAIQBmAHIAYQBuAGsAIgA="; got != want {
		t.Fatalf("UnicodePwd = %s; want %s", got, want)
	}
}

const slapdSeed = `dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Anders
sn: Anders
mail: alice@example.com
userPassword: alicepw

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Brown
sn: Brown
userPassword: bobpw
`

// A seeded slapd: the admin, the reader and a seeded user bind and read
// the people; a wrong password and a write by the reader are refused.
func TestSlapdBindAndSearch(t *testing.T) {
	s := StartSlapd(t, slapdSeed)
	tests := []struct {
		name, dn, password string
		wantCode           uint16 // of the bind; 0: success
	}{
		{"admin", s.AdminDN, s.AdminPassword, 0},
		{"reader", s.ReaderDN, s.ReaderPassword, 0},
		{"seeded user", "uid=alice,ou=people,dc=example,dc=com", "alicepw", 0},
		{"wrong password", s.ReaderDN, "wrong", ldap.LDAPResultInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := dialLDAP(t, s.URL)
			err := conn.Bind(tt.dn, tt.password)
			if tt.wantCode != 0 {
				if !ldap.IsErrorWithCode(err, tt.wantCode) {
					t.Fatalf("bind: %v; want result %d", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := searchUIDs(t, conn, "ou=people,dc=example,dc=com", "mail"); got != "alice=alice@example.com bob=" {
				t.Fatalf("people: %q", got)
			}
		})
	}
	reader := dialLDAP(t, s.URL)
	if err := reader.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("uid=bob,ou=people,dc=example,dc=com", nil)
	mod.Replace("mail", []string{"bob@example.com"})
	if err := reader.Modify(mod); !ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights) {
		t.Fatalf("the reader's write: %v; want insufficient access", err)
	}
}

// Apply's changes hold across a Restart, on the same URL; the restart
// loses syncprov's session log, so an old cookie gets the present phase
// (a syncIdSet of the unchanged entries) where it got the change alone.
func TestSlapdApplyAndRestart(t *testing.T) {
	s := StartSlapd(t, slapdSeed)
	base := "ou=people,dc=example,dc=com"
	_, cookie, _ := syncRefresh(t, s.Dial(t), base, nil)

	s.Apply(t, "dn: uid=bob,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: mail\nmail: bob@example.com\n")
	changed, cookie2, present := syncRefresh(t, s.Dial(t), base, cookie)
	if changed != "bob" || present {
		t.Fatalf("before the restart: entries %q, present phase %v; want bob alone", changed, present)
	}

	s.Apply(t, "dn: uid=carol,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Carol\nsn: Clark\nuid: carol\n\n"+
		"dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: modrdn\nnewrdn: uid=alicia\ndeleteoldrdn: 0\n")
	url := s.URL
	s.Restart(t)
	if s.URL != url {
		t.Fatalf("URL %s after the restart; was %s", s.URL, url)
	}
	if got := searchUIDs(t, s.Dial(t), base, "mail"); got != "alice=alice@example.com alicia=alice@example.com bob=bob@example.com carol=" {
		t.Fatalf("people after the restart: %q", got)
	}
	_, _, present = syncRefresh(t, s.Dial(t), base, cookie2)
	if !present {
		t.Fatal("an old cookie after the restart got no present phase: syncprov kept its session log")
	}
}

// LDAPS and StartTLS verify against CAFile, and fail against another CA.
func TestSlapdTLS(t *testing.T) {
	s := StartSlapd(t, "")
	conn, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(s.TLSConfig(t)))
	if err != nil {
		t.Fatalf("ldaps verified with %s: %v", s.CAFile, err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	plain := dialLDAP(t, s.URL)
	if err := plain.StartTLS(s.TLSConfig(t)); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	other := s.TLSConfig(t)
	other.RootCAs = nil // the system's CAs, which did not sign it
	if c, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(other)); err == nil {
		_ = c.Close()
		t.Fatal("ldaps verified without the test CA")
	}
}

// The proxy records each search as sent and the entries returned for
// it, also across the pages of a paged search; Reset forgets them;
// after StartTLS it forwards without recording.
func TestLDAPProxy(t *testing.T) {
	s := StartSlapd(t, slapdSeed)
	p := StartLDAPProxy(t, s.URL)
	conn := dialLDAP(t, p.URL())
	if err := conn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Search(ldap.NewSearchRequest("uid=alice,ou=people,dc=example,dc=com", ldap.ScopeBaseObject,
		ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"cn", "mail"}, nil)); err != nil {
		t.Fatal(err)
	}
	res, err := conn.SearchWithPaging(ldap.NewSearchRequest("dc=example,dc=com", ldap.ScopeWholeSubtree,
		ldap.NeverDerefAliases, 0, 0, false, "(&(objectClass=inetOrgPerson)(uid=*))", nil, nil), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 2 {
		t.Fatalf("%d entries; want alice and bob", len(res.Entries))
	}
	got := p.Searches()
	if len(got) < 3 {
		t.Fatalf("%d searches recorded; want the base search and at least 2 pages: %+v", len(got), got)
	}
	want := ProxiedSearch{BaseDN: "uid=alice,ou=people,dc=example,dc=com", Scope: ldap.ScopeBaseObject,
		Filter: "(objectClass=*)", Attributes: []string{"cn", "mail"}, Entries: 1, Done: true}
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("base search recorded as %+v; want %+v", got[0], want)
	}
	pagedEntries := 0
	for _, ps := range got[1:] {
		if ps.Filter != "(&(objectClass=inetOrgPerson)(uid=*))" || ps.Scope != ldap.ScopeWholeSubtree || !ps.Done ||
			!reflect.DeepEqual(ps.Controls, []string{ldap.ControlTypePaging}) {
			t.Errorf("page recorded as %+v", ps)
		}
		pagedEntries += ps.Entries
	}
	if pagedEntries != 2 || p.Entries() != 3 {
		t.Errorf("%d paged entries, %d in all; want 2 and 3", pagedEntries, p.Entries())
	}

	p.Reset()
	if n, e := len(p.Searches()), p.Entries(); n != 0 || e != 0 {
		t.Fatalf("after Reset: %d searches, %d entries", n, e)
	}
	// A fresh connection: slapd refuses StartTLS now and then right
	// after an operation ("operations are outstanding"), proxy or not.
	tlsConn := dialLDAP(t, p.URL())
	if err := tlsConn.StartTLS(s.TLSConfig(t)); err != nil {
		t.Fatalf("StartTLS through the proxy: %v", err)
	}
	if err := tlsConn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	if got := searchUIDs(t, tlsConn, "ou=people,dc=example,dc=com", "mail"); got != "alice=alice@example.com bob=" {
		t.Fatalf("people over TLS through the proxy: %q", got)
	}
	if n := len(p.Searches()); n != 0 {
		t.Fatalf("%d searches recorded inside TLS", n)
	}
}

// sambaSeed has an enabled user, a disabled one and nested groups, in
// the shapes the research note verified.
func sambaSeed() string {
	return `dn: OU=Staff,DC=example,DC=test
objectClass: organizationalUnit
ou: Staff

dn: CN=Frank Foster,OU=Staff,DC=example,DC=test
objectClass: user
sAMAccountName: frank
userPrincipalName: frank@example.test
mail: frank@example.test
unicodePwd:: ` + UnicodePwd("Passw0rd!frank") + `
userAccountControl: 512

dn: CN=Gina Green,OU=Staff,DC=example,DC=test
objectClass: user
sAMAccountName: gina
userPrincipalName: gina@example.test
unicodePwd:: ` + UnicodePwd("Passw0rd!gina") + `
userAccountControl: 514

dn: CN=sec-inner,OU=Staff,DC=example,DC=test
objectClass: group
sAMAccountName: sec-inner
groupType: -2147483646
member: CN=Frank Foster,OU=Staff,DC=example,DC=test

dn: CN=sec-outer,OU=Staff,DC=example,DC=test
objectClass: group
sAMAccountName: sec-outer
groupType: -2147483646
member: CN=sec-inner,OU=Staff,DC=example,DC=test
member: CN=Gina Green,OU=Staff,DC=example,DC=test
`
}

// A seeded Samba DC: binds give AD's sub-codes, a nested-group search
// through the proxy is counted as the client saw it, and LDAPS verifies
// with CAFile.
func TestSambaDC(t *testing.T) {
	s := StartSambaDC(t, sambaSeed())
	binds := []struct {
		name, dn, password string
		wantErr            string // a part of the bind error; "": success
	}{
		{"admin", s.AdminDN, s.AdminPassword, ""},
		{"reader", s.ReaderDN, s.ReaderPassword, ""},
		{"seeded user by UPN", "frank@example.test", "Passw0rd!frank", ""},
		{"wrong password", "frank@example.test", "wrong", "data 52e"},
		{"disabled user", "gina@example.test", "Passw0rd!gina", "data 533"},
	}
	for _, tt := range binds {
		t.Run(tt.name, func(t *testing.T) {
			err := dialLDAP(t, s.URL).Bind(tt.dn, tt.password)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("bind: %v; want %q", err, tt.wantErr)
			}
		})
	}

	p := StartLDAPProxy(t, s.URL)
	conn := dialLDAP(t, p.URL())
	if err := conn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}
	filter := "(memberOf:1.2.840.113556.1.4.1941:=CN=sec-outer,OU=Staff,DC=example,DC=test)"
	res, err := conn.Search(ldap.NewSearchRequest(s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"sAMAccountName"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range res.Entries {
		names = append(names, e.GetAttributeValue("sAMAccountName"))
	}
	if got := strings.Join(slices.Sorted(slices.Values(names)), " "); got != "frank gina sec-inner" {
		t.Fatalf("transitive members of sec-outer: %q", got)
	}
	searches := p.Searches()
	if len(searches) != 1 || searches[0].Entries != len(res.Entries) || p.Entries() != len(res.Entries) ||
		searches[0].BaseDN != s.BaseDN || !searches[0].Done || !strings.EqualFold(searches[0].Filter, filter) {
		t.Fatalf("the proxy recorded %+v (%d entries); the client got %d entries", searches, p.Entries(), len(res.Entries))
	}

	tlsConn, err := ldap.DialURL(s.LDAPSURL, ldap.DialWithTLSConfig(s.TLSConfig(t)))
	if err != nil {
		t.Fatalf("ldaps verified with %s: %v", s.CAFile, err)
	}
	defer func() { _ = tlsConn.Close() }()
	if err := tlsConn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
		t.Fatal(err)
	}

	s.Apply(t, "dn: CN=Gina Green,OU=Staff,DC=example,DC=test\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 512\n")
	s.Restart(t)
	if err := dialLDAP(t, s.URL).Bind("gina@example.test", "Passw0rd!gina"); err != nil {
		t.Fatalf("gina, enabled before the restart: %v", err)
	}
}

// Two Samba instances of one test run at once on their own addresses.
func TestSambaDCTwoInstances(t *testing.T) {
	a := StartSambaDC(t, "")
	b := StartSambaDC(t, "")
	if a.URL == b.URL {
		t.Fatalf("both instances on %s", a.URL)
	}
	for _, s := range []*LDAPServer{a, b} {
		if got := searchSAM(t, s.Dial(t), s.ReaderDN); got != "reader" {
			t.Fatalf("%s: reader is %q", s.URL, got)
		}
	}
}

func dialLDAP(t *testing.T, url string) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// searchUIDs is "uid=attr-value ..." of the entries with a uid below
// base, sorted, for comparing a directory's state in one string.
func searchUIDs(t *testing.T, conn *ldap.Conn, base, attr string) string {
	t.Helper()
	res, err := conn.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=*)", []string{"uid", attr}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range res.Entries {
		for _, uid := range e.GetAttributeValues("uid") {
			out = append(out, uid+"="+e.GetAttributeValue(attr))
		}
	}
	return strings.Join(slices.Sorted(slices.Values(out)), " ")
}

func searchSAM(t *testing.T, conn *ldap.Conn, dn string) string {
	t.Helper()
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"sAMAccountName"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries[0].GetAttributeValue("sAMAccountName")
}

// syncRefresh runs one RFC 4533 refreshOnly sync of the people below
// base from cookie (nil: all), and returns the uids it sent as entries,
// the cookie to keep, and whether it went through the present phase.
func syncRefresh(t *testing.T, conn *ldap.Conn, base string, cookie []byte) (uids string, next []byte, present bool) {
	t.Helper()
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"uid"}, nil)
	r := conn.Syncrepl(context.Background(), req, 16, ldap.SyncRequestModeRefreshOnly, cookie, false)
	var got []string
	next = cookie
	for r.Next() {
		if e := r.Entry(); e != nil {
			got = append(got, e.GetAttributeValue("uid"))
		}
		for _, c := range r.Controls() {
			switch c := c.(type) {
			case *ldap.ControlSyncInfo:
				if c.SyncIdSet != nil && !c.SyncIdSet.RefreshDeletes {
					present = true
				}
			case *ldap.ControlSyncDone:
				if len(c.Cookie) > 0 {
					next = c.Cookie
				}
			}
		}
	}
	if err := r.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("sync of %s: %v", base, err)
	}
	return strings.Join(slices.Sorted(slices.Values(got)), " "), next, present
}
