package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/readmodels"
	"github.com/dirsync/dirsync/projections"
)

// dir is an in-process directory the fake connector serves. The runner
// under test talks to it through the same connector.Connector interface a
// plugin client offers; the end-to-end test covers the real subprocess.
type dir struct {
	mu      sync.Mutex
	users   []*connectorv1.User
	groups  []*connectorv1.Group
	members map[string][]string
	fail    error
	block   chan struct{} // when set, Sync waits on it before sending
	// stubborn, when set, is waited on like block but whatever ctx says:
	// a plugin slow to stop.
	stubborn chan struct{}
	// delta, when set, is what an incremental Sync (a cursor, not full)
	// sends instead of the whole directory; resync marks the answer as a
	// full read with that reason.
	delta  []*connectorv1.SyncBatch
	resync string
	reqs   []*connectorv1.SyncRequest
}

func (d *dir) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	return &connectorv1.DescribeResponse{Name: "fake"}, nil
}
func (d *dir) ValidateConfig(context.Context, *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	return nil, nil
}
func (d *dir) TestConnection(context.Context, *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	return &connectorv1.TestConnectionResponse{Ok: true}, nil
}
func (d *dir) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	if d.delta != nil && req.GetCursor() != "" && !req.GetFull() && d.resync == "" {
		batches := d.delta
		d.mu.Unlock()
		for _, b := range batches {
			if err := send(b); err != nil {
				return err
			}
		}
		return send(&connectorv1.SyncBatch{Done: true, Cursor: "c2"})
	}
	resync := d.resync
	block, fail, stubborn := d.block, d.fail, d.stubborn
	users := slices.Clone(d.users)
	groups := slices.Clone(d.groups)
	members := maps.Clone(d.members)
	d.mu.Unlock()
	if stubborn != nil {
		<-stubborn
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	// One user per batch: the runner must add batches up.
	for _, u := range users {
		if err := send(&connectorv1.SyncBatch{Users: []*connectorv1.User{u}}); err != nil {
			return err
		}
	}
	b := &connectorv1.SyncBatch{Groups: groups}
	for g, ids := range members {
		b.Memberships = append(b.Memberships, &connectorv1.Membership{GroupId: g, AddedUserIds: ids})
	}
	if err := send(b); err != nil {
		return err
	}
	return send(&connectorv1.SyncBatch{Done: true, Complete: true, Cursor: "c1", ResyncReason: resync})
}

func user(id, mail, name, dept string) *connectorv1.User {
	return &connectorv1.User{Id: id, Mail: proto.String(mail), DisplayName: proto.String(name),
		Department: proto.String(dept), AccountEnabled: proto.Bool(true), UserType: proto.String("Member")}
}

type env struct {
	t      *testing.T
	b      *broker.Broker
	st     *store.Store
	proj   *readmodels.Models
	dry    *DryRuns
	runner *Runner
}

func startEnv(t *testing.T, d *dir) *env {
	t.Helper()
	return startEnvWith(t, d, nil)
}

// startEnvWith is startEnv with before called on the runner before it
// starts (UseLeases).
func startEnvWith(t *testing.T, d connector.Connector, before func(*Runner)) *env {
	t.Helper()
	log := zaptest.NewLogger(t)
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the runner stops before the read models.
	dry, err := OpenDryRuns(ctx, b.JS, 1, DryRunMaxBytes, b.Storage())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, b: b, st: st, proj: readmodels.Start(t, b.JS, st), dry: dry}
	launch := func(context.Context, string, ...zap.Field) (connector.Connector, func(), error) {
		return d, func() {}, nil
	}
	e.runner = New(st, e.proj.Projector, launch, []Spec{{Name: "demo", Config: &connectorv1.Config{}, Policy: policy.Default()}}, log)
	e.runner.KeepDryRunsIn(dry)
	if before != nil {
		before(e.runner)
	}
	if err := e.runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.runner.Stop)
	return e
}

