package testenv

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// GrantDeletedObjects lets the reader, a plain domain user, see the
// Deleted Objects container and the tombstones in it, as dsacls /G
// account:LCRP does; before it the container looks empty to the reader.
func TestSambaGrantDeletedObjects(t *testing.T) {
	s := StartSambaDC(t, "dn: CN=leaver,CN=Users,DC=example,DC=test\nobjectClass: user\nsAMAccountName: leaver\n")
	s.Apply(t, "dn: CN=leaver,CN=Users,DC=example,DC=test\nchangetype: delete\n")
	tombstones := func() (container bool, n int) {
		t.Helper()
		conn := dialLDAP(t, s.URL)
		if err := conn.Bind(s.ReaderDN, s.ReaderPassword); err != nil {
			t.Fatal(err)
		}
		res, err := conn.Search(ldap.NewSearchRequest("CN=Deleted Objects,"+s.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"objectClass", "isDeleted"}, []ldap.Control{ldap.NewControlMicrosoftShowDeleted()}))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Entries {
			switch {
			case e.DN == "CN=Deleted Objects,"+s.BaseDN:
				container = len(e.GetAttributeValues("objectClass")) > 0
			case e.GetAttributeValue("isDeleted") == "TRUE":
				n++
			}
		}
		return container, n
	}
	if container, n := tombstones(); container || n != 0 {
		t.Fatalf("before the grant the reader sees the container's classes (%v) and %d tombstones; want neither", container, n)
	}
	if err := s.GrantDeletedObjects(s.ReaderDN); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantDeletedObjects(s.ReaderDN); err != nil {
		t.Fatalf("granting again: %v", err)
	}
	if container, n := tombstones(); !container || n != 1 {
		t.Fatalf("after the grant the reader sees the container's classes: %v, and %d tombstones; want true and 1", container, n)
	}
}
