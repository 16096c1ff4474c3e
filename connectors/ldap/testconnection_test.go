package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/testenv"
)

// allChecks are TestConnection's checks in their order.
var allChecks = []string{CheckConfig, CheckConnect, CheckBind, CheckFlavor, CheckBaseDN, CheckUsers, CheckGroups, CheckChanges}

// connCase is one connection test against a seeded directory.
type connCase struct {
	name string
	// override replaces keys of the directory's reader config (ldaps://
	// with ca_file); a nil value removes the key.
	override map[string]any
	// setup changes the directory first (Samba's lockout).
	setup func(t *testing.T)
	// failed is the check that must fail, with code; "" when all pass.
	failed, code string
	// check (failed when "") must say each of says in its detail or
	// remedy.
	check string
	says  []string
}

// runConnCase runs tc and checks the response: the checks in order, all
// passed but the last when one fails, that one with the code and a
// remedy, and no text carrying a password.
func runConnCase(t *testing.T, cfg *connectorv1.Config, tc connCase, passwords ...string) {
	t.Helper()
	resp, err := New(nil).TestConnection(context.Background(), cfg)
	if err != nil {
		t.Fatalf("TestConnection: %v", err)
	}
	checks := resp.GetChecks()
	for i, ch := range checks {
		if i >= len(allChecks) || ch.GetName() != allChecks[i] {
			t.Fatalf("check %d is %q; want the order %v", i, ch.GetName(), allChecks)
		}
		text := strings.Join([]string{ch.GetName(), ch.GetDetail(), ch.GetRemedy(), ch.GetCode()}, "\n")
		for _, pw := range passwords {
			if strings.Contains(text, pw) {
				t.Errorf("check %s shows the password %q: %s", ch.GetName(), pw, text)
			}
		}
		if !ch.GetOk() && i != len(checks)-1 {
			t.Errorf("check %s failed but the test went on: %v", ch.GetName(), ch)
		}
	}
	if tc.failed == "" {
		if !resp.GetOk() || len(checks) != len(allChecks) || !checks[len(checks)-1].GetOk() {
			t.Fatalf("want every check passed; got ok=%v %v", resp.GetOk(), checks)
		}
	} else {
		last := checks[len(checks)-1]
		if resp.GetOk() || last.GetName() != tc.failed || last.GetOk() || last.GetCode() != tc.code || last.GetRemedy() == "" {
			t.Fatalf("want check %s failed with code %s and a remedy; got ok=%v, last %v", tc.failed, tc.code, resp.GetOk(), last)
		}
	}
	name := tc.check
	if name == "" {
		name = tc.failed
	}
	for _, ch := range checks {
		if ch.GetName() != name {
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(ch.GetDetail()+"\n"+ch.GetRemedy(), s) {
				t.Errorf("check %s does not say %q: detail %q, remedy %q", name, s, ch.GetDetail(), ch.GetRemedy())
			}
		}
	}
}

// casePassword is the bind password tc uses.
func casePassword(tc connCase, d directory) string {
	if pw, ok := tc.override["bind_password"].(string); ok {
		return pw
	}
	return d.srv.ReaderPassword
}

// A config the connector refuses fails the config check, naming the keys
// at fault, before any network access; the password stays out.
func TestConnectionConfigProblems(t *testing.T) {
	const pw = "Sup3r-secret-pw"
	tests := []struct {
		name string
		m    map[string]any
		keys []string
	}{
		{"missing keys", map[string]any{"bind_password": pw}, []string{"url", "bind_dn", "base_dn"}},
		{"user_filter syntax", map[string]any{"url": "ldaps://dc1.example.test", "bind_dn": "cn=r,dc=x", "bind_password": pw,
			"base_dn": "dc=x", "user_filter": "(&(objectClass=user)"}, []string{"user_filter"}},
		{"unknown key", map[string]any{"url": "ldaps://dc1.example.test", "bind_dn": "cn=r,dc=x", "bind_password": pw,
			"base_dn": "dc=x", "bind_passwd": pw}, []string{"bind_passwd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := connCase{failed: CheckConfig, code: CodeInvalidConfig, says: tt.keys}
			runConnCase(t, rawConfig(t, t.TempDir(), tt.m), tc, pw)
		})
	}
}