func (e *env) waitFinal(id string) *projections.Job {
	e.t.Helper()
	var j *projections.Job
	testenv.Eventually(e.t, 30*time.Second, func() error {
		e.proj.View(func(s *projections.State) {
			if x, ok := s.Jobs[id]; ok && events.Final(x.State) {
				cp := *x
				j = &cp
			}
		})
		if j == nil {
			return fmt.Errorf("job %s did not finish", id)
		}
		return nil
	})
	return j
}

func (e *env) sync() *projections.Job {
	e.t.Helper()
	id, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.waitFinal(id)
}

func (e *env) recipients() map[string]events.Recipient {
	out := map[string]events.Recipient{}
	e.proj.View(func(s *projections.State) { maps.Copy(out, s.Recipients["demo"]) })
	return out
}

func historyStates(j *projections.Job) []string {
	var s []string
	for _, h := range j.History {
		s = append(s, h.State)
	}
	return s
}

func TestSyncLifecycleAndChanges(t *testing.T) {
	d := &dir{
		users: []*connectorv1.User{
			user("u1", "Ann@contoso.com", "Ann", "Sales"),
			user("u2", "bob@contoso.com", "Bob", "IT"),
			{Id: "u3", DisplayName: proto.String("No Mail")},
			{Id: "bad.id", Mail: proto.String("x@contoso.com")},
		},
		groups:  []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Sales Team"), GroupTypes: []string{"Unified"}, GroupTypesKnown: true}},
		members: map[string][]string{"g1": {"u1", "u3"}},
	}
	e := startEnv(t, d)

	j := e.sync()
	want := []string{events.StatePending, events.StateStarted, events.StateRetrieving, events.StateProcessing, events.StateSaving, events.StateCompleted}
	if got := historyStates(j); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v (reason %q)", got, want, j.Reason)
	}
	rs := e.recipients()
	if len(rs) != 2 || rs["u1"].Email != "Ann@contoso.com" || rs["u2"].Email != "bob@contoso.com" {
		t.Fatalf("recipients = %+v, want Ann and bob only", rs)
	}
	if !slices.Equal(rs["u1"].Groups, []string{"Sales Team"}) || len(rs["u2"].Groups) != 0 {
		t.Errorf("groups: u1 %v, u2 %v", rs["u1"].Groups, rs["u2"].Groups)
	}
	if j.Summary.RecipientsCreated != 2 || j.Summary.RejectedObjects != 1 || j.Summary.UsersRetrieved != 3 {
		t.Errorf("summary = %+v", j.Summary)
	}

	// Nothing changed in the directory: nothing is written but the states.
	before, _ := e.st.LastSeq(context.Background())
	j2 := e.sync()
	after, _ := e.st.LastSeq(context.Background())
	if j2.State != events.StateCompleted || after-before != 6 {
		t.Errorf("unchanged directory wrote %d events (want 6 state changes), state %s", after-before, j2.State)
	}

	// Bob leaves, Ann moves department, u3 gets a mail address and joins nothing.
	d.mu.Lock()
	d.users = []*connectorv1.User{user("u1", "Ann@contoso.com", "Ann", "Marketing"), user("u3", "u3@contoso.com", "Three", "")}
	d.members = map[string][]string{"g1": {"u3"}}
	d.mu.Unlock()
	j3 := e.sync()
	if j3.State != events.StateCompleted {
		t.Fatalf("third sync %s: %s", j3.State, j3.Reason)
	}
	rs = e.recipients()
	if rs["u2"].Status != events.RecipientArchived {
		t.Errorf("bob after leaving: %+v, want archived (the default on_removed)", rs["u2"])
	}
	if rs["u1"].Department != "Marketing" || len(rs["u1"].Groups) != 0 || !slices.Equal(rs["u3"].Groups, []string{"Sales Team"}) {
		t.Errorf("recipients after changes = %+v", rs)
	}
	if s := j3.Summary; s.RecipientsCreated != 1 || s.RecipientsUpdated != 1 || s.RecipientsArchived != 1 {
		t.Errorf("summary = %+v, want 1 created, 1 updated, 1 archived", s)
	}
	assertRebuildEqualsLive(t, e)

	// The comparison itself must see a difference.
	kv, err := e.b.JS.KeyValue(context.Background(), projections.BucketRecipients)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "demo.u1", []byte(`{"email":"stranger@evil.example"}`)); err != nil {
		t.Fatal(err)
	}
	fresh, err := projections.Rebuild(context.Background(), e.st)
	if err != nil {
		t.Fatal(err)
	}
	if diffs, err := projections.Diff(context.Background(), e.b.JS, fresh); err != nil || len(diffs) != 1 {
		t.Errorf("a tampered KV entry gave diffs %v, %v; want exactly one", diffs, err)
	}
}

