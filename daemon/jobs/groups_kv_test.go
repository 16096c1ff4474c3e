package jobs

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// The dirsync_groups KV value downstream services read gives the group's
// ID in the form GET /v1/groups/{id} takes and recipients' IDs have,
// "<connector>.<objectId>", under the same key, with the object ID
// beside it; and a rebuild from the stream equals it byte for byte.
func TestGroupKVValue(t *testing.T) {
	d := &dir{
		users: manyUsers(2),
		groups: []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Sales"), Mail: proto.String("sales@contoso.com"),
			GroupTypes: []string{"Unified"}, GroupTypesKnown: true}},
		members: map[string][]string{"g1": {"u000", "u001"}},
	}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatalf("sync %s: %s", j.State, j.Reason)
	}
	assertRebuildEqualsLive(t, e)
	kv, err := e.b.JS.KeyValue(context.Background(), projections.BucketGroups)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), "demo.g1")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"demo.g1","connector":"demo","objectId":"g1","displayName":"Sales","mail":"sales@contoso.com","groupTypes":["Unified"],"members":2}`
	if got := string(entry.Value()); got != want {
		t.Errorf("dirsync_groups demo.g1:\n%s\nwant\n%s", got, want)
	}
}
