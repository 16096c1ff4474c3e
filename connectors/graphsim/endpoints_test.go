package graphsim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// attrSim starts an Attributes tenant whose app may read mailbox
// settings.
func attrSim(t *testing.T, roles ...string) (*Sim, *http.Client, string) {
	t.Helper()
	if roles == nil {
		roles = append(DefaultRoles(), RoleMailboxSettingsRead)
	}
	s, c := startSim(t, Config{Users: 60, Groups: 12, Seed: 5, Attributes: true, Resources: 4, Roles: roles})
	return s, c, token(t, s, c)
}

// firstUser returns the first user for which ok holds.
func firstUser(t *testing.T, s *Sim, ok func(u *User) bool) User {
	t.Helper()
	for _, u := range s.Tenant().Users {
		if ok(&u) {
			return u
		}
	}
	t.Fatal("no such user in the test tenant")
	return User{}
}

func TestMailboxSettings(t *testing.T) {
	s, c, tok := attrSim(t)
	person := firstUser(t, s, func(u *User) bool { return u.MailboxPurpose == MailboxUser })
	room := firstUser(t, s, func(u *User) bool { return u.MailboxPurpose != "" && u.MailboxPurpose != MailboxUser })
	noMailbox := firstUser(t, s, func(u *User) bool { return u.MailboxPurpose == "" })
	tests := []struct {
		name, path string
		status     int
		code       string
		purpose    string
	}{
		{"user", "/v1.0/users/" + person.ID + "/mailboxSettings", 200, "", MailboxUser},
		{"by UPN, selected", "/v1.0/users/" + room.UserPrincipalName + "/mailboxSettings?$select=userPurpose", 200, "", room.MailboxPurpose},
		{"property", "/v1.0/users/" + person.ID + "/mailboxSettings/userPurpose", 200, "", MailboxUser},
		{"no mailbox", "/v1.0/users/" + noMailbox.ID + "/mailboxSettings", 404, "MailboxNotEnabledForRESTAPI", ""},
		{"unknown user", "/v1.0/users/0f8fad5b-d9cb-469f-a165-70867728950e/mailboxSettings", 404, "ErrorInvalidUser", ""},
		{"unknown property", "/v1.0/users/" + person.ID + "/mailboxSettings?$select=colour", 400, "RequestBroker--ParseUri", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, c, s, tok, tc.path)
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if tc.code != "" {
				if code, _ := graphErr(t, r); code != tc.code {
					t.Errorf("code %s", code)
				}
				return
			}
			got := r.json["userPurpose"]
			if strings.HasSuffix(tc.path, "/userPurpose") {
				got = r.json["value"]
			}
			if got != tc.purpose || !strings.Contains(r.json["@odata.context"].(string), "/mailboxSettings") {
				t.Errorf("body %s", r.body)
			}
			if strings.Contains(tc.path, "$select") && len(r.json) != 2 {
				t.Errorf("$select=userPurpose answered %s", r.body)
			}
		})
	}
	if err := s.SetMailboxPurpose(person.ID, ""); err != nil {
		t.Fatal(err)
	}
	if r := get(t, c, s, tok, "/v1.0/users/"+person.ID+"/mailboxSettings"); r.status != 404 {
		t.Errorf("after SetMailboxPurpose(\"\"): %d", r.status)
	}
	if err := s.SetMailboxPurpose(person.ID, "kitchen"); err == nil {
		t.Error("an unknown purpose was accepted")
	}
}

func TestMailboxSettingsPermission(t *testing.T) {
	for _, tc := range []struct {
		roles  []string
		status int
	}{
		{DefaultRoles(), 403},
		{[]string{"MailboxSettings.ReadWrite"}, 200},
		{[]string{RoleMailboxSettingsRead}, 200},
	} {
		s, c, tok := attrSim(t, tc.roles...)
		u := firstUser(t, s, func(u *User) bool { return u.MailboxPurpose == MailboxUser })
		r := get(t, c, s, tok, "/v1.0/users/"+u.ID+"/mailboxSettings")
		if r.status != tc.status {
			t.Fatalf("roles %v: %d %s", tc.roles, r.status, r.body)
		}
		if tc.status == 403 {
			if code, msg := graphErr(t, r); code != "ErrorAccessDenied" || msg != "Access is denied. Check credentials and try again." {
				t.Errorf("403 %s %q", code, msg)
			}
		}
	}
}

