package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The directory StartSlapd serves. The passwords are plaintext in the
// config: this is a throwaway server on loopback.
const (
	slapdBaseDN         = "dc=example,dc=com"
	slapdAdminDN        = "cn=admin,dc=example,dc=com"
	slapdAdminPassword  = "adminsecret"
	slapdReaderDN       = "cn=reader,dc=example,dc=com"
	slapdReaderPassword = "readersecret"
)

// slapdConfig is slapd's cn=config, loaded offline with slapadd -n0:
// one mdb database with the syncprov overlay (so that a client can
// sync with RFC 4533 cookies, and a restart loses the in-memory session
// log) and ppolicy (account lockout), TLS from the test CA, and ACLs by
// which every bound user, the reader too, reads everything but
// passwords. The config database's own rootdn lets a test change
// cn=config online. @DIR@ is the instance directory.
const slapdConfig = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: @DIR@/slapd.pid
olcArgsFile: @DIR@/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: @DIR@/tls/ca.crt
olcTLSCertificateFile: @DIR@/tls/server.crt
olcTLSCertificateKeyFile: @DIR@/tls/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}syncprov
olcModuleLoad: {2}ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 10000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: configsecret

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=com
olcRootDN: cn=admin,dc=example,dc=com
olcRootPW: adminsecret
olcDbDirectory: @DIR@/data
olcDbMaxSize: 268435456
olcDbIndex: objectClass eq
olcDbIndex: entryCSN eq
olcDbIndex: entryUUID eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by users read by * none

dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 1000

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,dc=example,dc=com
`

// slapdBase is what every StartSlapd directory holds before the test's
// seed: the suffix entry, the reader, and the default password policy
// (lockout after 5 failed binds until an admin deletes
// pwdAccountLockedTime).
const slapdBase = `dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: cn=reader,dc=example,dc=com
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
description: a service account that reads everything and writes nothing
userPassword: readersecret

dn: ou=policies,dc=example,dc=com
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,dc=example,dc=com
objectClass: pwdPolicy
objectClass: device
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 5
pwdLockoutDuration: 0
`

// errPortBusy is a slapd that could not listen because another process
// took its port between the choice and the start.
var errPortBusy = errors.New("port already in use")

// StartSlapd starts an OpenLDAP slapd on two free 127.0.0.1 ports
// (ldap:// and ldaps://) serving dc=example,dc=com, and stops it when
// the test ends. seedLDIF ("" for none) holds plain entries (no
// changetype), parents first, loaded with slapadd before the start
// below the base entries (dc=example,dc=com, cn=reader and
// ou=policies with its default policy). The test is skipped where
// slapd is not installed.
func StartSlapd(t testing.TB, seedLDIF string) *LDAPServer {
	t.Helper()
	s, err := LaunchSlapd(t.TempDir(), seedLDIF)
	if errors.Is(err, ErrSlapdUnavailable) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after t.TempDir's removal, so it runs first.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping %s: %v", s.name, err)
		}
	})
	return s
}

// prepareSlapd writes the instance below dir: the TLS files, cn=config
// in slapd.d, and the database in data, loaded with the base entries
// and the seed. slapadd, offline, is much faster than adding online.
func prepareSlapd(slapadd, dir, seedLDIF string) (caFile string, err error) {
	for _, sub := range []string{"slapd.d", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return "", fmt.Errorf("slapd instance directory: %w", err)
		}
	}
	caFile, err = writeTestTLS(filepath.Join(dir, "tls"), []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"})
	if err != nil {
		return "", err
	}
	steps := []struct{ file, content, db string }{
		{"config.ldif", strings.ReplaceAll(slapdConfig, "@DIR@", dir), "0"},
		{"base.ldif", slapdBase, "1"},
		{"seed.ldif", seedLDIF, "1"},
	}
	for _, st := range steps {
		if strings.TrimSpace(st.content) == "" {
			continue
		}
		path := filepath.Join(dir, st.file)
		if err := os.WriteFile(path, []byte(st.content), 0o600); err != nil {
			return "", fmt.Errorf("writing %s: %w", path, err)
		}
		args := []string{"-n" + st.db, "-F", filepath.Join(dir, "slapd.d"), "-l", path}
		if st.db == "1" {
			args = append(args, "-q") // fewer integrity checks, much faster; the schema is still checked
		}
		out, err := exec.Command(slapadd, args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("slapadd %s (%w): %s", st.file, err, out)
		}
	}
	return caFile, nil
}

// startSlapd runs slapd in the foreground (-d none: the PID is slapd's,
// and it prints only errors) and waits until it answers on url.
func startSlapd(slapd, dir, url, ldapsURL string, out *LockedBuffer) (*ldapChild, error) {
	mark := out.Len()
	c, err := startLDAPChild(out, false, slapd, "-h", url+"/ "+ldapsURL+"/", "-F", filepath.Join(dir, "slapd.d"), "-d", "none")
	if err != nil {
		return nil, err
	}
	if err := waitLDAPReady(c, url); err != nil {
		if c.exited() && strings.Contains(out.String()[mark:], "errno=98") {
			return nil, fmt.Errorf("slapd on %s, %s: %w", url, ldapsURL, errPortBusy)
		}
		return nil, err
	}
	return c, nil
}
