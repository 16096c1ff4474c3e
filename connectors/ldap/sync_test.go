package ldap

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/connectors/connectortest"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
	"github.com/dirsync/dirsync/internal/testenv"
)

var flavors = []Flavor{FlavorOpenLDAP, FlavorActiveDirectory}

// A full read of the seeded directory sends every user as it was written
// and every group with its members expanded through nested groups and a
// cycle, in paged searches the server sees.
func TestFullRead(t *testing.T) {
	for _, flavor := range flavors {
		t.Run(string(flavor), func(t *testing.T) {
			d := startDirectory(t, flavor, 0)
			proxy := testenv.StartLDAPProxy(t, d.Srv.URL)
			r, err := connectortest.Collect(context.Background(), New(nil),
				&connectorv1.SyncRequest{Config: d.config(t, proxy.URL(), nil), GroupTypes: connector.GroupKinds(),
					Attributes: []string{connector.AttrManager, connector.AttrPreferredLanguage}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range r.Problems {
				t.Error(p)
			}
			if !r.Final.GetComplete() {
				t.Error("a full read ended incomplete")
			}
			byName := map[string]*connectorv1.User{}
			idKey := map[string]string{}
			for _, u := range r.Users {
				byName[u.GetDisplayName()] = u
			}
			if len(byName) != len(ldaptest.People()) {
				t.Errorf("read %d users; the directory has %d", len(byName), len(ldaptest.People()))
			}
			for _, p := range ldaptest.People() {
				u := byName[p.DisplayName()]
				if u == nil {
					t.Errorf("%s: not read", p.DisplayName())
					continue
				}
				idKey[u.GetId()] = p.Key
				mail := d.Email(p)
				checks := []struct {
					field, got, want string
				}{
					{"mail", u.GetMail(), mail},
					{"given name", u.GetGivenName(), p.Given},
					{"surname", u.GetSurname(), p.SN},
					{"department", u.GetDepartment(), p.Dept},
					{"job title", u.GetJobTitle(), p.Title},
				}
				for _, c := range checks {
					if c.got != c.want {
						t.Errorf("%s: %s %q; want %q", p.DisplayName(), c.field, c.got, c.want)
					}
				}
				if u.Enabled == nil || u.GetEnabled() == p.Disabled || u.GetGuest() || u.Licensed != nil {
					t.Errorf("%s: enabled %v guest %v licensed %v; want enabled %v, not a guest, no licence", p.DisplayName(),
						u.Enabled, u.Guest, u.Licensed, !p.Disabled)
				}
				if !connector.ValidObjectID(u.GetId()) || len(u.GetId()) != 36 {
					t.Errorf("%s: ID %q is not a GUID", p.DisplayName(), u.GetId())
				}
			}
			// The manager's DN resolved to its ID (a user read in the
			// same search, sent again once known); no manager is "".
			keyID := map[string]string{}
			for id, k := range idKey {
				keyID[k] = id
			}
			for _, p := range ldaptest.People() {
				u := byName[p.DisplayName()]
				if u == nil {
					continue
				}
				if got, want := u.GetAttributes()[connector.AttrManager], keyID[p.Manager]; got != want {
					t.Errorf("%s: manager %q; want %q (%s)", p.DisplayName(), got, want, p.Manager)
				}
				if got := u.GetAttributes()[connector.AttrPreferredLanguage]; got != p.Language {
					t.Errorf("%s: preferred language %q; want %q", p.DisplayName(), got, p.Language)
				}
			}
			groups := map[string]*connectorv1.Group{}
			for _, g := range r.Groups {
				groups[g.GetDisplayName()] = g
			}
			for _, tm := range ldaptest.Teams() {
				g := groups[tm.Key]
				if g == nil {
					t.Errorf("group %s: not read", tm.Key)
					continue
				}
				if g.GetKind() != d.Kind(tm) {
					t.Errorf("group %s: kind %q; want %q", tm.Key, g.GetKind(), d.Kind(tm))
				}
				var got []string
				for id := range r.Added[g.GetId()] {
					got = append(got, idKey[id])
				}
				slices.Sort(got)
				if !slices.Equal(got, ldaptest.WantMembers()[tm.Key]) {
					t.Errorf("group %s: members %v; want %v", tm.Key, got, ldaptest.WantMembers()[tm.Key])
				}
			}
			// The server saw paged searches (RFC 2696) and no more entries
			// than the directory holds.
			paged := 0
			for _, s := range proxy.Searches() {
				if slices.Contains(s.Controls, "1.2.840.113556.1.4.319") {
					paged++
				}
			}
			if paged < 2 {
				t.Errorf("%d paged searches; want the users' and the groups'", paged)
			}
			if n, want := proxy.Entries(), len(ldaptest.People())+len(ldaptest.Teams())+1; n > want {
				t.Errorf("the server sent %d entries; the directory has %d (and its root DSE)", n, want)
			}
		})
	}
}

// The LDAP connector passes the conformance suite against both servers.
func TestConformance(t *testing.T) {
	for _, flavor := range flavors {
		t.Run(string(flavor), func(t *testing.T) {
			pad := 0
			if flavor == FlavorOpenLDAP {
				// slapadd seeds offline in a blink: enough users for a
				// full read to span batches, so it can be canceled half
				// way. Samba adds them online at a few hundred a second.
				pad = connector.MaxBatchObjects + 100
			}
			d := startDirectory(t, flavor, pad)
			const wrong = "not-the-Reader-password-42"
			// Active Directory shows deletions only to accounts that may
			// read the Deleted Objects container (TestADReaderRereads).
			account := map[string]any{}
			if flavor == FlavorActiveDirectory {
				account = map[string]any{"bind_dn": d.Srv.AdminDN, "bind_password": d.Srv.AdminPassword}
			}
			n := 0
			connectortest.Run(t, connectortest.Harness{
				New:         func() connector.Connector { return New(nil) },
				Config:      d.config(t, "", account),
				GroupKinds:  connector.GroupKinds(),
				Secrets:     []string{d.Srv.ReaderPassword, d.Srv.AdminPassword, wrong},
				WrongSecret: d.config(t, "", map[string]any{"bind_password": wrong}),
				Change: func() (connectortest.Changes, error) {
					n++
					hire := ldaptest.Person{Key: fmt.Sprintf("hire%d", n), Given: "New", SN: fmt.Sprintf("Hire%d", n), Mail: fmt.Sprintf("hire%d@example.test", n)}
					gone := idOf(t, d, d.UserDN("erin"))
					d.Srv.Apply(t, d.UserLDIF(hire)+
						"dn: "+d.UserDN("bob")+"\nchangetype: modify\nreplace: mail\nmail: robert@example.test\n-\n\n"+
						"dn: "+d.UserDN("erin")+"\nchangetype: delete\n\n")
					// Groups are not checked: a deleted member changes its
					// groups in Active Directory.
					return connectortest.Changes{Users: []string{idOf(t, d, d.UserDN(hire.Key)), idOf(t, d, d.UserDN("bob"))}, RemovedUsers: []string{gone}}, nil
				},
				InvalidateCursor: func(c string) (string, error) {
					if flavor == FlavorOpenLDAP {
						// slapd keeps its session log in memory, from the
						// state it starts in: a cookie older than that
						// gets the present phase.
						d.Srv.Apply(t, "dn: "+d.UserDN("alice")+"\nchangetype: modify\nreplace: title\ntitle: Lead\n-\n\n")
						d.Srv.Restart(t)
						d.Srv.Apply(t, "dn: "+d.UserDN("alice")+"\nchangetype: modify\nreplace: title\ntitle: Head\n-\n\n")
						return c, nil
					}
					// Another domain controller's cursor: USNs are per DC.
					var cur cursor
					if err := json.Unmarshal([]byte(c), &cur); err != nil {
						return "", err
					}
					cur.DC = "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=example,DC=test"
					return cur.String(), nil
				},
			}, connectortest.Features{Incremental: true, Groups: true, MultiBatch: pad > 0})
		})
	}
}

// Secrets stay out of a failed sync's error, whatever failed.
func TestSyncErrorsNameNoSecret(t *testing.T) {
	d := startDirectory(t, FlavorOpenLDAP, 0)
	err := New(nil).Sync(context.Background(), &connectorv1.SyncRequest{
		Config: d.config(t, "", map[string]any{"bind_password": "Wr0ng-and-s3cret"})}, func(*connectorv1.SyncBatch) error { return nil })
	if err == nil || strings.Contains(err.Error(), "Wr0ng-and-s3cret") {
		t.Fatalf("sync with a wrong password: %v", err)
	}
}
