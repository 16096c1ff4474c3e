package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// A dry run's change list is the same after the runner that made it
// stops and a new one starts on the same JetStream (as after a restart
// of dirsyncd), and still the same once the server itself restarts on
// its data directory.
func TestDryRunChangesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	d := &dir{users: manyUsers(5)}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	d.mu.Lock()
	d.users = append(d.users[1:], user("new", "new@contoso.com", "New", "IT"))
	d.users[0].Department = proto.String("Legal")
	d.mu.Unlock()
	dry := e.syncWith(&events.JobOptions{DryRun: true})
	if dry.State != events.StateCompleted {
		t.Fatalf("dry run: %s %q", dry.State, dry.Reason)
	}
	read := func(r *Runner) string {
		t.Helper()
		c, ok, err := r.DryRunChanges(ctx, dry.ID)
		if err != nil || !ok {
			t.Fatalf("dry run %s: kept %v, %v", dry.ID, ok, err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := read(e.runner)
	if n := strings.Count(before, `"kind"`); n != 3 { // 1 archived, 1 created, 1 updated
		t.Fatalf("dry run planned %d changes, want 3: %s", n, before)
	}

	e.runner.Stop()
	dr, err := OpenDryRuns(ctx, e.b.JS, 1, DryRunMaxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := New(e.st, e.proj.Projector, nil, []Spec{{Name: "demo", Config: &connectorv1.Config{}, Policy: policy.Default()}}, zaptest.NewLogger(t))
	next.KeepDryRunsIn(dr)
	if err := next.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(next.Stop)
	if after := read(next); after != before {
		t.Errorf("after a restart of the runner the dry run lists\n%s\nbefore it listed\n%s", after, before)
	}
}

// Through the runner: the 101st dry run evicts the first, and the
// second is still kept.
func TestRunnerKeepsTheLastDryRuns(t *testing.T) {
	ctx := context.Background()
	e := startEnv(t, &dir{users: manyUsers(2)})
	var ids []string
	for range KeptDryRuns + 1 {
		j := e.syncWith(&events.JobOptions{DryRun: true})
		if j.State != events.StateCompleted {
			t.Fatalf("dry run %d: %s %q", len(ids), j.State, j.Reason)
		}
		ids = append(ids, j.ID)
	}
	if _, ok, err := e.runner.DryRunChanges(ctx, ids[0]); ok || err != nil {
		t.Errorf("the first dry run after %d more: kept %v, %v; want evicted", KeptDryRuns, ok, err)
	}
	for _, id := range []string{ids[1], ids[KeptDryRuns]} {
		if c, ok, err := e.runner.DryRunChanges(ctx, id); !ok || err != nil || len(c) != 2 {
			t.Errorf("dry run %s: kept %v, %v, %d changes; want its 2", id, ok, err, len(c))
		}
	}
}

// The bucket is on disk: a server restarted on the same data directory
// gives the same lists back.
func TestDryRunsSurviveServerRestart(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	b := testenv.JetStream(t, data)
	dr, err := OpenDryRuns(ctx, b.JS, 1, DryRunMaxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := changesFor("d1", 3)
	if err := dr.Keep(ctx, "d1", want); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = testenv.JetStream(t, data)
	dr, err = OpenDryRuns(ctx, b.JS, 1, DryRunMaxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := dr.Changes(ctx, "d1")
	if err != nil || !ok {
		t.Fatalf("after the server restarted: kept %v, %v", ok, err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("after the server restarted:\n%s\nwant\n%s", g, w)
	}
}

// The 101st list evicts the oldest; the store keeps exactly the newest
// KeptDryRuns, each as stored, and no trace of the evicted one.
func TestDryRunsKeepTheNewest(t *testing.T) {
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	dr, err := OpenDryRuns(ctx, b.JS, 1, DryRunMaxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return fmt.Sprintf("20260304T050607%03d-%08x", i, i) }
	for i := range KeptDryRuns + 1 {
		if err := dr.Keep(ctx, id(i), changesFor(id(i), 1+i%3)); err != nil {
			t.Fatalf("dry run %d: %v", i, err)
		}
	}
	if _, ok, err := dr.Changes(ctx, id(0)); ok || err != nil {
		t.Errorf("the oldest dry run after %d more: kept %v, %v; want evicted", KeptDryRuns, ok, err)
	}
	for _, i := range []int{1, 50, KeptDryRuns} {
		got, ok, err := dr.Changes(ctx, id(i))
		if err != nil || !ok || mustJSON(t, got) != mustJSON(t, changesFor(id(i), 1+i%3)) {
			t.Errorf("dry run %d: kept %v, %v, %+v", i, ok, err, got)
		}
	}
	objs, err := dr.obs.List(ctx, jetstream.ListObjectsShowDeleted())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != KeptDryRuns || slices.ContainsFunc(objs, func(o *jetstream.ObjectInfo) bool { return o.Deleted }) {
		t.Errorf("%d objects (delete markers included), want %d and no marker", len(objs), KeptDryRuns)
	}
}

// Lists that fill max_bytes evict the oldest before the count does; a
// list larger than the whole bucket is refused and evicts nothing.
func TestDryRunsFitMaxBytes(t *testing.T) {
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	const maxBytes = 256 << 10
	dr, err := OpenDryRuns(ctx, b.JS, 1, maxBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := len(mustJSON(t, changesFor("d00", 300)))
	if one < maxBytes/5 || one > maxBytes/3 {
		t.Fatalf("a list of 300 changes takes %d bytes; the test needs a third to a fifth of %d", one, maxBytes)
	}
	var kept []string
	for i := range 8 {
		jobID := fmt.Sprintf("d%02d", i)
		if err := dr.Keep(ctx, jobID, changesFor(jobID, 300)); err != nil {
			t.Fatalf("dry run %d (%d bytes): %v", i, one, err)
		}
		kept = kept[:0]
		for j := range i + 1 {
			if _, ok, err := dr.Changes(ctx, fmt.Sprintf("d%02d", j)); err != nil {
				t.Fatal(err)
			} else if ok {
				kept = append(kept, fmt.Sprintf("d%02d", j))
			}
		}
		if len(kept) == 0 || kept[len(kept)-1] != jobID || len(kept) > maxBytes/one {
			t.Fatalf("after dry run %d the store keeps %v", i, kept)
		}
	}
	if len(kept) < 2 {
		t.Errorf("the store keeps %v; want every list that fits", kept)
	}
	err = dr.Keep(ctx, "huge", changesFor("huge", 2000))
	if !errors.Is(err, ErrDryRunTooLarge) {
		t.Fatalf("a list larger than the bucket: %v, want ErrDryRunTooLarge", err)
	}
	if _, ok, _ := dr.Changes(ctx, kept[len(kept)-1]); !ok {
		t.Error("refusing a list too large evicted the newest one")
	}
}

// fullDisk is storage with free bytes left.
type fullDisk struct{ free int64 }

func (fullDisk) Sync(context.Context, string) error { return nil }
func (d fullDisk) Free(context.Context) (int64, string, error) {
	return d.free, "the free space of the file system under /test", nil
}

// A list that would leave less than store.Headroom is refused before
// anything is written, naming the bound, and the dry run FAILS saying
// nothing was changed.
func TestDryRunOnAFullDisk(t *testing.T) {
	ctx := context.Background()
	e := startEnv(t, &dir{users: manyUsers(2)})
	dr, err := OpenDryRuns(ctx, e.b.JS, 1, DryRunMaxBytes, fullDisk{free: store.Headroom + 100})
	if err != nil {
		t.Fatal(err)
	}
	e.runner.KeepDryRunsIn(dr)
	j := e.syncWith(&events.JobOptions{DryRun: true})
	for _, want := range []string{"nothing was changed", "JetStream storage is full", "/test", "make room", "run the dry run again"} {
		if j.State != events.StateFailed || !strings.Contains(j.Reason, want) {
			t.Errorf("dry run on a full disk: %s %q; want FAILED saying %q", j.State, j.Reason, want)
		}
	}
	if objs, err := dr.obs.List(ctx); !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Errorf("the refused list was stored: %d objects, %v", len(objs), err)
	}
}

// Without a store a dry run fails with a reason and changes nothing.
func TestDryRunWithoutStoreFails(t *testing.T) {
	e := startEnv(t, &dir{users: manyUsers(2)})
	e.runner.KeepDryRunsIn(nil)
	j := e.syncWith(&events.JobOptions{DryRun: true})
	if j.State != events.StateFailed || !strings.Contains(j.Reason, "nothing was changed") {
		t.Fatalf("dry run without a store: %s %q; want FAILED saying nothing was changed", j.State, j.Reason)
	}
	if len(e.recipients()) != 0 {
		t.Error("the failed dry run changed recipients")
	}
}

func TestDryRunBytes(t *testing.T) {
	tests := []struct {
		room, want int64
	}{
		{0, DryRunMaxBytes},
		{16 << 20, 1 << 20},              // the smallest max_store: the floor
		{8 << 20, 1 << 20},               // never below 1 MiB
		{1 << 30, 64 << 20},              // a sixteenth
		{100 << 30, DryRunMaxBytes},      // never above DryRunMaxBytes
		{4 << 30, DryRunMaxBytes},        // where the sixteenth reaches it
		{4<<30 - 16, DryRunMaxBytes - 1}, // just below
	}
	for _, tt := range tests {
		if got := DryRunBytes(tt.room); got != tt.want {
			t.Errorf("DryRunBytes(%d) = %d, want %d", tt.room, got, tt.want)
		}
	}
}

// changesFor is a dry run's list of n changes.
func changesFor(jobID string, n int) []projections.Change {
	out := make([]projections.Change, n)
	for i := range out {
		out[i] = projections.Change{Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), JobID: jobID, Kind: "updated", RecipientID: fmt.Sprintf("demo.u%04d", i),
			ObjectID: fmt.Sprintf("u%04d", i), Email: fmt.Sprintf("user%04d@contoso.com", i), Changed: []string{"department", "tags"},
			Reason: "directory attribute changed"}
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
