package graphsim

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGraphAuthentication(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2})
	tok := token(t, s, c)
	parts := strings.Split(tok, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	tests := []struct {
		name, token, msg string
	}{
		{"no token", "", "Access token is empty."},
		{"not a JWT", "hello", "CompactToken parsing failed with error code: 80049217"},
		{"bad signature", tampered, "Access token validation failure."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, c, s, tc.token, "/v1.0/users", "client-request-id", "6a1b2c3d-0000-4000-8000-000000000001")
			code, msg := graphErr(t, r)
			if r.status != http.StatusUnauthorized || code != "InvalidAuthenticationToken" || msg != tc.msg {
				t.Errorf("got %d %s %q", r.status, code, msg)
			}
			if r.header.Get("client-request-id") != "6a1b2c3d-0000-4000-8000-000000000001" || r.header.Get("request-id") == "" {
				t.Errorf("headers %v", r.header)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		s.clockOffset.Store(int64(2 * time.Hour))
		defer s.clockOffset.Store(0)
		r := get(t, c, s, tok, "/v1.0/users")
		if _, msg := graphErr(t, r); r.status != 401 || msg != "Lifetime validation failed, the token is expired." {
			t.Errorf("got %d %q", r.status, msg)
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		s.clockOffset.Store(int64(-time.Hour))
		defer s.clockOffset.Store(0)
		r := get(t, c, s, tok, "/v1.0/users")
		if _, msg := graphErr(t, r); r.status != 401 || msg != "Access token has expired or is not yet valid." {
			t.Errorf("got %d %q", r.status, msg)
		}
	})
	t.Run("other sim's token", func(t *testing.T) {
		other, oc := startSim(t, Config{Users: 5, Groups: 2})
		r := get(t, c, s, token(t, other, oc), "/v1.0/users")
		if r.status != 401 {
			t.Errorf("got %d", r.status)
		}
	})
	t.Run("valid", func(t *testing.T) {
		r := get(t, c, s, tok, "/v1.0/users")
		if r.status != 200 || r.header.Get("request-id") == "" || r.header.Get("client-request-id") != r.header.Get("request-id") {
			t.Errorf("got %d, headers %v", r.status, r.header)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json;") {
			t.Errorf("Content-Type %q", ct)
		}
	})
}

func TestGraphPermissions(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2, Roles: []string{}})
	groupID := s.Tenant().Groups[0].ID
	none := token(t, s, c)
	for _, p := range []string{"/v1.0/users", "/v1.0/groups", "/v1.0/groups/" + groupID + "/members", "/v1.0/users/" + s.Tenant().Users[0].ID} {
		r := get(t, c, s, none, p)
		code, msg := graphErr(t, r)
		if r.status != http.StatusForbidden || code != "Authorization_RequestDenied" || msg != "Insufficient privileges to complete the operation." {
			t.Errorf("%s: %d %s %q", p, r.status, code, msg)
		}
	}
	s.SetRoles([]string{"GroupMember.Read.All"})
	groupsOnly := token(t, s, c)
	for p, want := range map[string]int{"/v1.0/users": 403, "/v1.0/groups": 200, "/v1.0/groups/" + groupID + "/members": 200} {
		if r := get(t, c, s, groupsOnly, p); r.status != want {
			t.Errorf("GroupMember.Read.All %s: %d, want %d", p, r.status, want)
		}
	}
	s.SetRoles([]string{"Directory.Read.All"})
	if r := get(t, c, s, token(t, s, c), "/v1.0/users"); r.status != 200 {
		t.Errorf("Directory.Read.All: %d", r.status)
	}
	// A token issued before keeps its roles.
	if r := get(t, c, s, none, "/v1.0/users"); r.status != 403 {
		t.Errorf("old token: %d", r.status)
	}
}

