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
