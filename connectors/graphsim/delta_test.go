package graphsim

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The $select lists the Azure AD connector asks for.
var (
	connUserSelect  = []string{"id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "department", "jobTitle", "accountEnabled", "userType", "assignedLicenses"}
	connGroupSelect = []string{"id", "displayName", "mail", "groupTypes", "mailEnabled", "securityEnabled", "members"}
)

func usersDeltaURL() string { return "/v1.0/users/delta?$select=" + strings.Join(connUserSelect, ",") }
func groupsDeltaURL() string {
	return "/v1.0/groups/delta()?$select=" + strings.Join(connGroupSelect, ",")
}

// deltaPage is one page of a delta round.
type deltaPageResp struct {
	items []map[string]any
}

// round follows a delta link and its nextLinks to the deltaLink.
func round(t *testing.T, s *Sim, c *http.Client, tok, link string, pageSize int) (items []map[string]any, pages []deltaPageResp, deltaLink string) {
	t.Helper()
	next := link
	if !strings.HasPrefix(next, "https://") {
		next = s.URL() + next
	}
	for n := 0; next != ""; n++ {
		if n > 5000 {
			t.Fatal("delta paging does not end")
		}
		var hdr []string
		if pageSize > 0 {
			hdr = []string{"Prefer", "odata.maxpagesize=" + strconv.Itoa(pageSize)}
		}
		r := get(t, c, s, tok, next, hdr...)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", next, r.status, r.body)
		}
		if pageSize > 0 && r.header.Get("Preference-Applied") != "odata.maxpagesize="+strconv.Itoa(pageSize) {
			t.Errorf("Preference-Applied %q", r.header.Get("Preference-Applied"))
		}
		v := values(t, r)
		items = append(items, v...)
		pages = append(pages, deltaPageResp{items: v})
		nl, _ := r.json["@odata.nextLink"].(string)
		dl, _ := r.json["@odata.deltaLink"].(string)
		switch {
		case nl != "" && dl != "":
			t.Fatalf("page with both links: %s", r.body)
		case nl != "":
			if !strings.HasPrefix(nl, s.URL()+"/v1.0/") || !strings.Contains(nl, "/delta?$skiptoken=") || strings.Count(nl, "=") != 1 {
				t.Fatalf("nextLink %s", nl)
			}
			next = nl
		case dl != "":
			if !strings.HasPrefix(dl, s.URL()+"/v1.0/") || !strings.Contains(dl, "/delta?$deltatoken=") {
				t.Fatalf("deltaLink %s", dl)
			}
			return items, pages, dl
		default:
			t.Fatalf("page without a link: %s", r.body)
		}
	}
	return
}