func TestUsersSelectAndTop(t *testing.T) {
	s, c := startSim(t, Config{Users: 1200, Groups: 2})
	tok := token(t, s, c)
	byID := map[string]User{}
	for _, u := range s.Tenant().Users {
		byID[u.ID] = u
	}

	r := get(t, c, s, tok, "/v1.0/users")
	vals := values(t, r)
	if len(vals) != 100 || r.json["@odata.nextLink"] == nil {
		t.Fatalf("default page: %d users, nextLink %v", len(vals), r.json["@odata.nextLink"])
	}
	if r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#users" {
		t.Errorf("context %v", r.json["@odata.context"])
	}
	got := keys(vals[0])
	slices.Sort(got)
	want := slices.Clone(userDefault)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("default properties %v, want %v", got, want)
	}

	r = get(t, c, s, tok, "/v1.0/users?$select=ID,Mail,accountEnabled,assignedLicenses,userType&$top=999")
	vals = values(t, r)
	if len(vals) != 999 {
		t.Errorf("$top=999 gave %d", len(vals))
	}
	if r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#users(id,mail,accountEnabled,assignedLicenses,userType)" {
		t.Errorf("context %v", r.json["@odata.context"])
	}
	for _, v := range vals {
		got := keys(v)
		slices.Sort(got)
		if !slices.Equal(got, []string{"accountEnabled", "assignedLicenses", "id", "mail", "userType"}) {
			t.Fatalf("selected properties %v", got)
		}
		u := byID[v["id"].(string)]
		if (u.Mail == "") != (v["mail"] == nil) || v["accountEnabled"] != u.AccountEnabled || v["userType"] != u.UserType {
			t.Fatalf("user %v does not match %+v", v, u)
		}
		lic := v["assignedLicenses"].([]any)
		if len(lic) != len(u.AssignedLicenses) {
			t.Fatalf("licenses %v", lic)
		}
		for i, l := range lic {
			m := l.(map[string]any)
			if m["skuId"] != u.AssignedLicenses[i] || len(m["disabledPlans"].([]any)) != 0 {
				t.Fatalf("license %v", m)
			}
		}
	}

	for _, tc := range []struct{ query, code, msg string }{
		{"$top=1000", "Request_BadRequest", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."},
		{"$top=0", "Request_BadRequest", "Invalid page size specified: '0'. Must be between 1 and 999 inclusive."},
		{"$top=ten", "Request_BadRequest", "Invalid page size specified: 'ten'. Must be between 1 and 999 inclusive."},
		{"$select=id,shoeSize", "Request_BadRequest", "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'."},
		{"$search=%22displayName:jo%22", "Request_UnsupportedQuery", ""},
		{"$orderby=displayName", "Request_UnsupportedQuery", ""},
		{"$expand=manager", "Request_UnsupportedQuery", ""},
		{"$filter=accountEnabled%20eq%20true", "Request_UnsupportedQuery", ""},
		{"$skip=10", "Request_BadRequest", ""},
		{"$count=true", "Request_BadRequest", "$count is not currently supported."},
		{"$top=5&$top=6", "Request_BadRequest", ""},
		{"$skiptoken=12345", "Directory_ExpiredPageToken", ""},
	} {
		r := get(t, c, s, tok, "/v1.0/users?"+tc.query)
		code, msg := graphErr(t, r)
		if r.status != 400 || code != tc.code || (tc.msg != "" && msg != tc.msg) {
			t.Errorf("%s: %d %s %q", tc.query, r.status, code, msg)
		}
	}

	// $count=false is ignored; $count=true works with ConsistencyLevel.
	if r := get(t, c, s, tok, "/v1.0/users?$count=false&$top=1"); r.status != 200 || r.json["@odata.count"] != nil {
		t.Errorf("$count=false: %d %v", r.status, r.json["@odata.count"])
	}
	if r := get(t, c, s, tok, "/v1.0/users?$count=true&$top=1", "ConsistencyLevel", "eventual"); r.status != 200 || r.json["@odata.count"] != float64(1200) {
		t.Errorf("$count=true: %d %v", r.status, r.json["@odata.count"])
	}
}