// Against OpenLDAP: the reader passes over ldaps://, StartTLS and plain
// ldap://; each failure is the check and code an admin acts on.
func TestConnectionSlapd(t *testing.T) {
	d := startDirectory(t, FlavorOpenLDAP, 0)
	seedLimitedReaders(t, d.srv)
	dir := t.TempDir()
	otherCA := filepath.Join(dir, "other-ca.pem")
	writeSelfSignedCA(t, otherCA)
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(d.srv.ReaderPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	closed, err := testenv.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	limited := func(cn string) map[string]any {
		return map[string]any{"bind_dn": "cn=" + cn + ",dc=example,dc=com", "bind_password": limitedPassword}
	}
	tests := []connCase{
		{name: "ldaps with ca_file", check: CheckFlavor, says: []string{"OpenLDAP (detected from the rootDSE)"}},
		{name: "StartTLS with ca_file", override: map[string]any{"url": d.srv.URL, "start_tls": true},
			check: CheckConnect, says: []string{"StartTLS"}},
		{name: "plain ldap, flavor set, password file",
			override: map[string]any{"url": d.srv.URL, "ca_file": nil, "flavor": "openldap", "bind_password": nil, "bind_password_file": pwFile},
			check:    CheckFlavor, says: []string{"OpenLDAP (configured by flavor)"}},
		{name: "no group matches", override: map[string]any{"group_filter": "(cn=no-such-group)"},
			check: CheckGroups, says: []string{"matched no group"}},
		{name: "changes through syncprov", check: CheckChanges, says: []string{"read only changes", "syncprov"}},
		{name: "closed port", override: map[string]any{"url": "ldap://" + closed, "ca_file": nil},
			failed: CheckConnect, code: CodeUnreachable, says: []string{closed, "url"}},
		{name: "ldaps without ca_file", override: map[string]any{"ca_file": nil},
			failed: CheckConnect, code: CodeTLSFailed, says: []string{"ca_file"}},
		{name: "ldaps with another CA", override: map[string]any{"ca_file": otherCA},
			failed: CheckConnect, code: CodeTLSFailed, says: []string{"ca_file"}},
		{name: "wrong password", override: map[string]any{"bind_password": "Wr0ng-reader-pw"},
			failed: CheckBind, code: CodeInvalidCredentials, says: []string{"bind_password"}},
		{name: "base_dn not found", override: map[string]any{"base_dn": "ou=nowhere,dc=example,dc=com"},
			failed: CheckBaseDN, code: CodeBaseDNNotFound, says: []string{"ou=nowhere,dc=example,dc=com"}},
		// Both servers take any filter that compiles (an unknown attribute
		// or matching rule matches nothing), so a bad filter is the config
		// check's: CheckFilter compiles it.
		{name: "user_filter syntax", override: map[string]any{"user_filter": "(&(objectClass=inetOrgPerson)"},
			failed: CheckConfig, code: CodeInvalidConfig, says: []string{"user_filter"}},
		{name: "user_filter matches nothing", override: map[string]any{"user_filter": "(uid=no-such-user)"},
			failed: CheckUsers, code: CodeNoUsers, says: []string{"(uid=no-such-user)", "base_dn", "user_filter"}},
		{name: "attr_id not a GUID", override: map[string]any{"attr_id": "uid"},
			failed: CheckUsers, code: CodeInvalidConfig, says: []string{"attr_id"}},
		{name: "reader may not read mail", override: limited("nomail"),
			failed: CheckUsers, code: CodeMissingAccess, says: []string{"may not read mail", "cn=nomail"}},
		{name: "reader may not read entryUUID", override: limited("noid"),
			failed: CheckUsers, code: CodeMissingAccess, says: []string{"may not read entryUUID"}},
		{name: "reader may not read groups' entryUUID", override: limited("nogroupid"),
			failed: CheckGroups, code: CodeMissingAccess, says: []string{"groups returned", "entryUUID"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runConnCase(t, d.config(t, "", tc.override), tc, casePassword(tc, d), d.srv.ReaderPassword)
		})
	}
}

// limitedPassword is the password of seedLimitedReaders' accounts.
const limitedPassword = "limited-reader-pw"

// seedLimitedReaders adds three readers that slapd's ACLs keep from one
// attribute each: mail, entryUUID, and the groups' entryUUID. The rules
// go first in cn=config (bound as its rootDN, see testenv's slapdConfig)
// and "break" to the usual rules for everyone else.
func seedLimitedReaders(t *testing.T, srv *testenv.LDAPServer) {
	t.Helper()
	var ldif strings.Builder
	for _, cn := range []string{"nomail", "noid", "nogroupid"} {
		fmt.Fprintf(&ldif, "dn: cn=%s,dc=example,dc=com\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: %s\nuserPassword: %s\n\n",
			cn, cn, limitedPassword)
	}
	srv.Apply(t, ldif.String())
	conn, err := goldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.Bind("cn=admin,cn=config", "configsecret"); err != nil {
		t.Fatal(err)
	}
	mod := goldap.NewModifyRequest("olcDatabase={1}mdb,cn=config", nil)
	mod.Add("olcAccess", []string{
		`{0}to attrs=mail by dn.exact="cn=nomail,dc=example,dc=com" none by * break`,
		`{1}to attrs=entryUUID by dn.exact="cn=noid,dc=example,dc=com" none by * break`,
		`{2}to filter=(objectClass=groupOfNames) attrs=entryUUID by dn.exact="cn=nogroupid,dc=example,dc=com" none by * break`,
	})
	if err := conn.Modify(mod); err != nil {
		t.Fatalf("adding the limited readers' ACLs: %v", err)
	}
}

// sambaPassword is the password of every account sambaAccounts seeds.
const sambaPassword = "Passw0rd!account"

// sambaAccounts are accounts whose binds Active Directory refuses, each
// for its reason (the AD sub-code in the name's comment).
func sambaAccounts() string {
	past := adTime(time.Now().Add(-48 * time.Hour))
	var b strings.Builder
	for _, a := range []struct{ name, attrs string }{
		{"disabled", "userAccountControl: 514\n"},                              // 533
		{"mustchange", "userAccountControl: 512\npwdLastSet: 0\n"},             // 773
		{"expired", "userAccountControl: 512\naccountExpires: " + past + "\n"}, // 701
		// logonHours: 21 bytes, a bit for each hour of the week, none set.
		{"nohours", "userAccountControl: 512\nlogonHours:: " + strings.Repeat("A", 28) + "\n"}, // 530
		{"locked", "userAccountControl: 512\n"},                                                // 775 once locked
	} {
		fmt.Fprintf(&b, "dn: CN=%s,CN=Users,DC=example,DC=test\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@example.test\nunicodePwd:: %s\n%s\n",
			a.name, a.name, a.name, testenv.UnicodePwd(sambaPassword), a.attrs)
	}
	return b.String()
}

// adTime is t as Active Directory's 100 ns intervals since 1601.
func adTime(t time.Time) string {
	const since1601 = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return fmt.Sprint((t.Unix() + since1601) * 10_000_000)
}

// Against a Samba AD DC: the reader passes; each refused bind gives Active
// Directory's sub-code as its code. Samba 4.17 does not expire passwords
// by maxPwdAge or a PSO for a simple bind (msDS-UserPasswordExpiryTimeComputed
// stays "never"), and refuses pwdLastSet other than 0 and -1, so 532 is
// covered by errors_test.go's mapping only.
func TestConnectionSamba(t *testing.T) {
	d := startDirectory(t, FlavorActiveDirectory, 0)
	d.srv.Apply(t, sambaAccounts())
	as := func(name string) map[string]any {
		return map[string]any{"bind_dn": name + "@example.test", "bind_password": sambaPassword}
	}
	tests := []connCase{
		{name: "reader over ldaps", check: CheckFlavor,
			says: []string{"Active Directory (detected from the rootDSE)", "Samba", "functional level"}},
		{name: "reader by UPN over plain ldap", override: map[string]any{"url": d.srv.URL, "ca_file": nil, "bind_dn": "reader@example.test"},
			check: CheckBind, says: []string{"reader@example.test"}},
		// A plain domain user may not read Deleted Objects: the test
		// passes and says what every sync will cost, and how to grant it.
		{name: "reader: deletions hidden", check: CheckChanges, says: []string{"whole directory", "Deleted Objects", "dsacls"}},
		{name: "administrator: changes by USN", override: map[string]any{"bind_dn": d.srv.AdminDN, "bind_password": d.srv.AdminPassword},
			check: CheckChanges, says: []string{"read only changes", "uSNChanged"}},
		{name: "wrong password", override: map[string]any{"bind_password": "Wr0ng!Reader-pw"},
			failed: CheckBind, code: CodeWrongPassword, says: []string{"52e", "bind_password"}},
		// Samba, like Active Directory, does not tell an unknown account
		// from a wrong password: 52e, not 525.
		{name: "unknown user by UPN", override: map[string]any{"bind_dn": "nobody@example.test", "bind_password": sambaPassword},
			failed: CheckBind, code: CodeWrongPassword, says: []string{"52e"}},
		{name: "disabled account", override: as("disabled"), failed: CheckBind, code: CodeAccountDisabled, says: []string{"533", "Enable"}},
		{name: "must change password", override: as("mustchange"), failed: CheckBind, code: CodeMustChangePassword, says: []string{"773"}},
		{name: "account expired", override: as("expired"), failed: CheckBind, code: CodeAccountExpired, says: []string{"701"}},
		{name: "outside logon hours", override: as("nohours"), failed: CheckBind, code: CodeLogonHours, says: []string{"530"}},
		{name: "base_dn not found", override: map[string]any{"base_dn": "OU=Nowhere,DC=example,DC=test"},
			failed: CheckBaseDN, code: CodeBaseDNNotFound, says: []string{"OU=Nowhere,DC=example,DC=test"}},
		// Last: the lockout threshold counts every account's wrong
		// passwords from now on.
		{name: "account locked", override: as("locked"), setup: func(t *testing.T) { lockOut(t, d.srv, "locked@example.test") },
			failed: CheckBind, code: CodeAccountLocked, says: []string{"775", "Unlock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			runConnCase(t, d.config(t, "", tc.override), tc, casePassword(tc, d), d.srv.ReaderPassword, sambaPassword)
		})
	}
}

// lockOut sets the domain's lockout threshold to one wrong password and
// gives one for upn, which locks it; the threshold is reset at the end.
func lockOut(t *testing.T, srv *testenv.LDAPServer, upn string) {
	t.Helper()
	threshold := func(n string) error {
		mod := goldap.NewModifyRequest(srv.BaseDN, nil)
		mod.Replace("lockoutThreshold", []string{n})
		return srv.Dial(t).Modify(mod)
	}
	if err := threshold("1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := threshold("0"); err != nil {
			t.Errorf("resetting the lockout threshold: %v", err)
		}
	})
	conn, err := goldap.DialURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if err := conn.Bind(upn, "Wr0ng!to-lock"); err == nil {
		t.Fatal("a wrong password bound")
	}
}

