package graphsim

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// legacyUser holds the User fields that existed before Config.Attributes,
// in their order, so that a tenant hashes as it did then.
type legacyUser struct {
	ID                string
	UserPrincipalName string
	Mail              string
	DisplayName       string
	GivenName         string
	Surname           string
	Department        string
	JobTitle          string
	UserType          string
	AccountEnabled    bool
	AssignedLicenses  []string
}

// legacyHash is the SHA-256 of the tenant's JSON with the old User
// fields.
func legacyHash(t *testing.T, tn *Tenant) string {
	t.Helper()
	users := make([]legacyUser, len(tn.Users))
	for i, u := range tn.Users {
		users[i] = legacyUser{u.ID, u.UserPrincipalName, u.Mail, u.DisplayName, u.GivenName, u.Surname,
			u.Department, u.JobTitle, u.UserType, u.AccountEnabled, u.AssignedLicenses}
		if !reflect.DeepEqual(u, User{ID: u.ID, UserPrincipalName: u.UserPrincipalName, Mail: u.Mail, DisplayName: u.DisplayName,
			GivenName: u.GivenName, Surname: u.Surname, Department: u.Department, JobTitle: u.JobTitle, UserType: u.UserType,
			AccountEnabled: u.AccountEnabled, AssignedLicenses: u.AssignedLicenses}) {
			t.Fatalf("user %s has an attribute set without Config.Attributes", u.ID)
		}
	}
	b, err := json.Marshal(struct {
		ID, Domain string
		Users      []legacyUser
		Groups     []Group
	}{tn.ID, tn.Domain, users, tn.Groups})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// The hashes were taken from the generator before Attributes and
// Resources existed: tenants generated without them must not change.
func TestGenerationUnchangedWithoutAttributes(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Users: 700, Groups: 40, Seed: 42, ClientSecret: "s"}, "7425eb8df074bb3ae943e2fffd382411793f571c13cfd40728fd4a209c010aec"},
		{Config{Users: 3000, Groups: 300, Seed: 7, ClientSecret: "s", TenantDomain: "fabrikam.onmicrosoft.com"}, "22e28bc37d92db93dc0b0fab249d2cdbc626a796014b62e2b98ca5dcd4ef13ea"},
	} {
		s, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := legacyHash(t, s.Tenant()); got != tc.want {
			t.Errorf("seed %d: tenant hash %s, want %s", tc.cfg.Seed, got, tc.want)
		}
	}
}