// collect follows @odata.nextLink from path and returns every item.
func collect(t *testing.T, s *Sim, c *http.Client, tok, path string) (items []map[string]any, pages int) {
	t.Helper()
	next := s.URL() + path
	for next != "" {
		r := get(t, c, s, tok, next)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", next, r.status, r.body)
		}
		items = append(items, values(t, r)...)
		pages++
		next, _ = r.json["@odata.nextLink"].(string)
		if next != "" && !strings.HasPrefix(next, s.URL()+"/v1.0/") {
			t.Fatalf("nextLink %s is not on %s", next, s.URL())
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
	}
	return items, pages
}

func TestPagingAllUsers(t *testing.T) {
	s, c := startSim(t, Config{Users: 2345, Groups: 2})
	tok := token(t, s, c)
	for _, top := range []int{999, 100, 7} {
		items, pages := collect(t, s, c, tok, "/v1.0/users?$select=id,userPrincipalName&$top="+strconv.Itoa(top))
		if want := (2345 + top - 1) / top; pages != want {
			t.Errorf("$top=%d: %d pages, want %d", top, pages, want)
		}
		seen := map[string]int{}
		for _, it := range items {
			seen[it["id"].(string)]++
		}
		for _, u := range s.Tenant().Users {
			if seen[u.ID] != 1 {
				t.Fatalf("$top=%d: user %s seen %d times", top, u.ID, seen[u.ID])
			}
		}
		if len(items) != 2345 {
			t.Errorf("$top=%d: %d items", top, len(items))
		}
	}

	// The nextLink keeps the query; a tampered or foreign token is refused.
	r := get(t, c, s, tok, "/v1.0/users?%24select=id,mail&%24top=10")
	next := r.json["@odata.nextLink"].(string)
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("$select") != "id,mail" || q.Get("$top") != "10" || q.Get("$skiptoken") == "" {
		t.Fatalf("nextLink %s", next)
	}
	skip := q.Get("$skiptoken")
	tamper := []byte(skip)
	tamper[len(tamper)/2] ^= 1
	for _, bad := range []string{string(tamper), skip[:len(skip)-2], "MTA"} {
		r := get(t, c, s, tok, "/v1.0/users?$top=10&$skiptoken="+url.QueryEscape(bad))
		if code, _ := graphErr(t, r); r.status != 400 || code != "Directory_ExpiredPageToken" {
			t.Errorf("skiptoken %q: %d %s", bad, r.status, code)
		}
	}
	if r := get(t, c, s, tok, "/v1.0/groups?$skiptoken="+skip); r.status != 400 {
		t.Errorf("a users skiptoken paged groups: %d", r.status)
	}
}

func TestGroupsAndUnifiedFilter(t *testing.T) {
	s, c := startSim(t, Config{Users: 300, Groups: 240})
	tok := token(t, s, c)
	var unified []string
	for _, g := range s.Tenant().Groups {
		if g.IsUnified() {
			unified = append(unified, g.ID)
		}
	}

	all, _ := collect(t, s, c, tok, "/v1.0/groups")
	if len(all) != 240 {
		t.Fatalf("%d groups", len(all))
	}
	for _, k := range []string{"id", "displayName", "groupTypes", "mail", "mailEnabled", "mailNickname", "securityEnabled", "visibility", "proxyAddresses"} {
		if _, ok := all[0][k]; !ok {
			t.Errorf("group lacks %s: %v", k, all[0])
		}
	}

	for _, f := range []string{"groupTypes/any(c:c eq 'Unified')", "groupTypes/any(x: x eq 'unified')", " groupTypes/any( g : g  eq 'UNIFIED' ) "} {
		items, _ := collect(t, s, c, tok, "/v1.0/groups?$select=id,groupTypes&$top=50&$filter="+url.QueryEscape(f))
		var ids []string
		for _, it := range items {
			if gt := it["groupTypes"].([]any); len(gt) != 1 || gt[0] != "Unified" {
				t.Fatalf("filter %q returned %v", f, it)
			}
			ids = append(ids, it["id"].(string))
		}
		if !slices.Equal(ids, unified) {
			t.Errorf("filter %q: %d groups, want %d", f, len(ids), len(unified))
		}
	}
	for _, f := range []string{"groupTypes/any(c:c eq 'DynamicMembership')", "mailEnabled eq true", "groupTypes/any(c:d eq 'Unified')"} {
		r := get(t, c, s, tok, "/v1.0/groups?$filter="+url.QueryEscape(f))
		if code, _ := graphErr(t, r); r.status != 400 || code != "Request_UnsupportedQuery" {
			t.Errorf("filter %q: %d %s", f, r.status, code)
		}
	}
	r := get(t, c, s, tok, "/v1.0/groups?$select=nope")
	if _, msg := graphErr(t, r); msg != "Could not find a property named 'nope' on type 'microsoft.graph.group'." {
		t.Errorf("message %q", msg)
	}
}