func TestFailedSyncChangesNothing(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	d.mu.Lock()
	d.users = nil
	d.fail = fmt.Errorf("graph said no")
	d.mu.Unlock()
	j := e.sync()
	if j.State != events.StateFailed || j.Reason == "" {
		t.Fatalf("state %s reason %q, want FAILED with a reason", j.State, j.Reason)
	}
	if rs := e.recipients(); len(rs) != 1 || rs["u1"].Status != events.RecipientActive {
		t.Errorf("a failed sync changed recipients: %v", rs)
	}
}

func TestNewRequestCancelsRunningJob(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}, block: make(chan struct{})}
	e := startEnv(t, d)
	first, err := e.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the first job is blocked in the connector: RETRIEVING
	// is recorded before Sync is called, so the state alone does not say
	// that Sync took the block (it could still see it gone below).
	e.waitState(first, events.StateRetrieving)
	testenv.Eventually(t, 30*time.Second, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.reqs) == 0 {
			return errors.New("the connector has not been asked to sync yet")
		}
		return nil
	})
	d.mu.Lock()
	d.block = nil
	d.mu.Unlock()
	second, err := e.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	j1, j2 := e.waitFinal(first), e.waitFinal(second)
	if j1.State != events.StateCanceled || j2.State != events.StateCompleted {
		t.Fatalf("first %s (%s), second %s (%s); want CANCELED then COMPLETED", j1.State, j1.Reason, j2.State, j2.Reason)
	}
}

func TestUnknownConnector(t *testing.T) {
	e := startEnv(t, &dir{})
	if _, err := e.runner.Request(context.Background(), "nope", Request{}); err == nil {
		t.Fatal("request for an unknown connector succeeded")
	}
}

// assertRebuildEqualsLive folds the whole stream into a fresh state and
// compares every read model's JSON with the live KV entries.
func assertRebuildEqualsLive(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	last, err := e.st.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proj.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
	fresh, err := projections.Rebuild(ctx, e.st)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(fresh.Keys()); n < 5 || fresh.Malformed != 0 {
		t.Fatalf("rebuilt state has %d read model entries, %d malformed events", n, fresh.Malformed)
	}
	diffs, err := projections.Diff(ctx, e.b.JS, fresh)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error(d)
	}
}

func (e *env) syncWith(o *events.JobOptions) *projections.Job {
	e.t.Helper()
	id, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test", Options: o})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.waitFinal(id)
}

func (e *env) setPolicy(p policy.Policy, limit RemovalLimit) {
	e.runner.mu.Lock()
	s := e.runner.specs["demo"]
	s.Policy, s.MaxRemovals = p, limit
	e.runner.specs["demo"] = s
	e.runner.mu.Unlock()
}

func (e *env) changes(jobID string) []projections.Change {
	e.t.Helper()
	out, err := e.proj.JobChanges(context.Background(), jobID)
	if err != nil {
		e.t.Fatalf("reading the changes of %s: %v", jobID, err)
	}
	return out
}

type countLimit int

func (c countLimit) Exceeded(removals, _ int) bool { return removals > int(c) }
func (c countLimit) String() string                { return fmt.Sprint(int(c)) }

func manyUsers(n int) []*connectorv1.User {
	var us []*connectorv1.User
	for i := range n {
		us = append(us, user(fmt.Sprintf("u%03d", i), fmt.Sprintf("user%03d@contoso.com", i), fmt.Sprint("User ", i), "Sales"))
	}
	return us
}