func TestDeltaInitialRound(t *testing.T) {
	s, c := startSim(t, Config{Users: 450, Groups: 40, DeltaMembersPerPage: 50})
	tok := token(t, s, c)
	tn := s.Tenant()

	t.Run("users", func(t *testing.T) {
		items, pages, dl := round(t, s, c, tok, usersDeltaURL(), 100)
		if len(pages) != 5 {
			t.Errorf("%d pages, want 5", len(pages))
		}
		seen := map[string]int{}
		want := slices.Clone(connUserSelect)
		slices.Sort(want)
		for _, it := range items {
			id := it["id"].(string)
			seen[id]++
			ks := keys(it)
			slices.Sort(ks)
			if !slices.Equal(ks, want) {
				t.Fatalf("user properties %v", ks)
			}
			u := tn.User(id)
			if u == nil || it["userPrincipalName"] != u.UserPrincipalName || it["accountEnabled"] != u.AccountEnabled {
				t.Fatalf("user %v does not match %+v", it, u)
			}
		}
		if len(items) != len(tn.Users) || len(seen) != len(tn.Users) {
			t.Errorf("%d items, %d distinct, want %d", len(items), len(seen), len(tn.Users))
		}
		// A round from the deltaLink without changes is empty.
		again, _, dl2 := round(t, s, c, tok, dl, 0)
		if len(again) != 0 || dl2 == "" {
			t.Errorf("no-change round: %d items", len(again))
		}
		// The default page size is 100 and $top works like Prefer.
		_, pages, _ = round(t, s, c, tok, "/v1.0/users/delta", 0)
		if len(pages) != 5 || len(pages[0].items) != 100 {
			t.Errorf("default paging: %d pages", len(pages))
		}
		if _, pages, _ = round(t, s, c, tok, "/v1.0/users/delta?$top=200", 0); len(pages) != 3 {
			t.Errorf("$top=200: %d pages", len(pages))
		}
		// The default properties.
		r := get(t, c, s, tok, "/v1.0/users/delta")
		ks := keys(values(t, r)[0])
		slices.Sort(ks)
		wantDefault := slices.Clone(userDefault)
		slices.Sort(wantDefault)
		if !slices.Equal(ks, wantDefault) || r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#users" {
			t.Errorf("default properties %v, context %v", ks, r.json["@odata.context"])
		}
	})

	t.Run("groups", func(t *testing.T) {
		items, pages, _ := round(t, s, c, tok, groupsDeltaURL(), 999)
		members := map[string][]string{}
		appearances := map[string]int{}
		for _, p := range pages {
			n := 0
			for _, it := range p.items {
				md, _ := it["members@delta"].([]any)
				n += len(md)
			}
			if n > 50 {
				t.Errorf("a page holds %d members@delta entries", n)
			}
		}
		for _, it := range items {
			id := it["id"].(string)
			appearances[id]++
			if _, ok := it["displayName"]; !ok {
				t.Fatalf("group without displayName: %v", it)
			}
			md, _ := it["members@delta"].([]any)
			for _, m := range md {
				mm := m.(map[string]any)
				if mm["@removed"] != nil {
					t.Fatalf("initial round removes a member: %v", mm)
				}
				members[id] = append(members[id], mm["@odata.type"].(string)+" "+mm["id"].(string))
			}
		}
		split, nonUser := 0, 0
		for _, g := range tn.Groups {
			var want []string
			for _, m := range g.Members {
				want = append(want, m.ODataType+" "+m.ID)
				if m.ODataType != TypeUser {
					nonUser++
				}
			}
			got := slices.Clone(members[g.ID])
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("group %s: members@delta %d entries, want %d", g.DisplayName, len(members[g.ID]), len(want))
			}
			wantApp := max(1, (len(g.Members)+49)/50)
			if appearances[g.ID] != wantApp {
				t.Errorf("group %s with %d members appears %d times, want %d", g.DisplayName, len(g.Members), appearances[g.ID], wantApp)
			}
			if wantApp > 1 {
				split++
			}
		}
		if split < 2 || nonUser == 0 {
			t.Errorf("the test tenant has %d split groups and %d non-user members", split, nonUser)
		}
		// A split group starts a page.
		for _, p := range pages {
			for i, it := range p.items {
				if i > 0 && appearances[it["id"].(string)] > 1 {
					t.Errorf("split group %s is not first on its page", it["id"])
				}
			}
		}
		// Without members selected, every group once.
		items, _, _ = round(t, s, c, tok, "/v1.0/groups/delta?$select=displayName", 0)
		if len(items) != len(tn.Groups) {
			t.Errorf("without members: %d items", len(items))
		}
		for _, it := range items {
			if _, ok := it["members@delta"]; ok || len(it) != 2 {
				t.Fatalf("item %v", it)
			}
		}
	})
}

// snapshotState is what a client knows after a round.
type snapshotState struct {
	users   map[string]User
	groups  map[string]map[string]string // group -> member -> type
	deleted map[string]bool
}

func stateOf(s *Sim) snapshotState {
	st := snapshotState{users: map[string]User{}, groups: map[string]map[string]string{}, deleted: map[string]bool{}}
	for _, u := range s.Tenant().Users {
		st.users[u.ID] = u
	}
	for _, g := range s.Tenant().Groups {
		m := map[string]string{}
		for _, mem := range g.Members {
			m[mem.ID] = mem.ODataType
		}
		st.groups[g.ID] = m
	}
	for _, u := range s.DeletedUsers() {
		st.deleted[u.ID] = true
	}
	return st
}

// userFields maps the connector's selected properties to a user's values
// as JSON decodes them.
func userFields(u User) map[string]any {
	lic := []any{}
	for _, sku := range u.AssignedLicenses {
		lic = append(lic, map[string]any{"disabledPlans": []any{}, "skuId": sku})
	}
	str := func(v string) any {
		if v == "" {
			return nil
		}
		return v
	}
	return map[string]any{"id": u.ID, "userPrincipalName": u.UserPrincipalName, "mail": str(u.Mail), "displayName": str(u.DisplayName),
		"givenName": str(u.GivenName), "surname": str(u.Surname), "department": str(u.Department), "jobTitle": str(u.JobTitle),
		"accountEnabled": u.AccountEnabled, "userType": u.UserType, "assignedLicenses": lic}
}