func TestManagerAndAttributes(t *testing.T) {
	s, c, tok := attrSim(t)
	u := firstUser(t, s, func(u *User) bool { return u.ManagerID != "" })
	top := firstUser(t, s, func(u *User) bool { return u.ManagerID == "" })
	r := get(t, c, s, tok, "/v1.0/users/"+u.ID+"/manager?$select=id,displayName")
	if r.status != 200 || r.json["id"] != u.ManagerID || r.json["@odata.type"] != TypeUser ||
		r.json["@odata.context"] != s.URL()+"/v1.0/$metadata#directoryObjects/$entity" {
		t.Errorf("manager: %d %s", r.status, r.body)
	}
	r = get(t, c, s, tok, "/v1.0/users/"+top.ID+"/manager")
	if code, msg := graphErr(t, r); r.status != 404 || code != "Request_ResourceNotFound" || !strings.Contains(msg, "'manager'") {
		t.Errorf("no manager: %d %s %q", r.status, code, msg)
	}

	// The attributes, selected and by default.
	sel := "proxyAddresses,preferredLanguage,employeeId,employeeType,companyName,officeLocation,city,country,usageLocation,mobilePhone,onPremisesExtensionAttributes"
	r = get(t, c, s, tok, "/v1.0/users/"+u.ID+"?$select="+sel)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r.json["preferredLanguage"] != u.PreferredLanguage || r.json["usageLocation"] != u.UsageLocation || r.json["employeeId"] != nilIfEmpty(u.EmployeeID) {
		t.Errorf("attributes %s", r.body)
	}
	ext, ok := r.json["onPremisesExtensionAttributes"].(map[string]any)
	if !ok || len(ext) != 15 || ext["extensionAttribute1"] != nilIfEmpty(u.ExtensionAttributes[0]) {
		t.Errorf("onPremisesExtensionAttributes %v", r.json["onPremisesExtensionAttributes"])
	}
	r = get(t, c, s, tok, "/v1.0/users/"+u.ID)
	want := []string{"@odata.context", "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}
	got := keys(r.json)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || r.json["preferredLanguage"] != u.PreferredLanguage {
		t.Errorf("default properties %v", got)
	}
	if err := s.SetManager(u.ID, u.ID); err == nil {
		t.Error("a user became its own manager")
	}
	if err := s.SetManager(u.ID, "0f8fad5b-d9cb-469f-a165-70867728950e"); err == nil {
		t.Error("an unknown manager was accepted")
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestTransitiveMembers(t *testing.T) {
	s, c, tok := attrSim(t)
	tn := s.Tenant()
	var ng []*Group
	for i := 1; i < len(tn.Groups) && len(ng) < 4; i++ {
		if !tn.Groups[i].IsUnified() {
			ng = append(ng, &tn.Groups[i])
		}
	}
	// Expected: the members of A, B, C and D (B and D hold each other).
	want := map[string]bool{}
	for _, g := range ng {
		for _, m := range g.Members {
			want[m.ID] = true
		}
	}
	delete(want, ng[0].ID)
	for _, tc := range []struct {
		name, path string
		users      bool
	}{
		{"all", "/v1.0/groups/" + ng[0].ID + "/transitiveMembers?$top=7", false},
		{"users", "/v1.0/groups/" + ng[0].ID + "/transitiveMembers/microsoft.graph.user?$select=id,displayName&$top=5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]bool{}
			next := tc.path
			for next != "" {
				r := get(t, c, s, tok, next)
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				for _, v := range values(t, r) {
					id := v["id"].(string)
					if got[id] {
						t.Errorf("%s listed twice", id)
					}
					got[id] = true
					if tc.users && v["@odata.type"] != TypeUser {
						t.Errorf("cast listed %v", v["@odata.type"])
					}
				}
				next, _ = r.json["@odata.nextLink"].(string)
			}
			n := 0
			for id := range want {
				if tc.users && tn.User(id) == nil {
					continue
				}
				n++
				if !got[id] {
					t.Errorf("%s missing", id)
				}
			}
			if len(got) != n {
				t.Errorf("%d listed, want %d", len(got), n)
			}
		})
	}
	if r := get(t, c, s, tok, "/v1.0/groups/"+ng[0].ID+"/transitiveMembers/owners"); r.status != 400 {
		t.Errorf("unknown cast: %d", r.status)
	}
}

// postBatch sends a $batch with n GET requests built by url(i).
func postBatch(t *testing.T, s *Sim, c *http.Client, tok string, n int, url func(i int) string) *response {
	t.Helper()
	var reqs []map[string]any
	for i := range n {
		reqs = append(reqs, map[string]any{"id": fmt.Sprint(i + 1), "method": "GET", "url": url(i)})
	}
	b, _ := json.Marshal(map[string]any{"requests": reqs})
	req, _ := http.NewRequest(http.MethodPost, s.GraphURL()+"/$batch", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	return do(t, c, req)
}

func TestBatch(t *testing.T) {
	s, c, tok := attrSim(t)
	users := s.Tenant().Users
	mailbox := func(i int) string { return "/users/" + users[i].ID + "/mailboxSettings?$select=userPurpose" }

	r := postBatch(t, s, c, tok, 21, mailbox)
	if code, msg := graphErr(t, r); r.status != 400 || code != "BadRequest" || !strings.Contains(msg, "exceeds the limit") {
		t.Errorf("21 requests: %d %s %q", r.status, code, msg)
	}

	s.ResetCounters()
	r = postBatch(t, s, c, tok, 20, func(i int) string {
		switch i {
		case 0:
			return "users/" + users[0].ID + "?$select=id,preferredLanguage" // no leading slash
		case 1:
			return "/groups/nope"
		}
		return mailbox(i)
	})
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	resps := r.json["responses"].([]any)
	if len(resps) != 20 {
		t.Fatalf("%d responses", len(resps))
	}
	for i, x := range resps {
		item := x.(map[string]any)
		want := 200
		switch {
		case i == 1:
			want = 400
		case i >= 2 && users[i].MailboxPurpose == "":
			want = 404
		}
		if item["id"] != fmt.Sprint(i+1) || int(item["status"].(float64)) != want {
			t.Errorf("item %d: %v", i, item)
		}
		if _, ok := item["body"].(map[string]any); !ok {
			t.Errorf("item %d has no JSON body", i)
		}
	}
	cnt := s.Counters()
	if cnt["POST /v1.0/$batch 200"] != 1 || cnt["GET /v1.0/users/{id} 200"] != 1 || cnt["GET /v1.0/users/{id}/mailboxSettings 200"] == 0 {
		t.Errorf("counters %v", cnt)
	}

	// Throttled items: 429 with Retry-After inside a 200 batch.
	s.SetFaults(Faults{BatchItemThrottleRate: 0.5, RetryAfter: "3", Seed: 1})
	first := ""
	for round := range 2 {
		s.SetFaults(Faults{BatchItemThrottleRate: 0.5, RetryAfter: "3", Seed: 1})
		r = postBatch(t, s, c, tok, 10, func(i int) string { return "/users/" + users[i].ID })
		if r.status != 200 {
			t.Fatalf("throttled batch: %d", r.status)
		}
		throttled := ""
		for _, x := range r.json["responses"].([]any) {
			item := x.(map[string]any)
			if item["status"].(float64) != 429 {
				continue
			}
			throttled += item["id"].(string) + " "
			h := item["headers"].(map[string]any)
			e := item["body"].(map[string]any)["error"].(map[string]any)
			if h["Retry-After"] != "3" || e["code"] != "TooManyRequests" {
				t.Errorf("429 item %v", item)
			}
		}
		if throttled == "" || strings.Count(throttled, " ") == 10 {
			t.Errorf("throttled items %q of 10 at rate 0.5", throttled)
		}
		if round == 0 {
			first = throttled
		} else if throttled != first {
			t.Errorf("not deterministic: %q then %q", first, throttled)
		}
	}
	s.SetFaults(Faults{})

	for _, tc := range []struct {
		name, body string
	}{
		{"not JSON", "{"},
		{"no requests", `{}`},
		{"duplicate id", `{"requests":[{"id":"1","method":"GET","url":"/users"},{"id":"1","method":"GET","url":"/groups"}]}`},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.GraphURL()+"/$batch", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if r := do(t, c, req); r.status != 400 {
			t.Errorf("%s: %d", tc.name, r.status)
		}
	}
	if r := get(t, c, s, tok, "/v1.0/$batch"); r.status != 405 {
		t.Errorf("GET $batch: %d", r.status)
	}

	// The SDKs gzip request bodies, and send them plainly after a 415.
	plain := `{"requests":[{"id":"a","method":"GET","url":"` + mailbox(0) + `"}]}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(plain))
	_ = zw.Close()
	for _, tc := range []struct {
		encoding string
		body     []byte
		status   int
	}{
		{"gzip", gz.Bytes(), 200},
		{"br", []byte(plain), 415},
		{"gzip", []byte(plain), 400}, // says gzip, is not
	} {
		req, _ := http.NewRequest(http.MethodPost, s.GraphURL()+"/$batch", bytes.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Encoding", tc.encoding)
		r := do(t, c, req)
		if r.status != tc.status {
			t.Errorf("Content-Encoding %s: %d %s, want %d", tc.encoding, r.status, r.body, tc.status)
			continue
		}
		if tc.status == 200 {
			item := r.json["responses"].([]any)[0].(map[string]any)
			if item["id"] != "a" || item["status"].(float64) != 200 {
				t.Errorf("gzip batch item %v", item)
			}
		}
	}
}

func TestDeltaReportsAttributeChanges(t *testing.T) {
	s, c, tok := attrSim(t)
	link := "/v1.0/users/delta?$select=displayName,preferredLanguage,proxyAddresses,manager"
	items, _, deltaLink := round(t, s, c, tok, link, 0)
	withManager := 0
	for _, it := range items {
		if md, ok := it["manager@delta"].([]any); ok {
			withManager++
			m := md[0].(map[string]any)
			if m["@odata.type"] != TypeUser || m["id"] == "" {
				t.Errorf("manager@delta %v", md)
			}
		}
	}
	if withManager == 0 {
		t.Error("the initial round has no manager@delta")
	}
	tn := s.Tenant()
	managed := firstUser(t, s, func(u *User) bool { return u.ManagerID != "" && u.MailboxPurpose == MailboxUser })
	boss := firstUser(t, s, func(u *User) bool { return u.ManagerID == "" && isPerson(u) && u.ID != managed.ManagerID })
	other := tn.Users[len(tn.Users)-5]
	type want struct {
		key   string
		check func(v any) bool
	}
	tests := []struct {
		name   string
		change func() error
		id     string
		want   want
	}{
		{"manager changed", func() error { return s.SetManager(managed.ID, boss.ID) }, managed.ID,
			want{"manager@delta", func(v any) bool {
				m := v.([]any)[0].(map[string]any)
				return m["id"] == boss.ID && m["@removed"] == nil
			}}},
		{"manager removed", func() error { return s.SetManager(managed.ID, "") }, managed.ID,
			want{"manager@delta", func(v any) bool {
				m := v.([]any)[0].(map[string]any)
				return m["id"] == boss.ID && m["@removed"] != nil
			}}},
		{"language", func() error { return s.UpdateUser(other.ID, func(u *User) { u.PreferredLanguage = "fr-CA" }) }, other.ID,
			want{"preferredLanguage", func(v any) bool { return v == "fr-CA" }}},
		{"alias", func() error {
			return s.UpdateUser(managed.ID, func(u *User) { u.ProxyAddresses = append(u.ProxyAddresses, "smtp:new.alias@contoso.com") })
		}, managed.ID,
			want{"proxyAddresses", func(v any) bool { return slices.Contains(v.([]any), any("smtp:new.alias@contoso.com")) }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			var items []map[string]any
			items, _, deltaLink = round(t, s, c, tok, deltaLink, 0)
			if len(items) != 1 || items[0]["id"] != tc.id {
				t.Fatalf("round: %v", items)
			}
			if v, ok := items[0][tc.want.key]; !ok || !tc.want.check(v) {
				t.Errorf("%s: %v", tc.want.key, items[0])
			}
			if _, ok := items[0]["displayName"]; ok {
				t.Errorf("unchanged displayName sent: %v", items[0])
			}
		})
	}
}
