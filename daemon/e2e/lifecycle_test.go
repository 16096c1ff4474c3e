package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

func (f *fixture) api() *api.Client {
	return api.NewClient(filepath.Join(f.dir, "data", "dirsyncd.sock"))
}

// waitJob polls a job until cond holds or the deadline passes.
func (f *fixture) waitJob(id string, timeout time.Duration, cond func(api.Job) bool) api.Job {
	f.t.Helper()
	c := f.api()
	var j api.Job
	testenv.Eventually(f.t, timeout, func() error {
		var err error
		j, err = c.Job(context.Background(), id)
		if err != nil || !cond(j) {
			return fmt.Errorf("job %s: condition not met (last: %+v, %v)", id, j, err)
		}
		return nil
	})
	return j
}

func final(j api.Job) bool { return events.Final(j.State) }

// kill sends SIGKILL: no clean shutdown, no final events.
func (f *fixture) kill() {
	f.t.Helper()
	d := f.daemon
	f.daemon = nil
	_ = d.Cmd.Process.Kill()
	<-d.Done()
}

// assertConverged checks, with the daemon stopped, that the stored events
// hold exactly the expected recipients, once each, and that the read
// models in KV equal a rebuild from the stream.
func assertConverged(t *testing.T, f *fixture) {
	t.Helper()
	assertConvergedTo(t, f, expectedRecipients(f.sim))
}

// assertConvergedTo is assertConverged for the recipients a given policy
// makes of the tenant.
func assertConvergedTo(t *testing.T, f *fixture, expected []recipientJSON) {
	t.Helper()
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	b := testenv.JetStream(t, filepath.Join(f.dir, "data"))
	convergedIn(t, b.JS, expected)
}

// convergedIn checks the stream and read models behind js: a rebuild
// equals the read models, and its active recipients of connector demo are
// expected, with no duplicate email.
func convergedIn(t *testing.T, js jetstream.JetStream, expected []recipientJSON) {
	t.Helper()
	convergedInWith(t, js, expected, 1)
}

// convergedInWith is convergedIn on a stream of replicas replicas
// (opening it with another count would change the stream).
func convergedInWith(t *testing.T, js jetstream.JetStream, expected []recipientJSON, replicas int) {
	t.Helper()
	ctx := context.Background()
	// A cluster that just lost or regained a node, or elects a stream's
	// leader, may not answer at once (a direct get answered "no
	// responders"): the reads are tried again, the checks are not.
	var st *store.Store
	var fresh *projections.State
	var diffs []string
	testenv.Eventually(t, 30*time.Second, func() error {
		var err error
		if st, err = store.Open(ctx, js, replicas); err != nil {
			return err
		}
		if fresh, err = projections.Rebuild(ctx, st); err != nil {
			return err
		}
		diffs, err = projections.Diff(ctx, js, fresh)
		return err
	})
	for _, d := range diffs {
		t.Errorf("read model differs from the stream: %s", d)
	}
	// A clean stop leaves a checkpoint of everything folded.
	if cp := checkpointPlusTail(t, js, st, fresh); cp != fresh.LastSeq {
		t.Errorf("the checkpoint left by the stop is at event %d; want %d, the last", cp, fresh.LastSeq)
	}
	var ids, emails []string
	for _, r := range fresh.Recipients["demo"] {
		if r.Status == events.RecipientActive {
			ids = append(ids, r.ObjectID)
			emails = append(emails, strings.ToLower(r.Email))
		}
	}
	sort.Strings(ids)
	var want []string
	for _, r := range expected {
		want = append(want, r.ObjectID)
	}
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Errorf("%d active recipients, want %d (the directory under the policy)", len(ids), len(want))
	}
	sort.Strings(emails)
	if len(slices.Compact(emails)) != len(ids) {
		t.Error("duplicate emails among active recipients")
	}
}