// checkUserRound checks a users round against the difference of two
// states: exactly the net change. Unless strict, a partial item may name
// properties beyond the difference if they hold their unchanged values
// (a property changed and changed back, which random churn does).
func checkUserRound(t *testing.T, before, after snapshotState, items []map[string]any, strict bool) {
	t.Helper()
	got := map[string]map[string]any{}
	for _, it := range items {
		id := it["id"].(string)
		if _, dup := got[id]; dup {
			t.Errorf("user %s appears twice", id)
		}
		got[id] = it
	}
	ids := map[string]bool{}
	for id := range before.users {
		ids[id] = true
	}
	for id := range after.users {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	for _, id := range sortedKeys(ids) {
		b, inBefore := before.users[id]
		a, inAfter := after.users[id]
		it := got[id]
		switch {
		case inAfter && !inBefore: // new or restored: every property
			if !reflect.DeepEqual(it, userFields(a)) {
				t.Errorf("new user %s: got %v, want %v", id, it, userFields(a))
			}
		case !inAfter && inBefore:
			reason := "deleted"
			if after.deleted[id] {
				reason = "changed"
			}
			want := map[string]any{"id": id, "@removed": map[string]any{"reason": reason}}
			if !reflect.DeepEqual(it, want) {
				t.Errorf("removed user %s: got %v, want %v", id, it, want)
			}
		case !inAfter && !inBefore:
			if it != nil {
				t.Errorf("user %s neither before nor after: got %v", id, it)
			}
		default:
			bf, af := userFields(b), userFields(a)
			var diff []string
			for k := range af {
				if !reflect.DeepEqual(bf[k], af[k]) {
					diff = append(diff, k)
				}
			}
			if len(diff) == 0 && it == nil {
				continue
			}
			if strict && it != nil && len(it) != len(diff)+1 {
				t.Errorf("user %s changed %v: got %v", id, diff, it)
			}
			if it == nil {
				t.Errorf("user %s changed %v: not in the round", id, diff)
				continue
			}
			for _, k := range diff {
				if !reflect.DeepEqual(it[k], af[k]) {
					t.Errorf("user %s: %s = %v, want %v", id, k, it[k], af[k])
				}
			}
			for k, v := range it {
				if !reflect.DeepEqual(v, af[k]) || (k != "id" && !slices.Contains(diff, k) && !reflect.DeepEqual(bf[k], af[k])) {
					t.Errorf("user %s: unexpected %s = %v", id, k, v)
				}
			}
		}
	}
}

// checkGroupRound checks the members@delta of a groups round: exactly the
// member changes, and no group without one (the test changes no group
// properties).
func checkGroupRound(t *testing.T, before, after snapshotState, items []map[string]any) {
	t.Helper()
	got := map[string][]string{}
	for _, it := range items {
		id := it["id"].(string)
		if len(it) != 2 {
			t.Errorf("group %s: %v (only id and members@delta expected)", id, it)
		}
		md, _ := it["members@delta"].([]any)
		if len(md) == 0 {
			t.Errorf("group %s without members@delta", id)
		}
		for _, m := range md {
			mm := m.(map[string]any)
			e := "+" + mm["@odata.type"].(string) + " " + mm["id"].(string)
			if r, ok := mm["@removed"]; ok {
				if !reflect.DeepEqual(r, map[string]any{"reason": "deleted"}) {
					t.Errorf("member removal %v", mm)
				}
				e = "-" + e[1:]
			}
			got[id] = append(got[id], e)
		}
	}
	for gid, am := range after.groups {
		bm := before.groups[gid]
		var want []string
		for id, typ := range am {
			if _, had := bm[id]; !had {
				want = append(want, "+"+typ+" "+id)
			}
		}
		for id, typ := range bm {
			if _, has := am[id]; !has {
				want = append(want, "-"+typ+" "+id)
			}
		}
		slices.Sort(want)
		g := slices.Clone(got[gid])
		slices.Sort(g)
		if !slices.Equal(g, want) {
			t.Errorf("group %s: members@delta %v, want %v", gid, g, want)
		}
		delete(got, gid)
	}
	if len(got) > 0 {
		t.Errorf("unknown groups in the round: %v", slices.Collect(maps.Keys(got)))
	}
}

func TestDeltaRounds(t *testing.T) {
	s, c := startSim(t, Config{Users: 120, Groups: 25, Seed: 4, DeltaMembersPerPage: 40})
	tok := token(t, s, c)
	_, _, userLink := round(t, s, c, tok, usersDeltaURL(), 50)
	_, _, groupLink := round(t, s, c, tok, groupsDeltaURL(), 50)

	tn := s.Tenant()
	// Distinct users for the changes: u(i) is enabled, has a department
	// and is not unlicensed with FLOW_FREE.
	var picked []string
	for _, x := range tn.Users {
		if x.AccountEnabled && x.Department != "" && x.UserType == "Member" {
			picked = append(picked, x.ID)
		}
	}
	u := func(i int) string { return picked[i] }
	var unifiedID, securityID string
	var contact Member
	for i, g := range tn.Groups {
		for _, m := range g.Members {
			if m.ODataType == TypeOrgContact && contact.ID == "" {
				contact = m
			}
		}
		if g.IsUnified() && i > 0 && unifiedID == "" {
			unifiedID = g.ID
		}
		if !g.IsUnified() && g.SecurityEnabled && securityID == "" {
			securityID = g.ID
		}
	}
	if contact.ID == "" || unifiedID == "" || securityID == "" {
		t.Fatal("test tenant lacks a contact or a group kind")
	}
	notMember := func(gid string) string {
		g := s.Tenant().Group(gid)
		for _, x := range s.Tenant().Users {
			if !slices.ContainsFunc(g.Members, func(m Member) bool { return m.ID == x.ID }) {
				return x.ID
			}
		}
		t.Fatal("everyone is a member")
		return ""
	}
	var added User
	newID := "0f8fad5b-d9cb-469f-a165-70867728950e"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	addMany := func() error {
		// More members than a page holds: the group is split in the round.
		g := s.Tenant().Group(securityID)
		var ids []string
		for _, x := range s.Tenant().Users[40:] {
			if !slices.ContainsFunc(g.Members, func(m Member) bool { return m.ID == x.ID }) {
				ids = append(ids, x.ID)
			}
		}
		return s.AddMembers(securityID, ids...)
	}

	tests := []struct {
		name      string
		change    func() error
		wantUsers int  // items in the users round, -1: not checked
		lenient   bool // see checkUserRound
	}{
		{"no change", func() error { return nil }, 0, false},
		{"add user", func() error {
			var err error
			added, err = s.AddUser(User{ID: newID, UserPrincipalName: "new.hire@" + tn.Domain, Mail: "new.hire@contoso.com", DisplayName: "New Hire",
				GivenName: "New", Surname: "Hire", Department: "Sales", AccountEnabled: true, AssignedLicenses: []string{"05e9a617-0261-4cee-bb44-138d3ef5d965"}})
			return err
		}, 1, false},
		{"partial update", func() error { return s.UpdateUser(u(1), func(x *User) { x.Department = "Red Team" }) }, 1, false},
		{"disable", func() error { return s.DisableUser(u(2)) }, 1, false},
		{"soft delete", func() error { return s.DeleteUser(u(3), false) }, 1, false},
		{"permanent delete", func() error { return s.DeleteUser(u(4), true) }, 1, false},
		{"restore", func() error { return s.RestoreUser(u(3)) }, 1, false},
		{"licenses", func() error { return s.SetLicenses(u(5), []string{"f30db892-07e9-47e9-837c-80727f46fd3d"}) }, 1, false},
		{"licenses removed", func() error { return s.SetLicenses(u(5), nil) }, 1, false},
		{"add a non-user member", func() error { return s.AddMembers(securityID, contact.ID) }, 0, false},
		{"add and remove members", func() error {
			must(s.AddMembers(unifiedID, notMember(unifiedID), added.ID))
			must(s.RemoveMembers(unifiedID, s.Tenant().Group(unifiedID).Members[0].ID))
			return s.RemoveMembers(groupWith(t, s, contact.ID), contact.ID)
		}, 0, false},
		{"net changes: twice the same user, added then removed member", func() error {
			must(s.UpdateUser(u(6), func(x *User) { x.JobTitle = "Chief Tester" }))
			must(s.UpdateUser(u(6), func(x *User) { x.Surname = "Changed"; x.DisplayName = "Changed Name" }))
			x := notMember(unifiedID)
			must(s.AddMembers(unifiedID, x))
			must(s.RemoveMembers(unifiedID, x))
			y := s.Tenant().Group(unifiedID).Members[1].ID
			must(s.RemoveMembers(unifiedID, y))
			must(s.AddMembers(unifiedID, y))
			must(s.DeleteUser(u(7), false))
			must(s.RestoreUser(u(7)))
			tmp, err := s.AddUser(User{UserPrincipalName: "temp@" + tn.Domain, DisplayName: "Temp"})
			must(err)
			return s.DeleteUser(tmp.ID, true)
		}, 2, true},
		{"large member change", addMany, 0, false},
		{"mutate", func() error {
			return s.Mutate(func(t *Tenant) {
				t.Users[10].Mail = ""
				t.Users = slices.Delete(t.Users, 11, 12)
			})
		}, 2, false},
		{"churn", func() error {
			lines, err := s.Churn(60, 7)
			if err == nil && len(lines) != 60 {
				err = fmt.Errorf("%d lines", len(lines))
			}
			return err
		}, -1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := stateOf(s)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			after := stateOf(s)
			users, _, nextUsers := round(t, s, c, tok, userLink, 30)
			groups, gpages, nextGroups := round(t, s, c, tok, groupLink, 999)
			checkUserRound(t, before, after, users, !tc.lenient)
			checkGroupRound(t, before, after, groups)
			if tc.wantUsers >= 0 && len(users) != tc.wantUsers {
				t.Errorf("%d users in the round, want %d", len(users), tc.wantUsers)
			}
			if tc.name == "large member change" && len(gpages) < 2 {
				t.Errorf("the large change fits one page")
			}
			// Replaying the same links gives the same answer.
			users2, _, _ := round(t, s, c, tok, userLink, 30)
			groups2, _, _ := round(t, s, c, tok, groupLink, 999)
			if !reflect.DeepEqual(users, users2) || !reflect.DeepEqual(groups, groups2) {
				t.Error("replaying the deltaLink gave another answer")
			}
			userLink, groupLink = nextUsers, nextGroups
		})
	}
	if t.Failed() {
		return
	}
	// The partial-update trap spelled out.
	last := s.Tenant().Users[0].ID
	must(s.UpdateUser(last, func(x *User) { x.Department = "Only This" }))
	items, _, _ := round(t, s, c, tok, userLink, 0)
	if want := []map[string]any{{"id": last, "department": "Only This"}}; !reflect.DeepEqual(items, want) {
		t.Errorf("partial update: %v", items)
	}
}

