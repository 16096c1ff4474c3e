package e2e

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// assertEventsMatchSchemas reads every event of the DIRSYNC stream and
// checks it against the JSON Schema of its type (events/schemas). It
// returns how many events of each type it read.
func assertEventsMatchSchemas(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	schemas, err := events.LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]int{}
	n, bad := 0, 0
	forEachStored(t, js, func(subject string, data []byte) {
		n++
		if err := schemas.Validate(data); err != nil {
			// Report the first few in full; count the rest.
			if bad++; bad <= 20 {
				t.Errorf("event on %s: %v\n%s", subject, err, data)
			}
			return
		}
		e, err := events.Decode(data)
		if err != nil {
			t.Errorf("event on %s: %v", subject, err)
			return
		}
		byType[e.Type]++
	})
	if bad > 0 {
		t.Errorf("%d of %d stored events do not match their schemas", bad, n)
	}
	return byType
}

// Every event a daemon stores, over a first sync, a dry run, directory
// churn and syncs with one-time options, matches its type's JSON Schema.
func TestStoredEventsMatchSchemas(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	var j jobJSON
	f.cliJSON(&j, "sync", "demo", "--wait")
	if j.State != events.StateCompleted {
		t.Fatalf("first sync: %s %s", j.State, j.Reason)
	}
	var dry api.Changes
	f.cliJSON(&dry, "sync", "demo", "--dry-run")
	if !dry.Job.DryRun() || dry.Job.State != events.StateCompleted {
		t.Fatalf("dry run: %+v", dry.Job)
	}
	if _, err := f.sim.Churn(20, 11); err != nil {
		t.Fatal(err)
	}
	f.cliJSON(&j, "sync", "demo", "--wait")
	if j.State != events.StateCompleted {
		t.Fatalf("sync after churn: %s %s", j.State, j.Reason)
	}
	f.cliJSON(&j, "sync", "demo", "--wait", "--tag", "x", "--tag-mode", "replace")
	if j.State != events.StateCompleted {
		t.Fatalf("sync with tags: %s %s", j.State, j.Reason)
	}
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	b := testenv.JetStream(t, filepath.Join(f.dir, "data"))
	byType := assertEventsMatchSchemas(t, b.JS)
	t.Logf("events by type: %v", byType)
	// The scenario must have exercised the common types, or the check
	// above proves little.
	for _, typ := range []string{events.TypeSyncState, events.TypeUserChanged, events.TypeGroupChanged,
		events.TypeGroupMembersChanged, events.TypeRecipientCreated, events.TypeRecipientUpdated} {
		if byType[typ] == 0 {
			t.Errorf("no %s event stored", typ)
		}
	}
}
