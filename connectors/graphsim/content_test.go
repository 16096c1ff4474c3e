package graphsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// rawGet sends a Graph GET and returns the answer without decoding it.
func rawGet(t *testing.T, c *http.Client, s *Sim, tok, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp, b
}

// byID returns the objects of an answer's value array by id.
func byID(t *testing.T, body []byte) map[string]map[string]any {
	t.Helper()
	var page struct {
		Value []map[string]any `json:"value"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	out := map[string]map[string]any{}
	for _, v := range page.Value {
		id, _ := v["id"].(string)
		out[id] = v
	}
	return out
}

func TestOversizeBytes(t *testing.T) {
	s, c := startSim(t, Config{Users: 20, Groups: 3, Seed: 2})
	tok := token(t, s, c)
	_, plain := rawGet(t, c, s, tok, "/v1.0/users?$select=id,displayName")
	const size = 1 << 20
	tests := []struct {
		name, bodyPath string
		padded         bool
	}{
		{"every endpoint", "", true},
		{"this endpoint", "/v1.0/users", true},
		{"another endpoint", "/v1.0/users/delta", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFaults(Faults{OversizeBytes: size, BodyFaultPath: tt.bodyPath})
			defer s.SetFaults(Faults{})
			resp, b := rawGet(t, c, s, tok, "/v1.0/users?$select=id,displayName")
			if padded := len(b) >= size; padded != tt.padded {
				t.Fatalf("answer of %d bytes, padded %v", len(b), tt.padded)
			}
			if streamed := resp.ContentLength < 0; streamed != tt.padded {
				t.Errorf("Content-Length %d", resp.ContentLength)
			}
			// The padding is whitespace: the JSON means the same.
			var got, want any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(plain, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Error("the padded answer means something else")
			}
		})
	}
}

func TestNestingDepth(t *testing.T) {
	s, c := startSim(t, Config{Users: 5, Groups: 2, Seed: 2})
	tok := token(t, s, c)
	for _, depth := range []int{1, 7, 100_000} {
		s.SetFaults(Faults{NestingDepth: depth, BodyFaultPath: "/v1.0/users/delta"})
		_, b := rawGet(t, c, s, tok, "/v1.0/users/delta")
		prefix := `{"@graphsim.nested":`
		if !bytes.HasPrefix(b, []byte(prefix)) {
			t.Fatalf("depth %d: answer starts %.60q", depth, b)
		}
		opened, maxDepth, level := 0, 0, 0
		for _, ch := range b[len(prefix):] {
			switch ch {
			case '[', '{':
				opened++
				level++
				maxDepth = max(maxDepth, level)
			case ']', '}':
				level--
			}
			if level == 0 {
				break
			}
		}
		if maxDepth != depth {
			t.Errorf("depth %d: nested %d levels", depth, maxDepth)
		}
		if depth < 10_000 { // encoding/json refuses deeper
			var page struct {
				Value []map[string]any `json:"value"`
			}
			if err := json.Unmarshal(b, &page); err != nil || len(page.Value) != 5 {
				t.Errorf("depth %d: %d users, %v", depth, len(page.Value), err)
			}
		}
		// Other endpoints are left alone.
		if _, b := rawGet(t, c, s, tok, "/v1.0/users"); bytes.Contains(b, []byte("@graphsim.nested")) {
			t.Errorf("depth %d: /v1.0/users nested too", depth)
		}
	}
	s.SetFaults(Faults{})
}

func TestUserContentFaults(t *testing.T) {
	s, c := startSim(t, Config{Users: 10, Groups: 2, Seed: 3})
	tok := token(t, s, c)
	tn := s.Tenant()
	hostile, invalid, plain := tn.Users[1], tn.Users[2], tn.Users[3]
	s.SetFaults(Faults{HostileUsers: " " + strings.ToUpper(hostile.ID) + " ,", InvalidUTF8Users: invalid.ID})
	defer s.SetFaults(Faults{})
	all := tn.Groups[0].ID // holds every user
	paths := []string{
		"/v1.0/users/delta",
		"/v1.0/users",
		"/v1.0/groups/" + all + "/members?$select=id,displayName,givenName,surname,mail,department,jobTitle,userPrincipalName",
	}
	for _, p := range paths {
		_, b := rawGet(t, c, s, tok, p)
		if utf8.Valid(b) || !bytes.Contains(b, []byte(InvalidUTF8DisplayName)) {
			t.Errorf("%s: the invalid UTF-8 is not sent raw", p)
		}
		users := byID(t, b)
		h := users[hostile.ID]
		want := map[string]string{"displayName": HostileDisplayName, "givenName": HostileGivenName, "surname": HostileSurname,
			"mail": HostileMail, "department": HostileDepartment, "jobTitle": HostileJobTitle, "userPrincipalName": hostile.UserPrincipalName}
		for k, v := range want {
			if _, selected := h[k]; selected && h[k] != v {
				t.Errorf("%s: hostile user's %s = %q, want %q", p, k, h[k], v)
			}
		}
		if h["displayName"] != HostileDisplayName {
			t.Errorf("%s: hostile user %v", p, h)
		}
		// encoding/json reads each invalid byte as U+FFFD.
		if got, _ := users[invalid.ID]["displayName"].(string); !strings.HasPrefix(got, "Bad \ufffd \ufffd\ufffd UTF-8") {
			t.Errorf("%s: invalid user's displayName %q", p, got)
		}
		if got := users[plain.ID]["displayName"]; got != plain.DisplayName {
			t.Errorf("%s: a user not named changed: %q", p, got)
		}
	}
	// The tenant itself is unchanged.
	if s.Tenant().User(hostile.ID).DisplayName != hostile.DisplayName {
		t.Error("the fault changed the tenant")
	}
}

func TestNonGUIDIDsAndMembersWithoutID(t *testing.T) {
	s, c := startSim(t, Config{Users: 10, Groups: 2, Seed: 3})
	tok := token(t, s, c)
	tn := s.Tenant()
	u, grp := tn.Users[4], tn.Groups[0] // grp holds every user
	gone := tn.Users[5]
	_, first := rawGet(t, c, s, tok, "/v1.0/users/delta?$deltatoken=latest")
	var latest struct {
		DeltaLink string `json:"@odata.deltaLink"`
	}
	if err := json.Unmarshal(first, &latest); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(gone.ID, true); err != nil {
		t.Fatal(err)
	}
	s.SetFaults(Faults{NonGUIDIDs: u.ID + "," + grp.ID + "," + gone.ID, MembersWithoutID: grp.ID})
	defer s.SetFaults(Faults{})

	quoted := func(id string) []byte { return appendJSONString(nil, id) }
	check := func(path string, want ...string) []byte {
		t.Helper()
		_, b := rawGet(t, c, s, tok, strings.TrimPrefix(path, s.URL()))
		for _, id := range []string{u.ID, grp.ID, gone.ID} {
			if bytes.Contains(b, quoted(id)) {
				t.Errorf("%s: %s served as it is", path, id)
			}
		}
		for _, id := range want {
			if !bytes.Contains(b, quoted(NonGUIDID(id))) {
				t.Errorf("%s: %s not served as %q", path, id, NonGUIDID(id))
			}
		}
		return b
	}
	check("/v1.0/users", u.ID)
	check("/v1.0/groups", grp.ID)
	check("/v1.0/groups/"+grp.ID+"/members", u.ID)
	check(latest.DeltaLink, gone.ID) // @removed
	b := check("/v1.0/groups/delta", grp.ID, u.ID)

	var page struct {
		Value []struct {
			ID      string `json:"id"`
			Members []struct {
				Type string  `json:"@odata.type"`
				ID   *string `json:"id"`
			} `json:"members@delta"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	without := map[string]int{}
	for _, g := range page.Value {
		for _, m := range g.Members {
			if m.ID == nil {
				without[g.ID]++
				if m.Type != TypeUser {
					t.Errorf("the member without id has type %q", m.Type)
				}
			}
		}
	}
	if len(without) != 1 || without[NonGUIDID(grp.ID)] != 1 {
		t.Errorf("members without id by group: %v", without)
	}
}

func TestContentFaultsJSON(t *testing.T) {
	f := Faults{ThrottleRate: 0.1, OversizeBytes: 17 << 20, NestingDepth: 100_000, BodyFaultPath: "/v1.0/groups/delta",
		InvalidUTF8Users: "a", HostileUsers: "b,c", NonGUIDIDs: "d", MembersWithoutID: "e"}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip %s: %+v %v", b, back, err)
	}
	// Without content faults the JSON is what it always was.
	b, _ = json.Marshal(Faults{ThrottleRate: 0.1})
	if want := `{"throttleRate":0.1,"retryAfter":"","serverErrorRate":0,"gatewayTimeoutRate":0,"resetRate":0,"latency":"0s","down":false,"seed":0}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	for _, bad := range []Faults{{OversizeBytes: -1}, {OversizeBytes: 2 << 30}, {NestingDepth: -1}, {BodyFaultPath: "/users/delta"}} {
		if _, err := New(Config{ClientSecret: "s", Faults: bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