func TestAttributesGeneration(t *testing.T) {
	cfg := Config{Users: 400, Groups: 30, Seed: 9, ClientSecret: "s", Attributes: true, Resources: 12}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	ja, _ := json.Marshal(a.Tenant())
	jb, _ := json.Marshal(b.Tenant())
	if string(ja) != string(jb) {
		t.Fatal("same Config generated different tenants")
	}
	plain, _ := New(Config{Users: 400, Groups: 30, Seed: 9, ClientSecret: "s"})
	tn, pt := a.Tenant(), plain.Tenant()
	if len(tn.Users) != 412 {
		t.Fatalf("%d users, want 400 + 12 resources", len(tn.Users))
	}
	// Everything but the attributes is as generated without them.
	for i := range pt.Users {
		u, p := tn.Users[i], pt.Users[i]
		if u.ID != p.ID || u.UserPrincipalName != p.UserPrincipalName || u.Mail != p.Mail || u.DisplayName != p.DisplayName {
			t.Fatalf("user %d differs from the plain tenant", i)
		}
	}
	if !reflect.DeepEqual(tn.Groups[0], pt.Groups[0]) {
		t.Error("All Company changed")
	}

	langs, aliases, managers, withPurpose := map[string]int{}, 0, 0, 0
	owner := map[string]string{} // lowercase address -> user
	clash := false
	for _, u := range tn.Users {
		if u.PreferredLanguage != "" {
			langs[u.PreferredLanguage]++
		}
		if u.ManagerID != "" {
			managers++
		}
		if u.MailboxPurpose != "" {
			withPurpose++
		}
		primary := 0
		for _, pa := range u.ProxyAddresses {
			prefix, addr, _ := strings.Cut(pa, ":")
			if prefix == "SMTP" {
				primary++
			}
			if prefix == "smtp" && !strings.EqualFold(addr, u.UserPrincipalName) {
				aliases++
			}
			if prefix == "SMTP" || prefix == "smtp" {
				k := strings.ToLower(addr)
				if o, ok := owner[k]; ok && o != u.ID {
					clash = true
				}
				owner[k] = u.ID
			}
		}
		if primary > 1 || (u.Mail != "" && !isGuest(&u) && primary != 1) {
			t.Errorf("user %s: proxyAddresses %v", u.ID, u.ProxyAddresses)
		}
		if u.Mail != "" && !isGuest(&u) && u.MailboxPurpose == "" {
			t.Errorf("user %s has mail but no mailbox purpose", u.ID)
		}
	}
	if len(langs) < 5 || aliases < 10 || managers < 100 || !clash {
		t.Errorf("languages %v, aliases %d, managers %d, clash %v", langs, aliases, managers, clash)
	}
	// Managers form a tree.
	for _, u := range tn.Users {
		seen := map[string]bool{}
		for m := u.ManagerID; m != ""; m = tn.User(m).ManagerID {
			if seen[m] {
				t.Fatalf("manager cycle through %s", m)
			}
			seen[m] = true
		}
	}
	// Resources: mailboxes without licences, most disabled.
	disabled := 0
	for _, u := range tn.Users[400:] {
		switch {
		case u.Mail == "" || len(u.AssignedLicenses) > 0:
			t.Errorf("resource %s: mail %q licences %v", u.DisplayName, u.Mail, u.AssignedLicenses)
		case u.MailboxPurpose != MailboxShared && u.MailboxPurpose != MailboxRoom && u.MailboxPurpose != MailboxEquipment:
			t.Errorf("resource %s has purpose %q", u.DisplayName, u.MailboxPurpose)
		}
		if !u.AccountEnabled {
			disabled++
		}
	}
	if disabled < 6 {
		t.Errorf("%d of 12 resources disabled", disabled)
	}
	// The nesting guarantee: a chain three deep and a cycle.
	var ng []*Group
	for i := 1; i < len(tn.Groups) && len(ng) < 4; i++ {
		if !tn.Groups[i].IsUnified() {
			ng = append(ng, &tn.Groups[i])
		}
	}
	has := func(g, m *Group) bool {
		for _, x := range g.Members {
			if x.ID == m.ID && x.ODataType == TypeGroup {
				return true
			}
		}
		return false
	}
	if !has(ng[0], ng[1]) || !has(ng[1], ng[2]) || !has(ng[2], ng[3]) || !has(ng[3], ng[1]) {
		t.Error("no chain A ⊃ B ⊃ C ⊃ D with D ⊃ B")
	}
}

func TestChurnWithAttributes(t *testing.T) {
	cfg := Config{Users: 200, Groups: 20, Seed: 3, ClientSecret: "s", Attributes: true}
	a, _ := New(cfg)
	b, _ := New(cfg)
	la, err := a.Churn(400, 11)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := b.Churn(400, 11)
	if !reflect.DeepEqual(la, lb) {
		t.Fatal("churn is not deterministic")
	}
	all := strings.Join(la, "\n")
	for _, want := range []string{"preferredLanguage", "manager of user", "alias", "add group", "remove group"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q change in 400", want)
		}
	}
	tn := a.Tenant()
	for _, u := range tn.Users {
		seen := map[string]bool{}
		for m := u.ManagerID; m != ""; m = tn.User(m).ManagerID {
			if seen[m] {
				t.Fatalf("manager cycle through %s", m)
			}
			seen[m] = true
		}
	}
}