func TestMembers(t *testing.T) {
	s, c := startSim(t, Config{Users: 250, Groups: 60})
	tok := token(t, s, c)
	tn := s.Tenant()

	// All Company: every user, over three pages.
	items, pages := collect(t, s, c, tok, "/v1.0/groups/"+tn.Groups[0].ID+"/members?$select=id,mail")
	if pages != 3 {
		t.Errorf("%d pages", pages)
	}
	var userItems int
	for _, it := range items {
		if it["@odata.type"] == TypeUser {
			userItems++
		}
	}
	if userItems != 250 {
		t.Errorf("All Company lists %d users", userItems)
	}

	// Every group's members match the tenant, with their @odata.type.
	nonUsers := 0
	for _, g := range tn.Groups {
		items, _ := collect(t, s, c, tok, "/v1.0/groups/"+g.ID+"/members?$top=999&$select=id,displayName,mail,userPrincipalName")
		if len(items) != len(g.Members) {
			t.Fatalf("group %s: %d members, want %d", g.DisplayName, len(items), len(g.Members))
		}
		for i, it := range items {
			m := g.Members[i]
			if it["id"] != m.ID || it["@odata.type"] != m.ODataType {
				t.Fatalf("member %d: %v, want %+v", i, it, m)
			}
			switch m.ODataType {
			case TypeUser:
				u := tn.User(m.ID)
				if it["userPrincipalName"] != u.UserPrincipalName || it["displayName"] != u.DisplayName {
					t.Fatalf("member %v, want %+v", it, u)
				}
			case TypeOrgContact:
				nonUsers++
				if _, ok := it["userPrincipalName"]; ok || it["mail"] == nil {
					t.Fatalf("contact %v", it)
				}
			default:
				nonUsers++
				if _, ok := it["mail"]; ok && m.ODataType == TypeDevice {
					t.Fatalf("device with mail: %v", it)
				}
			}
		}
	}
	if nonUsers == 0 {
		t.Error("no member that is not a user")
	}
	r := get(t, c, s, tok, "/v1.0/groups/"+tn.Groups[1].ID+"/members")
	if r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#directoryObjects" {
		t.Errorf("context %v", r.json["@odata.context"])
	}

	// The user cast lists only users.
	for _, g := range tn.Groups {
		items, _ := collect(t, s, c, tok, "/v1.0/groups/"+g.ID+"/members/microsoft.graph.user?$select=id")
		want := 0
		for _, m := range g.Members {
			if m.ODataType == TypeUser {
				want++
			}
		}
		if len(items) != want {
			t.Fatalf("cast: %d users, want %d", len(items), want)
		}
	}

	missing := "4f0e8d2c-1b3a-4c5d-9e7f-0a1b2c3d4e5f"
	r = get(t, c, s, tok, "/v1.0/groups/"+missing+"/members")
	code, msg := graphErr(t, r)
	if r.status != http.StatusNotFound || code != "Request_ResourceNotFound" ||
		msg != "Resource '"+missing+"' does not exist or one of its queried reference-property objects are not present." {
		t.Errorf("unknown group: %d %s %q", r.status, code, msg)
	}
	if r := get(t, c, s, tok, "/v1.0/groups/not-a-guid/members"); r.status != 400 {
		t.Errorf("invalid group id: %d", r.status)
	}
	if r := get(t, c, s, tok, "/v1.0/groups/"+tn.Groups[0].ID+"/members?$select=shoeSize"); r.status != 400 {
		t.Errorf("unknown member property: %d", r.status)
	}
}