// A canceled context stops the test with an error wrapping it, before it
// dials or while a call waits on a server that never answers.
func TestConnectionCanceled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	// The server accepts a connection and never answers.
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	// timeout far beyond the test's wait: only the cancel can end the bind.
	cfg := rawConfig(t, t.TempDir(), map[string]any{"url": "ldap://" + ln.Addr().String(), "bind_dn": "cn=reader,dc=example,dc=com",
		"bind_password": "Never-answered-pw", "base_dn": "dc=example,dc=com", "timeout": 3600})

	tests := []struct {
		name   string
		cancel func(context.CancelFunc)
	}{
		{"before the call", func(cancel context.CancelFunc) { cancel() }},
		{"during the bind", func(cancel context.CancelFunc) {
			go func() {
				c := <-accepted
				cancel()
				_ = c.Close()
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.cancel(cancel)
			done := make(chan error, 1)
			go func() {
				resp, err := New(nil).TestConnection(ctx, cfg)
				if err == nil {
					err = fmt.Errorf("no error; checks %v", resp.GetChecks())
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "Never-answered-pw") {
					t.Fatalf("err %v; want one wrapping context.Canceled, without the password", err)
				}
			case <-time.After(time.Minute): // a deadline for a hang, not a measurement
				t.Fatal("TestConnection did not return after the cancel")
			}
		})
	}
}
