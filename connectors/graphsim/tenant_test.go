package graphsim

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" means valid
	}{
		{"defaults", Config{ClientSecret: "s"}, ""},
		{"missing secret", Config{}, "ClientSecret is required"},
		{"negative users", Config{Users: -1, ClientSecret: "s"}, "Users must be between"},
		{"too many groups", Config{Groups: MaxGroups + 1, ClientSecret: "s"}, "Groups must be between"},
		{"bad domain", Config{TenantDomain: "not a domain", ClientSecret: "s"}, "TenantDomain"},
		{"bad tenant id", Config{TenantID: "1234", ClientSecret: "s"}, "TenantID"},
		{"bad client id", Config{ClientID: "app", ClientSecret: "s"}, "ClientID"},
		{"bad secret id", Config{SecretID: "x", ClientSecret: "s"}, "SecretID"},
		{"secret is its id", Config{SecretID: "11111111-2222-4333-8444-555555555555", ClientSecret: "11111111-2222-4333-8444-555555555555"}, "not equal to SecretID"},
		{"padded secret", Config{ClientSecret: " s"}, "whitespace"},
		{"bad role", Config{Roles: []string{"User.Read.All,Group.Read.All"}, ClientSecret: "s"}, "role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	s, err := New(Config{ClientSecret: "s", TenantDomain: "Fabrikam.OnMicrosoft.com"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config()
	if c.TenantDomain != "fabrikam.onmicrosoft.com" || !isGUID(c.TenantID) || c.ClientID != DefaultClientID || !isGUID(c.SecretID) {
		t.Errorf("defaults: %+v", c)
	}
	if !reflect.DeepEqual(c.Roles, DefaultRoles()) {
		t.Errorf("roles = %v", c.Roles)
	}
	s2, _ := New(Config{ClientSecret: "s", Roles: []string{}})
	if len(s2.Roles()) != 0 {
		t.Errorf("empty Roles should grant nothing, got %v", s2.Roles())
	}
	s3, _ := New(Config{ClientSecret: "s", Seed: 2})
	if s3.Config().TenantID == c.TenantID {
		t.Error("tenant ID does not depend on the seed")
	}
}

func TestGenerationIsDeterministic(t *testing.T) {
	cfg := Config{Users: 700, Groups: 40, Seed: 42, ClientSecret: "s"}
	a, _ := New(cfg)
	b, _ := New(cfg)
	ja, _ := json.Marshal(a.Tenant())
	jb, _ := json.Marshal(b.Tenant())
	if string(ja) != string(jb) {
		t.Fatal("same Config generated different tenants")
	}
	cfg.Seed = 43
	c, _ := New(cfg)
	jc, _ := json.Marshal(c.Tenant())
	if string(ja) == string(jc) {
		t.Fatal("different seeds generated the same tenant")
	}
	// Users do not depend on the number of groups.
	cfg.Seed, cfg.Groups = 42, 3
	d, _ := New(cfg)
	if !reflect.DeepEqual(a.Tenant().Users, d.Tenant().Users) {
		t.Error("changing Groups changed the users")
	}
}

func TestSmallTenantGuarantees(t *testing.T) {
	for _, size := range []struct{ users, groups int }{{5, 2}, {25, 5}, {60, 3}} {
		for seed := int64(0); seed < 40; seed++ {
			s, err := New(Config{Users: size.users, Groups: size.groups, Seed: seed, ClientSecret: "s"})
			if err != nil {
				t.Fatal(err)
			}
			tn := s.Tenant()
			var noMail, unlicensed, disabled, guest, nonASCII, unified, security, unifiedNonUser bool
			for _, u := range tn.Users {
				noMail = noMail || u.Mail == ""
				unlicensed = unlicensed || len(u.AssignedLicenses) == 0
				disabled = disabled || !u.AccountEnabled
				if u.UserType == "Guest" {
					guest = true
					if !strings.Contains(u.UserPrincipalName, "#EXT#@"+tn.Domain) || u.Mail == "" {
						t.Errorf("guest %q / %q", u.UserPrincipalName, u.Mail)
					}
				} else if u.UserType != "Member" {
					t.Errorf("userType %q", u.UserType)
				}
				for _, r := range u.DisplayName {
					if r >= utf8.RuneSelf {
						nonASCII = true
					}
				}
			}
			for _, g := range tn.Groups {
				if g.IsUnified() {
					unified = true
					if !g.MailEnabled || g.SecurityEnabled || g.Mail != g.MailNickname+"@"+tn.Domain {
						t.Errorf("Unified group %+v", g)
					}
					for _, m := range g.Members {
						unifiedNonUser = unifiedNonUser || m.ODataType != TypeUser
					}
				}
				if g.SecurityEnabled && !g.MailEnabled {
					security = true
				}
			}
			got := map[string]bool{"user without mail": noMail, "unlicensed user": unlicensed, "disabled user": disabled, "guest": guest,
				"non-ASCII name": nonASCII, "Unified group": unified, "security group": security, "non-user member of a Unified group": unifiedNonUser}
			for what, ok := range got {
				if !ok {
					t.Errorf("users=%d groups=%d seed=%d: no %s", size.users, size.groups, seed, what)
				}
			}
			ac, users := tn.Groups[0], 0
			for _, m := range ac.Members {
				if m.ODataType == TypeUser {
					users++
				}
			}
			if ac.DisplayName != "All Company" || users != len(tn.Users) {
				t.Errorf("first group %q has %d users, want All Company with %d", ac.DisplayName, users, len(tn.Users))
			}
		}
	}
}

func TestGeneratedTenantShape(t *testing.T) {
	s, err := New(Config{Users: 3000, Groups: 150, Seed: 9, ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	tn := s.Tenant()
	upns := map[string]bool{}
	var noMail, unlicensed, disabled, guests, customMail int
	for _, u := range tn.Users {
		if !isGUID(u.ID) || u.ID != strings.ToLower(u.ID) {
			t.Fatalf("ID %q", u.ID)
		}
		for _, r := range u.UserPrincipalName {
			if r >= utf8.RuneSelf {
				t.Fatalf("non-ASCII UPN %q", u.UserPrincipalName)
			}
		}
		k := strings.ToLower(u.UserPrincipalName)
		if upns[k] {
			t.Fatalf("duplicate UPN %s", k)
		}
		upns[k] = true
		switch {
		case u.Mail == "":
			noMail++
		case strings.HasSuffix(u.Mail, "@contoso.com"):
			customMail++
		}
		if len(u.AssignedLicenses) == 0 {
			unlicensed++
		}
		if !u.AccountEnabled {
			disabled++
		}
		if u.UserType == "Guest" {
			guests++
		}
	}
	pct := func(n int) float64 { return 100 * float64(n) / float64(len(tn.Users)) }
	for _, c := range []struct {
		what     string
		got      float64
		min, max float64
	}{{"without mail", pct(noMail), 5, 11}, {"unlicensed", pct(unlicensed), 7, 14}, {"disabled", pct(disabled), 3, 7}, {"guests", pct(guests), 2.5, 6}, {"custom-domain mail", pct(customMail), 10, 30}} {
		if c.got < c.min || c.got > c.max {
			t.Errorf("%.1f%% users %s, want %v-%v%%", c.got, c.what, c.min, c.max)
		}
	}
	total, names := 0, map[string]bool{}
	for i, g := range tn.Groups {
		if names[strings.ToLower(g.DisplayName)] {
			t.Errorf("duplicate group name %q", g.DisplayName)
		}
		names[strings.ToLower(g.DisplayName)] = true
		seen := map[string]bool{}
		for _, m := range g.Members {
			if seen[m.ID] {
				t.Fatalf("group %d: duplicate member %s", i, m.ID)
			}
			seen[m.ID] = true
			if m.ODataType == TypeGroup && tn.Group(m.ID) == nil {
				t.Errorf("nested group %s does not exist", m.ID)
			}
		}
		if i > 0 {
			total += len(g.Members)
		}
	}
	if avg := float64(total) / float64(len(tn.Groups)-1); avg < 20 || avg > 45 {
		t.Errorf("average group size %.1f, want about 30", avg)
	}
}

func TestMutate(t *testing.T) {
	s, _ := New(Config{Users: 10, Groups: 3, ClientSecret: "s"})
	before := s.Tenant()
	removed := before.Users[0].ID
	err := s.Mutate(func(t *Tenant) {
		t.Users = t.Users[1:]
		t.Users = append(t.Users, User{ID: "0f8fad5b-d9cb-469f-a165-70867728950e", UserPrincipalName: "new.hire@" + t.Domain, Mail: "new.hire@" + t.Domain, DisplayName: "New Hire", UserType: "Member", AccountEnabled: true})
		t.Users[0].Department = "Changed"
	})
	if err != nil {
		t.Fatal(err)
	}
	after := s.Tenant()
	if after.User(removed) != nil || after.User("NEW.HIRE@contoso.onmicrosoft.com") == nil || after.Users[0].Department != "Changed" {
		t.Error("mutation not applied")
	}
	if before.User(removed) == nil || before.Users[1].Department == "Changed" {
		t.Error("the previous snapshot changed")
	}
	err = s.Mutate(func(t *Tenant) { t.Users[1].ID = t.Users[0].ID })
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("duplicate ID accepted: %v", err)
	}
	err = s.Mutate(func(t *Tenant) {
		t.Groups[1].Members = append(t.Groups[1].Members, Member{ID: "x", ODataType: "#microsoft.graph.thing"})
	})
	if err == nil {
		t.Fatal("unknown member type accepted")
	}
	if s.Tenant() != after {
		t.Error("a failed Mutate replaced the tenant")
	}
}

func TestAsciiFoldAndSkipTokens(t *testing.T) {
	for in, want := range map[string]string{"Łukasz Wójcik": "Lukasz Wojcik", "Søren Ødegård": "Soren Odegard", "Ngọc Anh Nguyễn": "Ngoc Anh Nguyen", "Groß": "Gross", "Çelik": "Celik", "東京": ""} {
		if got := asciiFold(in); got != want {
			t.Errorf("asciiFold(%q) = %q, want %q", in, got, want)
		}
	}
	s, _ := New(Config{ClientSecret: "s"})
	tok := s.skipToken("users", 12345)
	if off, ok := s.decodeSkipToken("users", tok); !ok || off != 12345 {
		t.Errorf("round trip: %d %v", off, ok)
	}
	if _, ok := s.decodeSkipToken("groups", tok); ok {
		t.Error("a users token paged groups")
	}
	if strings.Contains(tok, "12345") {
		t.Error("token shows the offset")
	}
}