func TestSingleObjectsAndRouting(t *testing.T) {
	s, c := startSim(t, Config{Users: 30, Groups: 5})
	tok := token(t, s, c)
	tn := s.Tenant()
	var guest User
	for _, u := range tn.Users {
		if u.UserType == "Guest" {
			guest = u
		}
	}
	for _, p := range []string{"/v1.0/users/" + guest.ID, "/v1.0/users/" + url.PathEscape(guest.UserPrincipalName), "/v1.0/users/" + strings.ToUpper(guest.ID)} {
		r := get(t, c, s, tok, p+"?$select=id,mail,userType")
		if r.status != 200 || r.json["id"] != guest.ID || r.json["mail"] != guest.Mail || r.json["userType"] != "Guest" {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
		if r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#users(id,mail,userType)/$entity" {
			t.Errorf("context %v", r.json["@odata.context"])
		}
	}
	g := tn.Groups[1]
	r := get(t, c, s, tok, "/v1.0/groups/"+g.ID)
	if r.status != 200 || r.json["displayName"] != g.DisplayName || r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#groups/$entity" {
		t.Errorf("group: %d %s", r.status, r.body)
	}
	if r := get(t, c, s, tok, "/v1.0/users/nobody@contoso.onmicrosoft.com"); r.status != 404 {
		t.Errorf("unknown user: %d", r.status)
	}

	for _, tc := range []struct {
		path   string
		status int
		code   string
		msg    string
	}{
		{"/v1.0/applications", 400, "BadRequest", "Resource not found for the segment 'applications'."},
		{"/v1.0/users/" + guest.ID + "/photo", 400, "BadRequest", "Resource not found for the segment 'photo'."},
		{"/v1.0/groups/" + g.ID + "/owners", 400, "BadRequest", "Resource not found for the segment 'owners'."},
		{"/beta/users", 404, "UnknownError", ""},
	} {
		r := get(t, c, s, tok, tc.path)
		code, msg := graphErr(t, r)
		if r.status != tc.status || code != tc.code || (tc.msg != "" && msg != tc.msg) {
			t.Errorf("%s: %d %s %q", tc.path, r.status, code, msg)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, s.GraphURL()+"/users/"+guest.ID, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if r := do(t, c, req); r.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", r.status)
	}
}

func TestRequestsCounterAndMutationServed(t *testing.T) {
	s, c := startSim(t, Config{Users: 20, Groups: 3})
	tok := token(t, s, c)
	before := s.Requests()
	get(t, c, s, tok, "/v1.0/users")
	get(t, c, s, "", "/v1.0/groups")
	get(t, c, s, "", "/"+s.Tenant().ID+"/v2.0/.well-known/openid-configuration")
	if got := s.Requests() - before; got != 2 {
		t.Errorf("Requests grew by %d, want 2", got)
	}
	gone := s.Tenant().Users[3].ID
	if err := s.Mutate(func(t *Tenant) {
		t.Users = slices.Delete(t.Users, 3, 4)
		for i := range t.Groups {
			t.Groups[i].Members = slices.DeleteFunc(t.Groups[i].Members, func(m Member) bool { return m.ID == gone })
		}
	}); err != nil {
		t.Fatal(err)
	}
	items, _ := collect(t, s, c, tok, "/v1.0/users?$select=id")
	if len(items) != 19 {
		t.Errorf("%d users after removing one", len(items))
	}
	if r := get(t, c, s, tok, "/v1.0/users/"+gone); r.status != 404 {
		t.Errorf("removed user: %d", r.status)
	}
}

// BenchmarkUsersPage measures one page of 999 users of a 100,000-user
// tenant with the properties the connector selects.
func BenchmarkUsersPage(b *testing.B) {
	s, err := New(Config{Users: 100_000, Groups: 10, ClientSecret: testSecret})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := signToken(s.signKey, &tokenClaims{Aud: graphResource, TID: s.cfg.TenantID, Exp: time.Now().Add(time.Hour).Unix(), Roles: DefaultRoles()})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1.0/users?$select=id,mail,userPrincipalName,displayName,givenName,surname,accountEnabled,userType,assignedLicenses,department,jobTitle&$top=999", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
