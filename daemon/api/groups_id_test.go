package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dirsync/dirsync/events"
)

// A group's ID has one form everywhere, the recipients' one: the list
// gives "<connector>.<objectId>", and GET /v1/groups/{id} takes exactly
// that. The bodies are what a client reads, byte for byte.
func TestGroupIDRoundTrip(t *testing.T) {
	s, m := newTestServer(t)
	m.putUser("demo", events.User{ID: "u1", Mail: "ann@x.com", DisplayName: "Ann"})
	m.putGroup("demo", events.Group{ID: "g1", DisplayName: "Sales", GroupTypes: []string{"Unified"}}, "u1")

	list := get(t, s, "/v1/groups")
	want := `[{"id":"demo.g1","connector":"demo","objectId":"g1","displayName":"Sales","groupTypes":["Unified"],"members":1}]`
	if got := compact(t, list.Body.Bytes()); got != want {
		t.Fatalf("GET /v1/groups:\n%s\nwant\n%s", got, want)
	}
	id := decode[[]Group](t, get(t, s, "/v1/groups"))[0].ID
	one := get(t, s, "/v1/groups/"+id)
	if one.Code != http.StatusOK {
		t.Fatalf("GET /v1/groups/%s (the ID the list gave): %d %s", id, one.Code, one.Body)
	}
	want = `{"id":"demo.g1","connector":"demo","objectId":"g1","displayName":"Sales","groupTypes":["Unified"],"members":1,"memberList":[{"objectId":"u1","email":"ann@x.com","displayName":"Ann"}]}`
	if got := compact(t, one.Body.Bytes()); got != want {
		t.Errorf("GET /v1/groups/%s:\n%s\nwant\n%s", id, got, want)
	}
}

// compact is a JSON body without its indentation.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return out.String()
}

// A group ID in another form is refused with the form it must have, and
// an ID of the right form that names no group is a 404.
func TestGroupIDErrors(t *testing.T) {
	s, m := newTestServer(t)
	m.putGroup("demo", events.Group{ID: "g1", DisplayName: "Sales", GroupTypes: []string{"Unified"}})
	tests := []struct {
		id   string
		code int
		body string
	}{
		{"g1", http.StatusBadRequest, `{"error":"group ID \"g1\": want <connector>.<groupId>, e.g. demo.7d1e…"}`},
		{"demo.g2", http.StatusNotFound, `{"error":"no group with ID \"demo.g2\""}`},
		{"other.g1", http.StatusNotFound, `{"error":"no group with ID \"other.g1\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rec := get(t, s, "/v1/groups/"+tt.id)
			if rec.Code != tt.code || compact(t, rec.Body.Bytes()) != tt.body {
				t.Errorf("GET /v1/groups/%s: %d %s\nwant %d %s", tt.id, rec.Code, rec.Body, tt.code, tt.body)
			}
		})
	}
}
