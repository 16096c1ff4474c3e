package e2e

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/events"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// identityView is what a recipient says of who a person is, as the
// expected view and the stored recipients are compared.
type identityView struct {
	Email, DisplayName, Department string
	Groups, Aliases                []string
	Language, ManagerID, Manager   string
	Attributes                     map[string]string
}

func viewOf(r events.Recipient) identityView {
	return identityView{Email: r.Email, DisplayName: r.DisplayName, Department: r.Department, Groups: r.Groups, Aliases: r.Aliases,
		Language: r.Language, ManagerID: r.ManagerID, Manager: r.ManagerEmail, Attributes: r.Attributes}
}

// changed names the fields two views differ in, as recipient updated
// events name them.
func (a identityView) changed(b identityView) []string {
	var c []string
	add := func(name string, same bool) {
		if !same {
			c = append(c, name)
		}
	}
	add("email", a.Email == b.Email)
	add("displayName", a.DisplayName == b.DisplayName)
	add("department", a.Department == b.Department)
	add("groups", slices.Equal(a.Groups, b.Groups))
	add("aliases", slices.Equal(a.Aliases, b.Aliases))
	add("language", a.Language == b.Language)
	add("managerId", a.ManagerID == b.ManagerID)
	add("managerEmail", a.Manager == b.Manager)
	add("attributes", maps.Equal(a.Attributes, b.Attributes))
	return c
}

// smtpAddresses are a graphsim user's SMTP addresses, lower-cased, as
// graphsim serves its proxyAddresses (derived from mail and UPN when it
// has none of its own).
func smtpAddresses(u graphsim.User) []string {
	proxies := u.ProxyAddresses
	if len(proxies) == 0 && u.Mail != "" {
		proxies = []string{"SMTP:" + u.Mail}
		if u.UserType != "Guest" && !strings.EqualFold(u.Mail, u.UserPrincipalName) {
			proxies = append(proxies, "smtp:"+u.UserPrincipalName)
		}
	}
	var out []string
	for _, p := range proxies {
		if prefix, a, ok := strings.Cut(p, ":"); ok && strings.EqualFold(prefix, "smtp") && !slices.Contains(out, strings.ToLower(a)) {
			out = append(out, strings.ToLower(a))
		}
	}
	return out
}

// closure returns the users in group gid at any depth of nesting, each
// group visited once (so a cycle ends).
func closure(tn *graphsim.Tenant, gid string) map[string]bool {
	byID := map[string]graphsim.Group{}
	for _, g := range tn.Groups {
		byID[g.ID] = g
	}
	users, seen := map[string]bool{}, map[string]bool{gid: true}
	queue := []string{gid}
	for len(queue) > 0 {
		g := byID[queue[0]]
		queue = queue[1:]
		for _, m := range g.Members {
			switch {
			case m.ODataType == graphsim.TypeUser:
				users[m.ID] = true
			case m.ODataType == graphsim.TypeGroup && !seen[m.ID]:
				seen[m.ID] = true
				queue = append(queue, m.ID)
			}
		}
	}
	return users
}

// expectedIdentities is an independent model of what the import policy
// makes of the tenant: users with mail, not shared, room or equipment
// mailboxes, enabled, members, in scope (nil: everyone); an address that
// is another user's alias goes to no one, and of users sharing a mail
// the lowest object ID keeps it; groups are the Microsoft 365 groups
// holding the user at any depth; site is the officeLocation when site
// is mapped.
func expectedIdentities(tn *graphsim.Tenant, scope map[string]bool, site bool) map[string]identityView {
	byID := map[string]graphsim.User{}
	aliasTaken := map[string]bool{}
	for _, u := range tn.Users {
		byID[u.ID] = u
		for _, a := range smtpAddresses(u) {
			if a != strings.ToLower(u.Mail) {
				aliasTaken[a] = true
			}
		}
	}
	groupsOf := map[string][]string{}
	for _, g := range tn.Groups {
		if !g.IsUnified() {
			continue
		}
		for uid := range closure(tn, g.ID) {
			groupsOf[uid] = append(groupsOf[uid], g.DisplayName)
		}
	}
	claims := map[string][]string{}
	for _, u := range tn.Users {
		switch {
		case u.Mail == "", u.MailboxPurpose == graphsim.MailboxShared, u.MailboxPurpose == graphsim.MailboxRoom,
			u.MailboxPurpose == graphsim.MailboxEquipment, !u.AccountEnabled, u.UserType == "Guest",
			scope != nil && !scope[u.ID]:
			continue
		}
		claims[strings.ToLower(u.Mail)] = append(claims[strings.ToLower(u.Mail)], u.ID)
	}
	out := map[string]identityView{}
	for key, ids := range claims {
		if aliasTaken[key] {
			continue
		}
		u := byID[slices.Min(ids)]
		v := identityView{Email: u.Mail, DisplayName: u.DisplayName, Department: u.Department, Language: u.PreferredLanguage, ManagerID: u.ManagerID}
		v.Groups = groupsOf[u.ID]
		sort.Strings(v.Groups)
		if v.Groups == nil {
			v.Groups = []string{}
		}
		for _, a := range smtpAddresses(u) {
			if a != key {
				v.Aliases = append(v.Aliases, a)
			}
		}
		sort.Strings(v.Aliases)
		if m, ok := byID[u.ManagerID]; ok {
			v.Manager = m.Mail
		}
		if site && u.OfficeLocation != "" {
			v.Attributes = map[string]string{"site": u.OfficeLocation}
		}
		out[u.ID] = v
	}
	return out
}