// groupWith returns a group that has the member.
func groupWith(t *testing.T, s *Sim, id string) string {
	for _, g := range s.Tenant().Groups {
		for _, m := range g.Members {
			if m.ID == id {
				return g.ID
			}
		}
	}
	t.Fatalf("no group has %s", id)
	return ""
}

func TestDeltaRoundSplitsNewLargeGroup(t *testing.T) {
	s, c := startSim(t, Config{Users: 200, Groups: 3, DeltaMembersPerPage: 30})
	tok := token(t, s, c)
	_, _, link := round(t, s, c, tok, groupsDeltaURL(), 0)
	ng := Group{ID: "5a3c8f1e-2b4d-4e6f-8a9b-0c1d2e3f4a5b", DisplayName: "Big New", MailNickname: "bignew", GroupTypes: []string{}, SecurityEnabled: true}
	for _, u := range s.Tenant().Users[:95] {
		ng.Members = append(ng.Members, Member{ID: u.ID, ODataType: TypeUser})
	}
	if err := s.Mutate(func(t *Tenant) { t.Groups = append(t.Groups, ng) }); err != nil {
		t.Fatal(err)
	}
	items, pages, _ := round(t, s, c, tok, link, 0)
	if len(pages) != 4 || len(items) != 4 {
		t.Fatalf("%d pages, %d items", len(pages), len(items))
	}
	n := 0
	for _, it := range items {
		if it["id"] != ng.ID || it["displayName"] != "Big New" {
			t.Fatalf("item %v", it)
		}
		n += len(it["members@delta"].([]any))
	}
	if n != 95 {
		t.Errorf("%d members", n)
	}
}