// Scopes with on_removed: a user who leaves the included group is removed
// as on_removed says, and restored with the same ID when back.
func TestOnRemovedWithScopes(t *testing.T) {
	for _, mode := range []string{policy.OnRemovedArchive, policy.OnRemovedDelete, policy.OnRemovedKeep} {
		t.Run(mode, func(t *testing.T) {
			d := &dir{
				users:   []*connectorv1.User{user("u1", "a@contoso.com", "A", ""), user("u2", "b@contoso.com", "B", "")},
				groups:  []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Pilot"), GroupTypes: []string{"Unified"}, GroupTypesKnown: true}},
				members: map[string][]string{"g1": {"u1", "u2"}},
			}
			e := startEnv(t, d)
			p := policy.Default()
			p.IncludeGroups, p.OnRemoved = []string{"Pilot"}, mode
			e.setPolicy(p, nil)
			if j := e.sync(); j.State != events.StateCompleted || len(e.recipients()) != 2 {
				t.Fatalf("first sync: %s %s, %d recipients", j.State, j.Reason, len(e.recipients()))
			}
			d.mu.Lock()
			d.members = map[string][]string{"g1": {"u1"}}
			d.mu.Unlock()
			j := e.sync()
			r, ok := e.recipients()["u2"]
			switch mode {
			case policy.OnRemovedArchive:
				if !ok || r.Status != events.RecipientArchived || j.Summary.RecipientsArchived != 1 {
					t.Fatalf("archive: %+v %v, summary %+v", r, ok, j.Summary)
				}
			case policy.OnRemovedDelete:
				if ok || j.Summary.RecipientsRemoved != 1 {
					t.Fatalf("delete: %+v %v, summary %+v", r, ok, j.Summary)
				}
			case policy.OnRemovedKeep:
				if !ok || r.Status != events.RecipientActive || j.Summary.RecipientsKept != 1 {
					t.Fatalf("keep: %+v %v, summary %+v", r, ok, j.Summary)
				}
			}
			d.mu.Lock()
			d.members = map[string][]string{"g1": {"u1", "u2"}}
			d.mu.Unlock()
			j = e.sync()
			r = e.recipients()["u2"]
			if r.Status != events.RecipientActive || r.ID != "demo.u2" {
				t.Fatalf("after return: %+v", r)
			}
			if mode == policy.OnRemovedArchive && j.Summary.RecipientsRestored != 1 {
				t.Errorf("restore not counted: %+v", j.Summary)
			}
		})
	}
}

func TestRemovalGuard(t *testing.T) {
	d := &dir{users: manyUsers(10)}
	e := startEnv(t, d)
	e.setPolicy(policy.Default(), countLimit(3))
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	before, _ := e.st.LastSeq(context.Background())
	d.mu.Lock()
	d.users = d.users[:6] // 4 leave: more than 3
	d.mu.Unlock()
	j := e.sync()
	if j.State != events.StateFailed || !strings.Contains(j.Reason, "remove 4 of 10") || !strings.Contains(j.Reason, "--allow-mass-removal") {
		t.Fatalf("guard: %s %q", j.State, j.Reason)
	}
	if got := historyStates(j); slices.Contains(got, events.StateSaving) {
		t.Errorf("guarded job reached SAVING: %v", got)
	}
	after, _ := e.st.LastSeq(context.Background())
	if after-before != 5 { // PENDING STARTED RETRIEVING PROCESSING FAILED
		t.Errorf("a guarded job wrote %d events, want only its 5 state changes", after-before)
	}
	active := 0
	for _, r := range e.recipients() {
		if r.Status == events.RecipientActive {
			active++
		}
	}
	if active != 10 {
		t.Errorf("%d active recipients after a guarded job, want 10", active)
	}
	j = e.syncWith(&events.JobOptions{AllowMassRemoval: true})
	if j.State != events.StateCompleted || j.Summary.RecipientsArchived != 4 {
		t.Fatalf("with --allow-mass-removal: %s %q %+v", j.State, j.Reason, j.Summary)
	}
}