// checkpointPlusTail checks that the read-model checkpoint in js plus the
// events after it fold to rebuilt, byte for byte (as a start would load
// them), and returns the checkpoint's sequence; 0 when there is none.
func checkpointPlusTail(t *testing.T, js jetstream.JetStream, st *store.Store, rebuilt *projections.State) uint64 {
	t.Helper()
	var s *projections.State
	var from uint64
	var err error
	// Read again while a cluster does not answer (see convergedInWith).
	testenv.Eventually(t, 30*time.Second, func() error {
		s, from, err = projections.FromCheckpoint(context.Background(), js, st)
		if errors.Is(err, projections.ErrNoCheckpoint) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Logf("no read-model checkpoint: %v", err)
		return 0
	}
	got, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	want, err := rebuilt.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the checkpoint at event %d plus the %d events after it differ from a rebuild:\ncheckpoint+tail %.300s\nrebuilt         %.300s",
			from, rebuilt.LastSeq-from, got, want)
	}
	return from
}

// A daemon killed with SIGKILL in the middle of a job, then restarted,
// marks that job FAILED as interrupted, and the next sync converges.
func TestKillDuringSync(t *testing.T) {
	for _, state := range []string{events.StateRetrieving, events.StateSaving} {
		t.Run(state, func(t *testing.T) {
			f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{users: 6000, groups: 300})
			f.start()
			j, err := f.api().Sync(context.Background(), "demo", api.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			f.waitJob(j.ID, time.Minute, func(j api.Job) bool {
				if events.Final(j.State) {
					t.Fatalf("job ended (%s) before reaching %s: the tenant is too small to catch it", j.State, state)
				}
				return j.State == state
			})
			f.kill()
			killedCheckpoint(t, f)
			f.start()
			old := f.waitJob(j.ID, 30*time.Second, final)
			if old.State != events.StateFailed || !strings.Contains(old.Reason, "interrupted") {
				t.Fatalf("killed job after restart: %s %q, want FAILED interrupted", old.State, old.Reason)
			}
			var next jobJSON
			f.cliJSON(&next, "sync", "demo", "--wait")
			if next.State != events.StateCompleted {
				t.Fatalf("sync after restart: %s %s", next.State, next.Reason)
			}
			assertConverged(t, f)
		})
	}
}