func TestDeltaTokensAndErrors(t *testing.T) {
	s, c := startSim(t, Config{Users: 30, Groups: 4, DeltaTokenTTL: time.Hour})
	tok := token(t, s, c)
	first := get(t, c, s, tok, usersDeltaURL()+"&$top=10")
	skipLink := first.json["@odata.nextLink"].(string)
	_, _, dl := round(t, s, c, tok, usersDeltaURL(), 0)

	for _, tc := range []struct {
		name, path, code string
		status           int
	}{
		{"filter", "/v1.0/users/delta?$filter=id%20eq%20'x'", "Request_UnsupportedQuery", 400},
		{"orderby", "/v1.0/groups/delta?$orderby=displayName", "Request_UnsupportedQuery", 400},
		{"unknown property", "/v1.0/users/delta?$select=id,shoeSize", "Request_BadRequest", 400},
		{"tampered token", "/v1.0/users/delta?$deltatoken=" + tamper(t, dl, "$deltatoken"), "syncStateInvalid", 400},
		{"deltatoken as skiptoken", "/v1.0/users/delta?$skiptoken=" + tokenOf(t, dl, "$deltatoken"), "syncStateInvalid", 400},
		{"users token on groups", "/v1.0/groups/delta?$deltatoken=" + tokenOf(t, dl, "$deltatoken"), "syncStateInvalid", 400},
		{"both tokens", "/v1.0/users/delta?$deltatoken=" + tokenOf(t, dl, "$deltatoken") + "&$skiptoken=" + tokenOf(t, skipLink, "$skiptoken"), "Request_BadRequest", 400},
		{"bad $top", "/v1.0/users/delta?$top=0", "Request_BadRequest", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, c, s, tok, tc.path)
			if code, _ := graphErr(t, r); r.status != tc.status || code != tc.code {
				t.Errorf("%d %s %s", r.status, code, r.body)
			}
		})
	}
	t.Run("permissions", func(t *testing.T) {
		s.SetRoles([]string{"User.Read.All"})
		defer s.SetRoles(DefaultRoles())
		other := token(t, s, c)
		if r := get(t, c, s, other, "/v1.0/groups/delta"); r.status != 403 {
			t.Errorf("groups delta without GroupMember.Read.All: %d", r.status)
		}
		if r := get(t, c, s, other, "/v1.0/users/delta()"); r.status != 200 {
			t.Errorf("users delta(): %d", r.status)
		}
	})
	t.Run("latest", func(t *testing.T) {
		r := get(t, c, s, tok, "/v1.0/users/delta?$deltatoken=latest&$select=id,mail")
		if len(values(t, r)) != 0 || r.json["@odata.deltaLink"] == nil {
			t.Fatalf("latest: %s", r.body)
		}
		if _, err := s.AddUser(User{UserPrincipalName: "late@" + s.Tenant().Domain, DisplayName: "Late", Mail: "late@contoso.com"}); err != nil {
			t.Fatal(err)
		}
		items, _, _ := round(t, s, c, tok, r.json["@odata.deltaLink"].(string), 0)
		if len(items) != 1 || items[0]["mail"] != "late@contoso.com" || len(items[0]) != 2 {
			t.Errorf("after latest: %v", items)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		s.clockOffset.Store(int64(2 * time.Hour))
		defer s.clockOffset.Store(0)
		tok := token(t, s, c)
		r := get(t, c, s, tok, dl)
		if code, _ := graphErr(t, r); r.status != 410 || code != "resyncRequired" {
			t.Errorf("expired by TTL: %d %s", r.status, r.body)
		}
		// Skip tokens do not expire by time.
		if r := get(t, c, s, tok, skipLink); r.status != 200 {
			t.Errorf("skiptoken after the TTL: %d", r.status)
		}
	})

	for _, tc := range []struct {
		mode   ExpiryMode
		status int
		code   string
	}{{ExpiryBadRequest, 400, "syncStateNotFound"}, {ExpiryGone, 410, "resyncRequired"}, {ExpiryGoneEmpty, 410, ""}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			_, _, dl := round(t, s, c, tok, usersDeltaURL(), 0)
			skip := get(t, c, s, tok, "/v1.0/groups/delta?$top=2").json["@odata.nextLink"].(string)
			s.ExpireDeltaTokens(tc.mode)
			for _, link := range []string{dl, skip} {
				r := get(t, c, s, tok, link)
				if r.status != tc.status {
					t.Fatalf("%d %s", r.status, r.body)
				}
				if tc.code == "" {
					if len(r.body) != 0 || r.header.Get("request-id") == "" {
						t.Errorf("body %q, headers %v", r.body, r.header)
					}
					continue
				}
				if code, _ := graphErr(t, r); code != tc.code {
					t.Errorf("code %s", code)
				}
				loc := r.header.Get("Location")
				if tc.mode == ExpiryGone {
					want := s.URL() + "/v1.0/users/delta?$select=" + strings.Join(connUserSelect, ",")
					if link == skip {
						want = s.URL() + "/v1.0/groups/delta"
					}
					if loc != want {
						t.Errorf("Location %q, want %q", loc, want)
					}
					items, _, _ := round(t, s, c, tok, loc, 0)
					if len(items) == 0 {
						t.Error("the Location round is empty")
					}
				} else if loc != "" {
					t.Errorf("Location %q", loc)
				}
			}
			// New tokens work.
			_, _, dl = round(t, s, c, tok, usersDeltaURL(), 0)
			if items, _, _ := round(t, s, c, tok, dl, 0); len(items) != 0 {
				t.Errorf("after expiry: %d items", len(items))
			}
		})
	}
}