// A dry run applies nothing and lists exactly the changes the same job
// then makes.
func TestDryRunMatchesRealRun(t *testing.T) {
	d := &dir{users: manyUsers(5)}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	d.mu.Lock()
	d.users = append(d.users[1:], user("new", "new@contoso.com", "New", "IT"))
	d.users[0].Department = proto.String("Legal")
	d.mu.Unlock()
	p := policy.Default()
	p.Tags = []string{"q4"}
	e.setPolicy(p, nil)
	before := e.recipients()
	dry := e.syncWith(&events.JobOptions{DryRun: true})
	if dry.State != events.StateCompleted || !dry.Summary.DryRun {
		t.Fatalf("dry run: %s %q", dry.State, dry.Reason)
	}
	if got := historyStates(dry); slices.Contains(got, events.StateSaving) {
		t.Errorf("dry run reached SAVING: %v", got)
	}
	if after := e.recipients(); !maps.EqualFunc(before, after, func(a, b events.Recipient) bool { return a.UpdatedAt.Equal(b.UpdatedAt) }) {
		t.Error("dry run changed recipients")
	}
	var lastSync *time.Time
	e.proj.View(func(s *projections.State) { lastSync = s.SyncStatus("demo").LastSyncAt })
	planned, ok, err := e.runner.DryRunChanges(context.Background(), dry.ID)
	if err != nil || !ok || len(planned) != 6 { // 1 archived, 1 created, 4 updated (tags; one also department)
		t.Fatalf("dry run changes: %v %v %+v", err, ok, planned)
	}
	real := e.sync()
	done := e.changes(real.ID)
	key := func(c projections.Change) string {
		return c.Kind + " " + c.RecipientID + " " + strings.Join(c.Changed, ",") + " " + c.Reason
	}
	var a, b []string
	for _, c := range planned {
		a = append(a, key(c))
	}
	for _, c := range done {
		b = append(b, key(c))
	}
	if !slices.Equal(a, b) {
		t.Errorf("dry run said:\n%s\nthe real run did:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	var lastSync2 *time.Time
	e.proj.View(func(s *projections.State) { lastSync2 = s.SyncStatus("demo").LastSyncAt })
	if lastSync2 == nil || (lastSync != nil && !lastSync2.After(*lastSync)) {
		t.Error("last sync date did not move with the real run")
	}
}

// Changing the policy applies at the next sync though the directory did
// not change.
func TestPolicyChangeWithoutDirectoryChange(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", ""),
		{Id: "u2", Mail: proto.String("b@contoso.com"), AccountEnabled: proto.Bool(false)}}}
	e := startEnv(t, d)
	if e.sync(); len(e.recipients()) != 1 {
		t.Fatalf("default policy: %v", e.recipients())
	}
	p := policy.Default()
	p.IncludeDisabled, p.Tags = true, []string{"all-hands"}
	e.setPolicy(p, nil)
	j := e.sync()
	rs := e.recipients()
	if len(rs) != 2 || !slices.Equal(rs["u1"].Tags, []string{"all-hands"}) || j.Summary.RecipientsCreated != 1 || j.Summary.RecipientsUpdated != 1 {
		t.Errorf("after policy change: %+v, summary %+v", rs, j.Summary)
	}
	if j.Summary.DirectoryEvents != 0 {
		t.Errorf("%d directory events though the directory did not change", j.Summary.DirectoryEvents)
	}
}

func TestOperatorCancel(t *testing.T) {
	d := &dir{users: manyUsers(1), block: make(chan struct{})}
	e := startEnv(t, d)
	id, err := e.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(id, events.StateRetrieving)
	if err := e.runner.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if j := e.waitFinal(id); j.State != events.StateCanceled || !strings.Contains(j.Reason, "operator") {
		t.Fatalf("%s %q", j.State, j.Reason)
	}
	if err := e.runner.Cancel(context.Background(), id); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("canceling a finished job: %v", err)
	}
}