// activeIdentities lists the demo connector's active recipients.
func (f *fixture) activeIdentities() map[string]identityView {
	f.t.Helper()
	var list []events.Recipient
	f.cliJSON(&list, "recipients", "list", "--connector", "demo")
	out := map[string]identityView{}
	for _, r := range list {
		if r.Status == events.RecipientActive {
			out[r.ObjectID] = viewOf(r)
		}
	}
	return out
}

// assertIdentities fails the test where the recipients differ from the
// expected view.
func assertIdentities(t *testing.T, what string, got, want map[string]identityView) {
	t.Helper()
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("%s: user %s (%s) is no active recipient", what, id, w.Email)
		case len(g.changed(w)) > 0:
			t.Errorf("%s: recipient %s differs in %v:\n got %+v\nwant %+v", what, id, g.changed(w), g, w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: recipient %s (%s) is not expected", what, id, g.Email)
		}
	}
}

// golden compares out with testdata/<name>.golden (rewritten with -update).
func golden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if out != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, out, want)
	}
}

// The identity features through the real plugin against graphsim: a
// tenant with groups nested three deep and a cycle, shared, room and
// equipment mailboxes, aliases colliding across users, managers and
// languages. The recipients equal an independent model of the policy
// under the default import block and under a group scope that counts
// nesting; an incremental round changing nesting, a manager and a
// language yields exactly the expected events; `recipients explain`
// prints exactly why an included, an out-of-scope, a shared-mailbox and
// a duplicate-email user are in or out; without MailboxSettings.Read the
// connection test warns and a sync completes on the fallback.
func TestIdentityThroughThePlugin(t *testing.T) {
	f := newFixtureWith(t, "", fixtureOptions{users: 150, groups: 12, sim: func(c *graphsim.Config) {
		c.Attributes, c.Resources = true, 40
		c.Roles = append(graphsim.DefaultRoles(), graphsim.RoleMailboxSettingsRead)
	}})
	tn := f.sim.Tenant()

	// What the tenant must hold for the test to prove anything.
	var chain []graphsim.Group // A ⊃ B ⊃ C ⊃ D, D ⊃ B
	for _, g := range tn.Groups[1:] {
		if !g.IsUnified() && len(chain) < 4 {
			chain = append(chain, g)
		}
	}
	holds := func(g graphsim.Group, member string) bool {
		return slices.ContainsFunc(g.Members, func(m graphsim.Member) bool { return m.ID == member })
	}
	if len(chain) < 4 || !holds(chain[0], chain[1].ID) || !holds(chain[1], chain[2].ID) || !holds(chain[2], chain[3].ID) || !holds(chain[3], chain[1].ID) {
		t.Fatalf("graphsim's tenant lacks the nested chain and cycle: %v", chain)
	}
	a, b, c := chain[0], chain[1], chain[2]
	direct := closureDirect(a)
	scope := closure(tn, a.ID)
	if len(scope) <= len(direct) {
		t.Fatalf("group %q has %d users at any depth, %d directly: nesting is not tested", a.DisplayName, len(scope), len(direct))
	}
	var shared, duplicate string
	for _, u := range tn.Users {
		// Enabled: a disabled one is out as disabled before anyone asks
		// what its mailbox is for.
		if u.MailboxPurpose == graphsim.MailboxShared && u.AccountEnabled && shared == "" {
			shared = u.ID
		}
	}
	def := expectedIdentities(tn, nil, false)
	for _, u := range tn.Users {
		if _, ok := def[u.ID]; !ok && u.Mail != "" && u.AccountEnabled && u.UserType != "Guest" && u.MailboxPurpose == graphsim.MailboxUser && duplicate == "" {
			duplicate = u.ID
		}
	}
	if shared == "" || duplicate == "" {
		t.Fatalf("graphsim's tenant lacks a shared mailbox (%q) or a user whose mail another has as alias (%q)", shared, duplicate)
	}

	f.start()
	out, errOut, code := f.cli("connector", "test", "demo")
	if code != 0 || !strings.Contains(out, "[ok  ] read mailbox purposes: mailbox purposes readable (MailboxSettings.Read granted)") {
		t.Fatalf("connector test with MailboxSettings.Read: exit %d\n%s%s", code, out, errOut)
	}

	// The default policy: nesting counted, shared, room and equipment
	// mailboxes out, aliases carried, colliding addresses to no one.
	first := f.syncJob()
	if first.State != events.StateCompleted {
		t.Fatalf("first sync: %s %s", first.State, first.Reason)
	}
	assertIdentities(t, "default policy", f.activeIdentities(), def)
	// Only enabled members with mail are asked about (the others are out
	// anyway, counted as disabled, guests or without an address).
	skips, wantSkips := first.Summary.Skipped, map[string]int{}
	for _, u := range tn.Users {
		if u.Mail != "" && u.AccountEnabled && u.UserType != "Guest" {
			wantSkips[map[string]string{graphsim.MailboxShared: "shared_mailbox", graphsim.MailboxRoom: "room", graphsim.MailboxEquipment: "equipment"}[u.MailboxPurpose]]++
		}
	}
	for _, reason := range []string{"shared_mailbox", "room", "equipment"} {
		if wantSkips[reason] == 0 || skips[reason] != wantSkips[reason] {
			t.Errorf("skipped as %s: %d, want %d (all skips %v)", reason, skips[reason], wantSkips[reason], skips)
		}
	}
	if skips["duplicate_email"] == 0 {
		t.Errorf("skip counts %v: want duplicate_email", skips)
	}
	if len(first.Summary.Warnings) > 0 {
		t.Errorf("warnings with every permission granted: %q", first.Summary.Warnings)
	}

	// A group scope counting nesting, and an attribute mapped.
	f.setDemoImport(fmt.Sprintf(`include_groups = [%q]
    attributes {
      site = "officeLocation"
    }`, a.DisplayName))
	// Most of the tenant leaves the scope: more removals than the
	// default max_removals lets through unasked.
	second := f.syncJob("--allow-mass-removal")
	if second.State != events.StateCompleted {
		t.Fatalf("scoped sync: %s %s", second.State, second.Reason)
	}
	before := expectedIdentities(tn, scope, true)
	assertIdentities(t, "include_groups with nesting", f.activeIdentities(), before)

	// Why in, why out: a user in scope through nesting only, one out of
	// scope, the shared mailbox and the duplicate.
	var nested, outside string
	for _, u := range tn.Users {
		_, in := before[u.ID]
		_, inDefault := def[u.ID]
		switch {
		case in && !direct[u.ID] && nested == "":
			nested = u.ID
		case !in && inDefault && outside == "":
			outside = u.ID
		}
	}
	if nested == "" || outside == "" {
		t.Fatalf("no recipient through nesting only (%q) or out of scope (%q)", nested, outside)
	}
	for _, tc := range []struct{ name, id string }{
		{"explain-included-nested", nested}, {"explain-out-of-scope", outside},
		{"explain-shared-mailbox", shared}, {"explain-duplicate", duplicate},
	} {
		out, errOut, code := f.cli("recipients", "explain", tc.id)
		if code != 0 {
			t.Fatalf("recipients explain %s: exit %d\n%s%s", tc.id, code, out, errOut)
		}
		golden(t, tc.name, out)
	}

	// An incremental round: C leaves B (the users only below it leave the
	// scope), a manager and a language change.
	var moved, spoke string
	for _, id := range slices.Sorted(maps.Keys(before)) {
		u := userOf(tn, id)
		switch {
		case moved == "" && u.ManagerID != "" && u.ManagerID != nested:
			moved = id
		case spoke == "" && id != moved:
			spoke = id
		}
	}
	if err := f.sim.RemoveMembers(b.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.SetManager(moved, nested); err != nil {
		t.Fatal(err)
	}
	lang := "fr-FR"
	if userOf(tn, spoke).PreferredLanguage == lang {
		lang = "it-IT"
	}
	if err := f.sim.UpdateUser(spoke, func(u *graphsim.User) { u.PreferredLanguage = lang }); err != nil {
		t.Fatal(err)
	}
	tn2 := f.sim.Tenant()
	after := expectedIdentities(tn2, closure(tn2, a.ID), true)
	var want []string
	for id, v := range after {
		if old, ok := before[id]; !ok {
			want = append(want, "created "+id)
		} else if ch := old.changed(v); len(ch) > 0 {
			want = append(want, "updated "+id+" "+strings.Join(ch, ","))
		}
	}
	for id := range before {
		if _, ok := after[id]; !ok {
			want = append(want, "archived "+id)
		}
	}
	sort.Strings(want)
	if !slices.Contains(want, "updated "+moved+" managerId,managerEmail") || !slices.Contains(want, "updated "+spoke+" language") ||
		!slices.ContainsFunc(want, func(s string) bool { return strings.HasPrefix(s, "archived ") }) {
		t.Fatalf("the model expects %v: the changes do not test nesting, managers and languages", want)
	}
	third := f.syncJob()
	if third.State != events.StateCompleted || third.Summary.FullRead {
		t.Fatalf("incremental sync: %s fullRead=%v %s", third.State, third.Summary.FullRead, third.Reason)
	}
	if got := f.changes(third.ID, true); !slices.Equal(got, want) {
		t.Errorf("incremental round's events:\n got %q\nwant %q", got, want)
	}
	assertIdentities(t, "after the incremental round", f.activeIdentities(), after)

	// Without MailboxSettings.Read: the test warns, a sync completes and
	// says what it fell back to. With include_disabled the disabled users
	// of the scope now pass the rules that read the user alone, so they
	// are asked about, and the fallback takes those with a mailbox for
	// shared mailboxes: the recipients stay those of the scope's enabled
	// users, and explain says the guess.
	var disabled string
	for id := range closure(tn2, a.ID) {
		if u := userOf(tn2, id); !u.AccountEnabled && u.Mail != "" && u.MailboxPurpose == graphsim.MailboxUser && (disabled == "" || id < disabled) {
			disabled = id
		}
	}
	if disabled == "" {
		t.Fatal("no disabled user with a mailbox in the scope: the fallback is not tested")
	}
	f.sim.SetRoles(graphsim.DefaultRoles())
	out, errOut, code = f.cli("connector", "test", "demo")
	if code != 0 || !strings.Contains(out, "[WARN] read mailbox purposes: the app may not read mailbox settings") ||
		!strings.Contains(out, "what to do: In the Entra admin center") || !strings.Contains(out, "MailboxSettings.Read") ||
		!strings.Contains(out, "connection test passed") {
		t.Fatalf("connector test without MailboxSettings.Read: exit %d\n%s%s", code, out, errOut)
	}
	f.setDemoImport(fmt.Sprintf(`include_groups = [%q]
    include_disabled = true
    attributes {
      site = "officeLocation"
    }`, a.DisplayName))
	fourth := f.syncJob()
	if fourth.State != events.StateCompleted {
		t.Fatalf("sync without MailboxSettings.Read: %s %s", fourth.State, fourth.Reason)
	}
	if !slices.ContainsFunc(fourth.Summary.Warnings, func(w string) bool {
		return strings.Contains(w, "mailbox purposes not read") && strings.Contains(w, "MailboxSettings.Read")
	}) {
		t.Errorf("sync without MailboxSettings.Read: warnings %q", fourth.Summary.Warnings)
	}
	assertIdentities(t, "without MailboxSettings.Read", f.activeIdentities(), after)
	if fourth.Summary.Skipped["shared_mailbox"] == 0 {
		t.Errorf("skip counts without MailboxSettings.Read %v: the fallback took no disabled user with a mailbox for a shared one", fourth.Summary.Skipped)
	}
	out, errOut, code = f.cli("recipients", "explain", disabled)
	if code != 0 {
		t.Fatalf("recipients explain %s: exit %d\n%s%s", disabled, code, out, errOut)
	}
	golden(t, "explain-fallback", out)
	assertNoSecret(t, "dirsyncd log", f.log.String())
}

// closureDirect is the users directly in g.
func closureDirect(g graphsim.Group) map[string]bool {
	out := map[string]bool{}
	for _, m := range g.Members {
		if m.ODataType == graphsim.TypeUser {
			out[m.ID] = true
		}
	}
	return out
}

func userOf(tn *graphsim.Tenant, id string) graphsim.User {
	for _, u := range tn.Users {
		if u.ID == id {
			return u
		}
	}
	return graphsim.User{}
}

// setDemoImport replaces demo's import block (or adds one) with body and
// makes the running daemon reload plugins.hcl.
func (f *fixture) setDemoImport(body string) {
	f.t.Helper()
	b, err := os.ReadFile(f.config)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := string(b)
	if f.demoImport != "" {
		cfg = strings.Replace(cfg, f.demoImport, "", 1)
	}
	f.demoImport = "  import {\n    " + body + "\n  }\n"
	cfg = strings.Replace(cfg, "connector \"demo\" {\n", "connector \"demo\" {\n"+f.demoImport, 1)
	write(f.t, f.config, cfg, 0o644)
	f.reload()
}