// tokenOf extracts a query parameter of a link.
func tokenOf(t *testing.T, link, param string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(u.Query().Get(param))
}

func tamper(t *testing.T, link, param string) string {
	u, _ := url.Parse(link)
	b := []byte(u.Query().Get(param))
	b[len(b)/2] ^= 1
	return url.QueryEscape(string(b))
}

func TestChurnIsDeterministic(t *testing.T) {
	a, _ := New(Config{Users: 300, Groups: 20, Seed: 3, ClientSecret: "s"})
	b, _ := New(Config{Users: 300, Groups: 20, Seed: 3, ClientSecret: "s"})
	la, err := a.Churn(200, 11)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := b.Churn(200, 11)
	if !slices.Equal(la, lb) || !reflect.DeepEqual(a.Tenant(), b.Tenant()) {
		t.Error("the same seed churned differently")
	}
	kinds := map[string]int{}
	for _, l := range la {
		w := strings.Fields(l)
		kinds[w[0]]++
	}
	for _, k := range []string{"add", "update", "soft-delete", "delete", "restore", "set", "remove"} {
		if kinds[k] == 0 {
			t.Errorf("no %q change in %v", k, kinds)
		}
	}
	lc, _ := a.Churn(200, 12)
	if slices.Equal(la, lc) {
		t.Error("another seed churned the same")
	}
	if a.Version() != 2 {
		t.Errorf("version %d after two churns", a.Version())
	}
	if _, err := a.Churn(-1, 0); err == nil {
		t.Error("negative churn accepted")
	}
}