// A schedule tick (IfIdle) never replaces a job that is still running.
func TestIfIdleDoesNotReplaceRunningJob(t *testing.T) {
	d := &dir{users: manyUsers(1), block: make(chan struct{})}
	e := startEnv(t, d)
	first, err := e.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.runner.Request(context.Background(), "demo", Request{IfIdle: true, RequestedBy: "schedule"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("tick while busy: %v, want ErrBusy", err)
	}
	close(d.block)
	if j := e.waitFinal(first); j.State != events.StateCompleted {
		t.Fatalf("running job: %s %q", j.State, j.Reason)
	}
	if _, err := e.runner.Request(context.Background(), "demo", Request{IfIdle: true}); err != nil {
		t.Errorf("tick while idle: %v", err)
	}
}

// An incremental sync merges partial updates, removals and membership
// changes into the stored directory; full_sync_interval and a resync turn
// it into a full read that the summary reports.
func TestIncrementalSync(t *testing.T) {
	d := &dir{
		users:   []*connectorv1.User{user("u1", "a@contoso.com", "Ann", "Sales"), user("u2", "b@contoso.com", "Bob", "IT")},
		groups:  []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Team"), GroupTypes: []string{"Unified"}, GroupTypesKnown: true}},
		members: map[string][]string{"g1": {"u1", "u2"}},
	}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted || !j.Summary.FullRead {
		t.Fatalf("first sync: %s %q %+v", j.State, j.Reason, j.Summary)
	}
	d.mu.Lock()
	d.delta = []*connectorv1.SyncBatch{
		// Ann changed department only: every other field stays.
		{Users: []*connectorv1.User{{Id: "u1", Department: proto.String("Marketing")}}},
		// Bob was soft-deleted; Cy joined, and the group changed; the
		// same group appears twice (a large group split across pages).
		{Users: []*connectorv1.User{{Id: "u2", Removed: &connectorv1.Removal{Reason: "changed"}}, user("u3", "c@contoso.com", "Cy", "IT")},
			Groups:      []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Team Blue")}},
			Memberships: []*connectorv1.Membership{{GroupId: "g1", RemovedUserIds: []string{"u2"}}}},
		{Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u3"}}}},
		// A replayed entry changes nothing.
		{Users: []*connectorv1.User{{Id: "u1", Department: proto.String("Marketing")}}},
	}
	d.mu.Unlock()
	j := e.sync()
	if j.State != events.StateCompleted || j.Summary.FullRead {
		t.Fatalf("incremental sync: %s %q %+v", j.State, j.Reason, j.Summary)
	}
	rs := e.recipients()
	if r := rs["u1"]; r.Department != "Marketing" || r.DisplayName != "Ann" || r.Email != "a@contoso.com" || !slices.Equal(r.Groups, []string{"Team Blue"}) {
		t.Errorf("u1 after a partial update: %+v", r)
	}
	if rs["u2"].Status != events.RecipientArchived {
		t.Errorf("u2 after @removed: %+v", rs["u2"])
	}
	if r := rs["u3"]; r.Status != events.RecipientActive || !slices.Equal(r.Groups, []string{"Team Blue"}) {
		t.Errorf("u3: %+v", r)
	}
	if s := j.Summary; s.RecipientsCreated != 1 || s.RecipientsUpdated != 1 || s.RecipientsArchived != 1 {
		t.Errorf("summary %+v", s)
	}
	var cursor string
	e.proj.View(func(s *projections.State) { cursor = s.Cursors["demo"] })
	if cursor != "c2" {
		t.Errorf("cursor after the incremental sync = %q, want c2", cursor)
	}

	// The connector found the cursor expired and read everything.
	d.mu.Lock()
	d.resync = "the delta token expired"
	d.users = []*connectorv1.User{user("u1", "a@contoso.com", "Ann", "Marketing")} // u3 vanished without a delta entry
	d.members = map[string][]string{"g1": {"u1"}}
	d.groups[0].DisplayName = proto.String("Team Blue")
	d.mu.Unlock()
	j = e.sync()
	if !j.Summary.FullRead || j.Summary.ResyncReason != "the delta token expired" || e.recipients()["u3"].Status != events.RecipientArchived {
		t.Errorf("resync: %+v, u3 %+v", j.Summary, e.recipients()["u3"])
	}

	// full_sync_interval: a full read is due again.
	d.mu.Lock()
	d.resync = ""
	d.mu.Unlock()
	spec := e.runner.specs["demo"]
	spec.FullSyncInterval = time.Nanosecond
	e.runner.mu.Lock()
	e.runner.specs["demo"] = spec
	e.runner.mu.Unlock()
	e.sync()
	d.mu.Lock()
	last := d.reqs[len(d.reqs)-1]
	d.mu.Unlock()
	if !last.GetFull() {
		t.Error("full_sync_interval passed but the sync was not full")
	}
	assertRebuildEqualsLive(t, e)
}

// scripted sends fixed batches, whatever the request.
type scripted struct {
	dir
	batches []*connectorv1.SyncBatch
}

func (s *scripted) Sync(_ context.Context, _ *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	for _, b := range s.batches {
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}

// A restart batch makes the runner forget what the sync sent before it:
// a removal seen before Graph refused the delta token must not survive the
// full read that follows.
func TestRestartForgetsEarlierBatches(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", ""), user("u2", "b@contoso.com", "B", "")}}
	e := startEnv(t, d)
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	s := &scripted{batches: []*connectorv1.SyncBatch{
		{Users: []*connectorv1.User{{Id: "u1", Removed: &connectorv1.Removal{Reason: "deleted"}}}},
		{Restart: true},
		{Users: []*connectorv1.User{user("u1", "a@contoso.com", "A", ""), user("u2", "b@contoso.com", "B", "")}},
		{Done: true, Complete: true, Cursor: "c9", ResyncReason: "expired"},
	}}
	e.runner.launch = func(context.Context, string, ...zap.Field) (connector.Connector, func(), error) {
		return s, func() {}, nil
	}
	j := e.sync()
	if j.State != events.StateCompleted || j.Summary.UsersRetrieved != 2 {
		t.Fatalf("%s %q %+v", j.State, j.Reason, j.Summary)
	}
	if r := e.recipients()["u1"]; r.Status != events.RecipientActive {
		t.Errorf("u1 after a restarted read: %+v", r)
	}
}

// waitState waits until job id reaches state.
func (e *env) waitState(id, state string) {
	e.t.Helper()
	testenv.Eventually(e.t, 30*time.Second, func() error {
		var st string
		e.proj.View(func(s *projections.State) { st = s.Jobs[id].State })
		if st != state {
			return fmt.Errorf("job %s in %s, want %s", id, st, state)
		}
		return nil
	})
}

type finished struct {
	mu   sync.Mutex
	jobs []string
}

func (f *finished) JobFinished(connector, state string, sum *events.Summary, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, fmt.Sprintf("%s %s summary=%v", connector, state, sum != nil))
}

// SIGTERM's drain lets a running job finish, refuses new requests and
// cancels what was queued; the observer hears of each final state once.
func TestDrainLetsRunningJobFinish(t *testing.T) {
	d := &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}, block: make(chan struct{})}
	e := startEnv(t, d)
	obs := &finished{}
	e.runner.Observe(obs)
	running, err := e.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	e.waitState(running, events.StateRetrieving)

	idle, busy := e.runner.Drain(context.Background())
	if idle || len(busy) != 1 || !strings.Contains(busy[0], running) {
		t.Fatalf("Drain = %v, %q; want busy with %s", idle, busy, running)
	}
	if _, err := e.runner.Request(context.Background(), "demo", Request{}); !errors.Is(err, ErrStopping) {
		t.Fatalf("request while draining: err = %v; want ErrStopping", err)
	}
	close(d.block)
	if j := e.waitFinal(running); j.State != events.StateCompleted {
		t.Fatalf("running job ended %s (%s); want COMPLETED: the drain must let it finish", j.State, j.Reason)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if idle, _ := e.runner.Drain(context.Background()); !idle {
			return errors.New("runner not idle after its job completed")
		}
		return nil
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if want := []string{"demo COMPLETED summary=true"}; !slices.Equal(obs.jobs, want) {
		t.Errorf("observer heard %q; want %q", obs.jobs, want)
	}
}
