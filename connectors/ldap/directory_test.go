package ldap

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
	"github.com/dirsync/dirsync/internal/testenv"
)

// flavorOf names a connector flavor as testenv does.
func flavorOf(f Flavor) string { return string(f) }

// directory is the test directory (ldaptest) on a running server.
type directory struct {
	ldaptest.Directory
	srv *testenv.LDAPServer
}

// startDirectory starts a server of flavor with the test directory.
func startDirectory(t *testing.T, flavor Flavor, pad int) directory {
	t.Helper()
	d := ldaptest.Start(t, flavorOf(flavor), pad)
	return directory{Directory: d, srv: d.Srv}
}

// config is the connector's config block for the directory, bound as the
// server's least privileged reader over ldaps://, or plain ldap:// at url
// when given (a counting proxy).
func (d directory) config(t *testing.T, url string, override map[string]any) *connectorv1.Config {
	t.Helper()
	m := map[string]any{
		"url":           d.Srv.LDAPSURL,
		"ca_file":       d.Srv.CAFile,
		"bind_dn":       d.Srv.ReaderDN,
		"bind_password": d.Srv.ReaderPassword,
		"base_dn":       d.Base,
	}
	if url != "" {
		m["url"] = url
		delete(m, "ca_file")
	}
	for k, v := range override {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return rawConfig(t, t.TempDir(), m)
}

// idOf reads the ID the server gave the entry at dn, as the connector
// sends it.
func idOf(t *testing.T, d directory, dn string) string {
	t.Helper()
	attr := DefaultAttributes(Flavor(d.Flavor)).ID
	res, err := d.Srv.Dial(t).Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("reading the ID of %s: %v", dn, err)
	}
	v := res.Entries[0].GetRawAttributeValue(attr)
	id, ok := GUIDFromBytes(v)
	if !ok {
		id, ok = CanonicalGUID(string(v))
	}
	if !ok {
		t.Fatalf("%s: %s %q is no GUID", dn, attr, v)
	}
	return id
}