func TestChangeErrors(t *testing.T) {
	s, _ := New(Config{Users: 10, Groups: 3, ClientSecret: "s"})
	tn := s.Tenant()
	missing := "4f0e8d2c-1b3a-4c5d-9e7f-0a1b2c3d4e5f"
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"update unknown", s.UpdateUser(missing, func(*User) {})},
		{"restore live user", s.RestoreUser(tn.Users[0].ID)},
		{"delete unknown", s.DeleteUser(missing, false)},
		{"add member unknown", s.AddMembers(tn.Groups[1].ID, missing)},
		{"add group to itself", s.AddMembers(tn.Groups[1].ID, tn.Groups[1].ID)},
		{"remove non-member", s.RemoveMembers(tn.Groups[1].ID, missing)},
		{"unknown group", s.AddMembers(missing, tn.Users[0].ID)},
		{"duplicate UPN", s.UpdateUser(tn.Users[0].ID, func(u *User) { u.UserPrincipalName = tn.Users[1].UserPrincipalName })},
		{"change ID", s.UpdateUser(tn.Users[0].ID, func(u *User) { u.ID = missing })},
		{"bad license", s.SetLicenses(tn.Users[0].ID, []string{"E5"})},
	} {
		if tc.err == nil || !strings.HasPrefix(tc.err.Error(), "graphsim: ") {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	if _, err := s.AddUser(User{ID: tn.Users[0].ID, UserPrincipalName: "x@" + tn.Domain, DisplayName: "X"}); err == nil {
		t.Error("duplicate ID accepted")
	}
	if _, err := s.AddUser(User{UserPrincipalName: tn.Users[0].UserPrincipalName, DisplayName: "X"}); err == nil {
		t.Error("duplicate UPN accepted")
	}
	if s.Version() != 0 || s.Tenant() != tn {
		t.Error("failed changes changed the tenant")
	}
	// Soft-deleted: gone from the tenant and its groups; restore brings it
	// back without memberships; a purged user cannot be restored.
	id := tn.Users[2].ID
	if err := s.DeleteUser(id, false); err != nil {
		t.Fatal(err)
	}
	if s.Tenant().User(id) != nil || groupHas(s.Tenant(), id) || len(s.DeletedUsers()) != 1 {
		t.Error("soft delete left the user")
	}
	if err := s.DeleteUser(id, false); err == nil {
		t.Error("deleted twice")
	}
	if _, err := s.AddUser(User{ID: id, UserPrincipalName: "y@" + tn.Domain, DisplayName: "Y"}); err == nil {
		t.Error("a deleted user's ID was reused")
	}
	if err := s.RestoreUser(id); err != nil || s.Tenant().User(id) == nil || groupHas(s.Tenant(), id) {
		t.Errorf("restore: %v", err)
	}
	if err := s.DeleteUser(id, false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(id, true); err != nil || len(s.DeletedUsers()) != 0 {
		t.Errorf("purge: %v", err)
	}
	if err := s.RestoreUser(id); err == nil {
		t.Error("a purged user was restored")
	}
}

func groupHas(tn *Tenant, id string) bool {
	for _, g := range tn.Groups {
		for _, m := range g.Members {
			if m.ID == id {
				return true
			}
		}
	}
	return false
}

// BenchmarkDeltaInitialUsers reads the first page of a users delta round
// of a 100,000-user tenant.
func BenchmarkDeltaInitialUsers(b *testing.B) {
	s, err := New(Config{Users: 100_000, Groups: 10, ClientSecret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := signToken(s.signKey, &tokenClaims{Aud: graphResource, TID: s.cfg.TenantID, Iat: time.Now().Unix(), Exp: time.Now().Add(time.Hour).Unix(), Roles: DefaultRoles()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1.0/users/delta?$select="+strings.Join(connUserSelect, ","), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Prefer", "odata.maxpagesize=999")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// replica is what a delta client builds from the rounds it reads.
type replica struct {
	users  map[string]map[string]any
	groups map[string]map[string]bool // group -> "type id" of its members
}

func (rp *replica) applyUsers(t *testing.T, items []map[string]any) {
	t.Helper()
	for _, it := range items {
		id := it["id"].(string)
		if it["@removed"] != nil {
			delete(rp.users, id)
			continue
		}
		u := rp.users[id]
		if u == nil {
			if len(it) != len(connUserSelect) {
				t.Errorf("a partial update %v of user %s the replica does not have", it, id)
			}
			u = map[string]any{}
			rp.users[id] = u
		}
		for k, v := range it {
			u[k] = v
		}
	}
}

func (rp *replica) applyGroups(items []map[string]any) {
	for _, it := range items {
		id := it["id"].(string)
		if it["@removed"] != nil {
			delete(rp.groups, id)
			continue
		}
		g := rp.groups[id]
		if g == nil {
			g = map[string]bool{}
			rp.groups[id] = g
		}
		md, _ := it["members@delta"].([]any)
		for _, m := range md {
			mm := m.(map[string]any)
			k := mm["@odata.type"].(string) + " " + mm["id"].(string)
			if mm["@removed"] != nil {
				delete(g, k)
			} else {
				g[k] = true
			}
		}
	}
}

func (rp *replica) check(t *testing.T, tn *Tenant) {
	t.Helper()
	if len(rp.users) != len(tn.Users) {
		t.Errorf("replica has %d users, the tenant %d", len(rp.users), len(tn.Users))
	}
	for _, u := range tn.Users {
		if got := rp.users[u.ID]; !reflect.DeepEqual(got, userFields(u)) {
			t.Errorf("user %s: replica %v, tenant %v", u.ID, got, userFields(u))
		}
	}
	if len(rp.groups) != len(tn.Groups) {
		t.Errorf("replica has %d groups, the tenant %d", len(rp.groups), len(tn.Groups))
	}
	for _, g := range tn.Groups {
		want := map[string]bool{}
		for _, m := range g.Members {
			want[m.ODataType+" "+m.ID] = true
		}
		if got := rp.groups[g.ID]; !maps.Equal(got, want) {
			t.Errorf("group %s: replica has %d members, the tenant %d", g.DisplayName, len(got), len(want))
		}
	}
}

// Changes made while a client pages through a round are never lost: the
// next round brings the replica to the tenant.
func TestDeltaWithConcurrentChanges(t *testing.T) {
	s, c := startSim(t, Config{Users: 300, Groups: 20, Seed: 12, DeltaMembersPerPage: 15})
	tok := token(t, s, c)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for seed := int64(1); ; seed++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := s.Churn(3, seed); err != nil {
				done <- err
				return
			}
			// Paces the churn so the rounds read between changes. The
			// test asserts convergence; its premise (five changes during
			// four rounds of requests) needs no particular speed.
			time.Sleep(200 * time.Microsecond)
		}
	}()
	rp := &replica{users: map[string]map[string]any{}, groups: map[string]map[string]bool{}}
	users, _, ul := round(t, s, c, tok, usersDeltaURL(), 20)
	rp.applyUsers(t, users)
	groups, _, gl := round(t, s, c, tok, groupsDeltaURL(), 5)
	rp.applyGroups(groups)
	// A round while the churn goes on.
	users, _, ul = round(t, s, c, tok, ul, 7)
	rp.applyUsers(t, users)
	groups, _, gl = round(t, s, c, tok, gl, 3)
	rp.applyGroups(groups)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d versions", s.Version())
	if s.Version() < 5 {
		t.Fatalf("only %d versions: the churn did not overlap the rounds", s.Version())
	}
	users, _, _ = round(t, s, c, tok, ul, 0)
	rp.applyUsers(t, users)
	groups, _, _ = round(t, s, c, tok, gl, 0)
	rp.applyGroups(groups)
	rp.check(t, s.Tenant())
}

// pageThrough follows nextLinks from link, calling between(n) before the
// n-th page (n >= 1 after the first) and returns the items and deltaLink.
func pageThrough(t *testing.T, s *Sim, c *http.Client, tok, link string, pageSize int, between func(n int)) ([]map[string]any, string) {
	t.Helper()
	var items []map[string]any
	next := s.URL() + link
	for n := 0; ; n++ {
		if n > 0 {
			between(n)
		}
		r := get(t, c, s, tok, next, "Prefer", "odata.maxpagesize="+strconv.Itoa(pageSize))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		items = append(items, values(t, r)...)
		if nl, _ := r.json["@odata.nextLink"].(string); nl != "" {
			next = nl
			continue
		}
		return items, r.json["@odata.deltaLink"].(string)
	}
}

// An initial round lists the directory as it was when the round started,
// whatever changes while it is paged: with the next round, the replica
// is exact (an object or member created and deleted during the initial
// round would otherwise stay in the replica for ever).
func TestDeltaInitialRoundIsAsOfStart(t *testing.T) {
	s, c := startSim(t, Config{Users: 40, Groups: 8, Seed: 5, DeltaMembersPerPage: 10})
	tok := token(t, s, c)
	tn := s.Tenant()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	rp := &replica{users: map[string]map[string]any{}, groups: map[string]map[string]bool{}}

	// Users: one created (sorting last) while paging, deleted after.
	late := "ffffffff-ffff-4fff-bfff-ffffffffffff"
	items, ul := pageThrough(t, s, c, tok, usersDeltaURL(), 10, func(n int) {
		if n == 1 {
			_, err := s.AddUser(User{ID: late, UserPrincipalName: "late@" + tn.Domain, DisplayName: "Late"})
			must(err)
		}
	})
	rp.applyUsers(t, items)
	must(s.DeleteUser(late, true))

	// Groups: in the group that sorts last, a member added while paging
	// (then removed) and one removed while paging (then added back); in
	// the large All Company group, split over pages, members removed
	// while it is paged.
	ids := make([]string, 0, len(tn.Groups))
	for _, g := range tn.Groups {
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	lastG := s.Tenant().Group(ids[len(ids)-1])
	var outsider string
	for _, u := range tn.Users {
		if !slices.ContainsFunc(lastG.Members, func(m Member) bool { return m.ID == u.ID }) {
			outsider = u.ID
			break
		}
	}
	if len(lastG.Members) == 0 || outsider == "" {
		t.Fatal("test tenant: the last group is empty or full")
	}
	inside := lastG.Members[0].ID
	all := tn.Groups[0]
	if all.DisplayName != "All Company" || len(all.Members) <= 20 {
		t.Fatal("no large All Company group")
	}
	items, gl := pageThrough(t, s, c, tok, groupsDeltaURL(), 1, func(n int) {
		switch n {
		case 1:
			must(s.AddMembers(lastG.ID, outsider))
			must(s.RemoveMembers(lastG.ID, inside))
		default:
			// Remove the first remaining member of All Company.
			if cur := s.Tenant().Group(all.ID); len(cur.Members) > 25 {
				must(s.RemoveMembers(all.ID, cur.Members[0].ID))
			}
		}
	})
	rp.applyGroups(items)
	must(s.RemoveMembers(lastG.ID, outsider))
	must(s.AddMembers(lastG.ID, inside))

	users, _, _ := round(t, s, c, tok, ul, 0)
	rp.applyUsers(t, users)
	groups, _, _ := round(t, s, c, tok, gl, 0)
	rp.applyGroups(groups)
	rp.check(t, s.Tenant())
}