// A new request cancels the queued one before it, naming itself.
func TestNewerJobCancelsQueued(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{users: 3000, groups: 100})
	f.start()
	c := f.api()
	var ids []string
	for range 3 {
		j, err := c.Sync(context.Background(), "demo", api.SyncRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	a, b, last := f.waitJob(ids[0], time.Minute, final), f.waitJob(ids[1], time.Minute, final), f.waitJob(ids[2], 2*time.Minute, final)
	if last.State != events.StateCompleted {
		t.Fatalf("newest job: %s %s", last.State, last.Reason)
	}
	if b.State != events.StateCanceled || !strings.Contains(b.Reason, last.ID) {
		t.Errorf("middle job: %s %q; want CANCELED naming %s", b.State, b.Reason, last.ID)
	}
	if a.State != events.StateCanceled || !strings.Contains(a.Reason, b.ID) {
		t.Errorf("first job: %s %q; want CANCELED naming %s", a.State, a.Reason, b.ID)
	}
	assertConverged(t, f)
}

// --dry-run lists exactly the changes the same job then makes.
func TestDryRunMatchesSync(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	var first jobJSON
	f.cliJSON(&first, "sync", "demo", "--wait")
	if first.State != events.StateCompleted {
		t.Fatal(first.Reason)
	}
	// The directory changes: one user moves department, one is disabled.
	var moved, disabled string
	err := f.sim.Mutate(func(tn *graphsim.Tenant) {
		for i := range tn.Users {
			u := &tn.Users[i]
			if u.Mail == "" || !u.AccountEnabled || u.UserType == "Guest" {
				continue
			}
			switch {
			case moved == "":
				u.Department, moved = "Red Team", u.ID
			case disabled == "":
				u.AccountEnabled, disabled = false, u.ID
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var dry api.Changes
	f.cliJSON(&dry, "sync", "demo", "--dry-run", "--tag", "q4-campaign")
	if !dry.Job.DryRun() || dry.Job.State != events.StateCompleted {
		t.Fatalf("dry run: %+v", dry.Job)
	}
	// A dry run's list outlives the daemon (it is in the dirsync_dryruns
	// object store, not in memory): the same after a restart.
	if err := f.stop(); err != nil {
		t.Fatalf("dirsyncd did not exit cleanly on SIGTERM: %v", err)
	}
	f.start()
	var shown api.Changes
	f.cliJSON(&shown, "jobs", "show", dry.Job.ID)
	after, _ := json.Marshal(shown.Changes)
	planned, _ := json.Marshal(dry.Changes)
	if len(dry.Changes) == 0 || string(after) != string(planned) {
		t.Fatalf("after a restart jobs show %s lists\n%s\nthe dry run listed\n%s", dry.Job.ID, after, planned)
	}
	var real jobJSON
	f.cliJSON(&real, "sync", "demo", "--wait", "--tag", "q4-campaign")
	var done api.Changes
	f.cliJSON(&done, "jobs", "show", real.ID)
	key := func(c projections.Change) string {
		return c.Kind + " " + c.RecipientID + " " + strings.Join(c.Changed, ",") + " " + c.Reason
	}
	var a, b []string
	for _, c := range dry.Changes {
		a = append(a, key(c))
	}
	for _, c := range done.Changes {
		b = append(b, key(c))
	}
	if len(a) == 0 || !slices.Equal(a, b) {
		t.Fatalf("dry run said (%d):\n%s\nthe sync did (%d):\n%s", len(a), strings.Join(a, "\n"), len(b), strings.Join(b, "\n"))
	}
	var sawMove, sawArchive bool
	for _, c := range done.Changes {
		sawMove = sawMove || (c.ObjectID == moved && slices.Contains(c.Changed, "department"))
		sawArchive = sawArchive || (c.ObjectID == disabled && c.Kind == "archived")
	}
	if !sawMove || !sawArchive {
		t.Errorf("changes lack the moved (%v) or archived (%v) user", sawMove, sawArchive)
	}
	// The history of the moved user tells the whole story.
	var h api.History
	var email string
	for _, u := range f.sim.Tenant().Users {
		if u.ID == moved {
			email = u.Mail
		}
	}
	f.cliJSON(&h, "recipients", "history", strings.ToUpper(email))
	if hist := h.Changes["demo."+moved]; len(hist) != 2 || hist[0].Kind != "created" || hist[1].JobID != real.ID {
		t.Errorf("history of %s: %+v", email, hist)
	}
}

// A connector with a schedule syncs on its own, and status shows the next run.
func TestScheduleFires(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{demoExtra: `  schedule = "@every 2s"`})
	f.start()
	testenv.Eventually(t, 60*time.Second, func() error {
		var jobs []jobJSON
		f.cliJSON(&jobs, "jobs", "--connector", "demo")
		var st api.Status
		f.cliJSON(&st, "status")
		scheduled := false
		for _, j := range jobs {
			if j.State == events.StateCompleted {
				full, err := f.api().Job(context.Background(), j.ID)
				if err == nil && full.RequestedBy == "schedule" {
					scheduled = true
				}
			}
		}
		next := false
		for _, c := range st.Connectors {
			if c.Connector == "demo" && c.NextRun != nil && c.NextRun.After(time.Now().Add(-time.Second)) {
				next = true
			}
		}
		if !scheduled || !next {
			return fmt.Errorf("no scheduled job completed (or no next run shown): jobs %+v status %+v", jobs, st)
		}
		return nil
	})
}

// expectedUnder is what a policy makes of a simulated tenant: the users
// pass picks, with the Unified groups they are members of and tags.
func expectedUnder(sim *graphsim.Sim, connector string, pass func(graphsim.User) bool, tags []string) []recipientJSON {
	var out []recipientJSON
	t := sim.Tenant()
	groupsOf := map[string][]string{}
	for _, g := range t.Groups {
		if g.IsUnified() {
			for _, m := range g.Members {
				if m.ODataType == graphsim.TypeUser {
					groupsOf[m.ID] = append(groupsOf[m.ID], g.DisplayName)
				}
			}
		}
	}
	for _, u := range t.Users {
		if u.Mail == "" || !pass(u) {
			continue
		}
		gs := groupsOf[u.ID]
		sort.Strings(gs)
		if gs == nil {
			gs = []string{}
		}
		out = append(out, recipientJSON{Email: u.Mail, DisplayName: u.DisplayName, ObjectID: u.ID, Connector: connector,
			Department: u.Department, Groups: gs, Tags: tags, Status: "active"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ObjectID < out[j].ObjectID })
	return out
}

func assertRecipients(t *testing.T, got, want []recipientJSON) {
	t.Helper()
	sort.Slice(got, func(i, j int) bool { return got[i].ObjectID < got[j].ObjectID })
	if len(got) != len(want) {
		t.Fatalf("%d recipients, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Email != w.Email || g.ObjectID != w.ObjectID || g.Connector != w.Connector || g.DisplayName != w.DisplayName ||
			!slices.Equal(g.Groups, w.Groups) || !slices.Equal(g.Tags, w.Tags) || g.Status != w.Status {
			t.Errorf("recipient %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// The import block in plugins.hcl reaches the policy, and two tenants
// side by side keep their recipients apart.
func TestImportBlockAndTwoTenants(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{demoExtra: `
  import {
    include_guests     = true
    exclude_unlicensed = true
    tags               = ["phish-2026"]
  }`})
	// A second tenant with its own app registration and secret.
	const secret2 = "Fab7Q~second.tenant.secret.value-0987654321"
	sim2, err := graphsim.New(graphsim.Config{Users: 40, Groups: 5, Seed: 99, TenantDomain: "fabrikam.onmicrosoft.com", ClientSecret: secret2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim2.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim2.Close() })
	if err := sim2.WriteCACert(filepath.Join(f.dir, "ca2.pem")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(f.dir, "secret2"), secret2, 0o600)
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, fmt.Sprintf(`
connector "fabrikam" {
  plugin = "azuread"
  config {
    tenant             = %q
    client_id          = "6731de76-14a6-49ae-97bc-6eba6914391e"
    client_secret_file = "./secret2"
    authority_host     = %q
    graph_url          = %q
    ca_file            = "./ca2.pem"
  }
}
`, sim2.Tenant().ID, sim2.AuthorityHost(), sim2.GraphURL())...)
	write(t, f.config, string(cfg), 0o644)
	f.start()
	for _, c := range []string{"demo", "fabrikam"} {
		var j jobJSON
		f.cliJSON(&j, "sync", c, "--wait")
		if j.State != events.StateCompleted {
			t.Fatalf("sync %s: %s %s", c, j.State, j.Reason)
		}
	}
	var demo, fab, tagged []recipientJSON
	f.cliJSON(&demo, "recipients", "list", "--connector", "demo")
	f.cliJSON(&fab, "recipients", "list", "--connector", "fabrikam")
	f.cliJSON(&tagged, "recipients", "list", "--tag", "phish-2026")
	assertRecipients(t, demo, expectedUnder(f.sim, "demo", func(u graphsim.User) bool {
		return u.AccountEnabled && len(u.AssignedLicenses) > 0
	}, []string{"phish-2026"}))
	assertRecipients(t, fab, expectedUnder(sim2, "fabrikam", func(u graphsim.User) bool {
		return u.AccountEnabled && u.UserType != "Guest"
	}, []string{}))
	if len(tagged) != len(demo) {
		t.Errorf("--tag phish-2026 lists %d recipients, demo has %d", len(tagged), len(demo))
	}
	guests := 0
	for _, r := range demo {
		if u := f.sim.Tenant().User(r.ObjectID); u != nil && u.UserType == "Guest" {
			guests++
		}
	}
	if guests == 0 {
		t.Error("no guest among demo's recipients: include_guests = true had no effect")
	}
	if strings.Contains(f.log.String(), secret2) {
		t.Error("dirsyncd log contains the second tenant's secret")
	}
}
