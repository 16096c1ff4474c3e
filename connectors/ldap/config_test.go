package ldap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// writeSelfSignedCA writes a PEM CA certificate to path.
func writeSelfSignedCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func rawConfig(t *testing.T, baseDir string, m map[string]any) *connectorv1.Config {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &connectorv1.Config{Json: b, BaseDir: baseDir}
}

// configDir holds the files the config tests name: a CA, password files.
func configDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeSelfSignedCA(t, filepath.Join(dir, "ca.pem"))
	for name, content := range map[string]string{
		"password":   " s3cret pass \r\n\n",
		"empty":      "\n",
		"notpem.pem": "hello",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func validConfig() map[string]any {
	return map[string]any{
		"url":                "ldaps://dc1.corp.example.com",
		"bind_dn":            "CN=dirsync,OU=Service Accounts,DC=corp,DC=example,DC=com",
		"bind_password_file": "password",
		"ca_file":            "ca.pem",
		"base_dn":            "DC=corp,DC=example,DC=com",
	}
}

func with(k string, v any) map[string]any {
	m := validConfig()
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
	return m
}

func TestValidateConfigAcceptsValid(t *testing.T) {
	dir := configDir(t)
	for name, m := range map[string]map[string]any{
		"minimal": validConfig(),
		"every key": {
			"url": "ldap://127.0.0.1:3890/", "start_tls": true, "bind_dn": "cn=admin,dc=example,dc=com",
			"bind_password": "adminsecret", "ca_file": "ca.pem", "base_dn": "dc=example,dc=com",
			"user_filter": "(&(objectClass=inetOrgPerson)(mail=*))", "group_filter": "(objectClass=groupOfNames)",
			"flavor": "openldap", "page_size": 1000, "follow_referrals": false, "disabled_filter": "(pwdLockout=TRUE)",
			"timeout": 5, "attr_id": "entryUUID", "attr_mail": "mail", "attr_display_name": "cn",
			"attr_given_name": "givenName", "attr_surname": "sn", "attr_department": "ou", "attr_job_title": "title",
			"attr_upn": "uid", "attr_member": "uniqueMember",
		},
		"AD account name": with("bind_dn", "dirsync@corp.example.com"),
		"AD down-level":   with("bind_dn", `CORP\dirsync`),
		"IPv6 host":       with("url", "ldaps://[::1]:636"),
		"escaped base":    with("base_dn", `OU=Smith\, John,DC=corp,DC=example,DC=com`),
		"nulls": func() map[string]any {
			m := validConfig()
			m["flavor"], m["page_size"], m["start_tls"] = nil, nil, nil
			return m
		}(),
	} {
		problems, err := New(nil).ValidateConfig(context.Background(), rawConfig(t, dir, m))
		if err != nil || len(problems) != 0 {
			t.Errorf("%s: problems %v, err %v", name, problems, err)
		}
	}
}

func TestValidateConfigNamesTheKey(t *testing.T) {
	dir := configDir(t)
	tests := []struct {
		name  string
		cfg   map[string]any
		field string
		msg   string // part of the message
	}{
		{"no url", with("url", nil), "url", "required"},
		{"http url", with("url", "https://dc1.example.com"), "url", "ldaps://"},
		{"url without host", with("url", "ldap:///dc=example"), "url", "no host"},
		{"url with base DN path", with("url", "ldap://dc1/dc=example,dc=com"), "url", "no path"},
		{"url with query", with("url", "ldap://dc1/?cn"), "url", "no path or query"},
		{"url with credentials", with("url", "ldap://me:pw@dc1"), "url", "credentials"},
		{"url with bad port", with("url", "ldap://dc1:99999"), "url", "port"},
		{"url not a string", with("url", 389), "url", "string"},
		{"start_tls with ldaps", with("start_tls", true), "start_tls", "already uses TLS"},
		{"start_tls a string", with("start_tls", "yes"), "start_tls", "true or false"},
		{"no bind_dn", with("bind_dn", nil), "bind_dn", "required"},
		{"bind_dn bad DN", with("bind_dn", "cn=a,=b"), "bind_dn", "not a DN"},
		{"bind_dn bare name", with("bind_dn", "dirsync"), "bind_dn", "neither a DN"},
		{"bind_dn AD form for OpenLDAP", func() map[string]any {
			m := with("bind_dn", "dirsync@example.com")
			m["flavor"] = "openldap"
			return m
		}(), "bind_dn", "OpenLDAP binds with a DN"},
		{"no password", with("bind_password_file", nil), "bind_password", "one of bind_password or bind_password_file is required"},
		{"both passwords", with("bind_password", "x-pass-1"), "bind_password", "only one"},
		{"blank password", func() map[string]any {
			m := with("bind_password_file", nil)
			m["bind_password"] = "  "
			return m
		}(), "bind_password", "blank"},
		{"missing password file", with("bind_password_file", "nope"), "bind_password_file", "cannot read"},
		{"empty password file", with("bind_password_file", "empty"), "bind_password_file", "empty"},
		{"missing ca file", with("ca_file", "missing.pem"), "ca_file", "cannot read"},
		{"ca file without certificates", with("ca_file", "notpem.pem"), "ca_file", "no PEM certificate"},
		{"no base_dn", with("base_dn", nil), "base_dn", "required"},
		{"base_dn bad", with("base_dn", "DC=corp,DC"), "base_dn", "not a DN"},
		{"base_dn unescaped quote", with("base_dn", `OU="x",DC=corp`), "base_dn", "not a DN"},
		{"user_filter unbalanced", with("user_filter", "(&(objectClass=user)"), "user_filter", "unexpected end of filter"},
		{"user_filter without parentheses", with("user_filter", "objectClass=user"), "user_filter", "does not start with an '('"},
		{"group_filter position", with("group_filter", "(objectClass=group))"), "group_filter", "extra at end"},
		{"disabled_filter bad", with("disabled_filter", "(pwdAccountLockedTime=*"), "disabled_filter", "not a valid LDAP filter"},
		{"disabled_filter with AD", func() map[string]any {
			m := with("disabled_filter", "(pwdAccountLockedTime=*)")
			m["flavor"] = "active_directory"
			return m
		}(), "disabled_filter", "OpenLDAP only"},
		{"unknown flavor", with("flavor", "389ds"), "flavor", "not a flavor"},
		{"page_size zero", with("page_size", 0), "page_size", "from 1 to 5000"},
		{"page_size too large", with("page_size", 10000), "page_size", "from 1 to 5000"},
		{"page_size fraction", with("page_size", 10.5), "page_size", "whole number"},
		{"page_size a string", with("page_size", "500"), "page_size", "without quotes"},
		{"timeout zero", with("timeout", 0), "timeout", "from 1 to 3600"},
		{"timeout a duration string", with("timeout", "30s"), "timeout", "number"},
		{"follow_referrals a string", with("follow_referrals", "no"), "follow_referrals", "true or false"},
		{"follow_referrals true, not written yet", with("follow_referrals", true), "follow_referrals", "not supported yet"},
		{"attr_id with option", with("attr_id", "objectGUID;binary"), "attr_id", "not an LDAP attribute name"},
		{"attr_mail with space", with("attr_mail", "e mail"), "attr_mail", "not an LDAP attribute name"},
		{"attr_member bad OID", with("attr_member", "2.5..4"), "attr_member", "not an LDAP attribute name"},
		{"insecure_skip_verify not offered", with("insecure_skip_verify", true), "insecure_skip_verify", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, err := New(nil).ValidateConfig(context.Background(), rawConfig(t, dir, tt.cfg))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range problems {
				if p.GetField() == tt.field && strings.Contains(p.GetMessage(), tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem on %q containing %q, got %v", tt.field, tt.msg, problems)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		problems, err := New(nil).ValidateConfig(context.Background(), &connectorv1.Config{Json: []byte("[1]")})
		if err != nil || len(problems) != 1 {
			t.Fatalf("problems %v, err %v", problems, err)
		}
	})
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	dir := configDir(t)
	c, err := ParseConfig(rawConfig(t, dir, validConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PageSize != 500 || c.Timeout != 30*time.Second || c.FollowReferrals || c.StartTLS || c.Flavor != FlavorUnknown {
		t.Errorf("defaults: %+v", c)
	}
	if c.CAFile != filepath.Join(dir, "ca.pem") || c.BindPasswordFile != filepath.Join(dir, "password") {
		t.Errorf("paths not resolved against base_dir: %q %q", c.CAFile, c.BindPasswordFile)
	}
	if pool, err := c.CertPool(); err != nil || pool == nil {
		t.Errorf("CertPool: %v", err)
	}
	if got := c.UserFilter(FlavorActiveDirectory); got != "(&(objectCategory=person)(objectClass=user))" {
		t.Errorf("AD user filter %q", got)
	}
	if got := c.GroupFilter(FlavorActiveDirectory); got != "(objectClass=group)" {
		t.Errorf("AD group filter %q", got)
	}
	if got := c.UserFilter(FlavorOpenLDAP); got != "(objectClass=inetOrgPerson)" {
		t.Errorf("OpenLDAP user filter %q", got)
	}
	if got := c.GroupFilter(FlavorOpenLDAP); got != "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))" {
		t.Errorf("OpenLDAP group filter %q", got)
	}
	ad, ol := c.Attributes(FlavorActiveDirectory), c.Attributes(FlavorOpenLDAP)
	if ad.ID != "objectGUID" || ad.UPN != "userPrincipalName" || ad.Department != "department" || ad.JobTitle != "title" ||
		!slices.Equal(ad.Members, []string{"member"}) {
		t.Errorf("AD attributes %+v", ad)
	}
	if ol.ID != "entryUUID" || ol.UPN != "" || ol.DisplayName != "displayName" ||
		!slices.Equal(ol.Members, []string{"member", "uniqueMember"}) {
		t.Errorf("OpenLDAP attributes %+v", ol)
	}
	if d := c.Decoder(FlavorOpenLDAP); d.DisabledAttr != "pwdAccountLockedTime" {
		t.Errorf("default disabled_filter is a presence filter: DisabledAttr %q", d.DisabledAttr)
	}
	if d := c.Decoder(FlavorActiveDirectory); d.DisabledAttr != "" {
		t.Errorf("AD decoder DisabledAttr %q", d.DisabledAttr)
	}

	m := validConfig()
	m["user_filter"], m["attr_mail"], m["attr_member"], m["disabled_filter"] = "(uid=*)", "otherMailbox", "memberUid", "(&(a=1)(b=2))"
	o, err := ParseConfig(rawConfig(t, dir, m))
	if err != nil {
		t.Fatal(err)
	}
	if o.UserFilter(FlavorOpenLDAP) != "(uid=*)" || o.UserFilter(FlavorActiveDirectory) != "(uid=*)" {
		t.Error("user_filter not used for both flavors")
	}
	for _, f := range []Flavor{FlavorActiveDirectory, FlavorOpenLDAP} {
		if a := o.Attributes(f); a.Mail != "otherMailbox" || !slices.Equal(a.Members, []string{"memberUid"}) {
			t.Errorf("%s overrides: %+v", f, a)
		}
	}
	if d := o.Decoder(FlavorOpenLDAP); d.DisabledAttr != "" {
		t.Errorf("a compound disabled_filter cannot be decided from the entry, DisabledAttr %q", d.DisabledAttr)
	}
}

func TestPasswordFile(t *testing.T) {
	dir := configDir(t)
	c, err := ParseConfig(rawConfig(t, dir, validConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := c.Password(); err != nil || p != " s3cret pass " {
		t.Errorf("Password() = %q, %v; want trailing newlines removed, spaces kept", p, err)
	}
	inline := with("bind_password_file", nil)
	inline["bind_password"] = " inline pw "
	c, err = ParseConfig(rawConfig(t, dir, inline))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Password(); p != " inline pw " {
		t.Errorf("inline password %q", p)
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	const pw = "Hunter2-Secret!"
	dir := configDir(t)
	m := with("bind_password_file", nil)
	m["bind_password"] = pw
	c, err := ParseConfig(rawConfig(t, dir, m))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), pw) {
		t.Error("printing a Config shows the password")
	}
	if b, _ := json.Marshal(c); strings.Contains(string(b), pw) {
		t.Error("JSON of a Config shows the password")
	}
	// Every problem of a config with an inline password, none showing it.
	bad := with("bind_password_file", nil)
	bad["bind_password"] = pw
	bad["url"], bad["base_dn"], bad["user_filter"], bad["page_size"] = "http://x", "x", "(", -1
	bad["bind_password_file"] = "password"
	_, err = ParseConfig(rawConfig(t, dir, bad))
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("config error %v", err)
	}
}

func TestDescribe(t *testing.T) {
	d, err := New(nil).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.GetName() != "ldap" || d.GetVersion() != Version || d.GetDescription() == "" {
		t.Errorf("describe: %v", d)
	}
	if !slices.Equal(d.GetDefaultGroupKinds(), []string{"security", "distribution"}) {
		t.Errorf("default group kinds %v", d.GetDefaultGroupKinds())
	}
	fields := map[string]*connectorv1.ConfigField{}
	for _, f := range d.GetConfigFields() {
		if fields[f.GetName()] != nil {
			t.Errorf("field %s twice", f.GetName())
		}
		fields[f.GetName()] = f
		if f.GetDescription() == "" || f.GetType() == connectorv1.ConfigField_TYPE_UNSPECIFIED {
			t.Errorf("field %s: %v", f.GetName(), f)
		}
	}
	want := []string{"url", "start_tls", "bind_dn", "bind_password", "bind_password_file", "ca_file", "base_dn",
		"user_filter", "group_filter", "flavor", "page_size", "follow_referrals", "disabled_filter", "timeout",
		"attr_id", "attr_mail", "attr_display_name", "attr_given_name", "attr_surname", "attr_department",
		"attr_job_title", "attr_upn", "attr_member"}
	if len(fields) != len(want) {
		t.Errorf("want %d fields, got %d", len(want), len(fields))
	}
	for _, k := range want {
		if fields[k] == nil {
			t.Errorf("no field %s", k)
		}
	}
	for _, k := range []string{"url", "bind_dn", "base_dn"} {
		if !fields[k].GetRequired() {
			t.Errorf("%s should be required", k)
		}
	}
	pw, file := fields["bind_password"], fields["bind_password_file"]
	if !pw.GetSensitive() || pw.GetOneOfGroup() == "" || pw.GetOneOfGroup() != file.GetOneOfGroup() || pw.GetRequired() || file.GetRequired() {
		t.Errorf("password fields: %v %v", pw, file)
	}
	for k, typ := range map[string]connectorv1.ConfigField_Type{
		"start_tls": connectorv1.ConfigField_TYPE_BOOL, "follow_referrals": connectorv1.ConfigField_TYPE_BOOL,
		"page_size": connectorv1.ConfigField_TYPE_NUMBER, "timeout": connectorv1.ConfigField_TYPE_NUMBER,
		"url": connectorv1.ConfigField_TYPE_STRING,
	} {
		if fields[k].GetType() != typ {
			t.Errorf("%s has type %v, want %v", k, fields[k].GetType(), typ)
		}
	}
	for k, def := range map[string]string{"page_size": "500", "timeout": "30", "start_tls": "false",
		"follow_referrals": "false", "disabled_filter": "(pwdAccountLockedTime=*)", "attr_mail": "mail"} {
		if fields[k].GetDefaultValue() != def {
			t.Errorf("%s default %q, want %q", k, fields[k].GetDefaultValue(), def)
		}
	}
	if !strings.Contains(fields["attr_id"].GetDescription(), "objectGUID") || !strings.Contains(fields["attr_id"].GetDescription(), "entryUUID") {
		t.Errorf("attr_id description names neither default: %q", fields["attr_id"].GetDescription())
	}
}
