package main

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
	"github.com/dirsync/dirsync/internal/testenv"
)

// Every generated person is someone else, whatever -users says.
func TestColleaguesDistinct(t *testing.T) {
	seen := map[string]int{}
	for _, p := range ldaptest.People() {
		seen[p.Key] = -1
	}
	for i := range maxUsers {
		p, _ := colleague(i)
		if j, ok := seen[p.Key]; ok {
			t.Fatalf("people %d and %d are both %s", j, i, p.Key)
		}
		seen[p.Key] = i
		if len(p.Key) > 20 {
			t.Errorf("%s: Active Directory's sAMAccountName takes at most 20 characters", p.Key)
		}
	}
}

// The seed names each entry once and gives every group a member, for
// both flavors and any number of users (a groupOfNames needs one), and
// for Active Directory, which refuses a member that does not exist yet,
// writes members before their groups.
func TestDemoSeed(t *testing.T) {
	for _, flavor := range []string{testenv.FlavorActiveDirectory, testenv.FlavorOpenLDAP} {
		d := ldaptest.Directory{Flavor: flavor, Base: "ou=corp,dc=example,dc=com"}
		if d.AD() {
			d.Base = "OU=Corp,DC=example,DC=test"
		}
		for _, users := range []int{0, 1, 8, 40, maxUsers} {
			seed, groups := demoSeed(d, users)
			written, n := map[string]bool{}, 0
			for _, rec := range strings.Split(strings.TrimSpace(seed), "\n\n") {
				lines := strings.Split(rec, "\n")
				dn := strings.TrimPrefix(lines[0], "dn: ")
				if b, ok := strings.CutPrefix(lines[0], "dn:: "); ok {
					v, err := base64.StdEncoding.DecodeString(b)
					if err != nil {
						t.Fatal(err)
					}
					dn = string(v)
				}
				if strings.Contains(rec, "\nchangetype: modify") {
					continue // the test directory's cycle
				}
				if written[dn] {
					t.Fatalf("%s, %d users: %s is written twice", flavor, users, dn)
				}
				written[dn] = true
				isGroup, members := false, 0
				for _, l := range lines[1:] {
					isGroup = isGroup || l == "objectClass: group" || l == "objectClass: groupOfNames"
					if m, ok := strings.CutPrefix(l, "member: "); ok {
						members++
						if d.AD() && !written[m] {
							t.Errorf("%s, %d users: %s has member %s before it exists", flavor, users, dn, m)
						}
					}
				}
				if isGroup {
					n++
					if members == 0 {
						t.Errorf("%s, %d users: group %s has no member", flavor, users, dn)
					}
				}
			}
			if n != groups {
				t.Errorf("%s, %d users: %d groups written, demoSeed says %d", flavor, users, n, groups)
			}
			if users == 40 && groups < 15 {
				t.Errorf("%s: only %d groups with 40 users", flavor, groups)
			}
		}
	}
}
