package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// renameDemo rewrites plugins.hcl with connector demo renamed to
// "renamed", extra added at the top of its block, and makes the running
// daemon reload it (SIGHUP) until its log says so.
func (f *fixture) renameDemo(extra string) {
	f.t.Helper()
	b, err := os.ReadFile(f.config)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `connector "demo" {`, "connector \"renamed\" {\n"+extra, 1)
	write(f.t, f.config, cfg, 0o644)
	f.reload()
}

// reload makes the running daemon reload plugins.hcl (SIGHUP) and waits
// until its log says so.
func (f *fixture) reload() {
	f.t.Helper()
	reloads := strings.Count(f.log.String(), "plugins.hcl reloaded")
	if err := f.daemon.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		f.t.Fatal(err)
	}
	testenv.Eventually(f.t, time.Minute, func() error {
		if strings.Count(f.log.String(), "plugins.hcl reloaded") == reloads {
			return fmt.Errorf("no reload logged yet")
		}
		return nil
	})
}

// statusOf returns one connector's line of `dirsync status -o json`.
func (f *fixture) statusOf(name string) api.ConnectorStatus {
	f.t.Helper()
	var st api.Status
	f.cliJSON(&st, "status")
	for _, c := range st.Connectors {
		if c.Connector == name {
			return c
		}
	}
	f.t.Fatalf("dirsync status has no connector %s: %+v", name, st.Connectors)
	return api.ConnectorStatus{}
}

// activeByEmail lists every recipient (`dirsync recipients list`) and
// fails the test if two active ones share an email; it returns the
// active recipients' connector by email, and the archived count by
// connector.
func (f *fixture) activeByEmail() (map[string]string, map[string]int) {
	f.t.Helper()
	var rs []recipientJSON
	f.cliJSON(&rs, "recipients", "list")
	active, archived := map[string]string{}, map[string]int{}
	for _, r := range rs {
		if r.Status != events.RecipientActive {
			archived[r.Connector]++
			continue
		}
		key := strings.ToLower(r.Email)
		if c, dup := active[key]; dup {
			f.t.Fatalf("two active recipients have %s: of %s and of %s", r.Email, c, r.Connector)
		}
		active[key] = r.Connector
	}
	return active, archived
}

func countOf(m map[string]string, connector string) int {
	n := 0
	for _, c := range m {
		if c == connector {
			n++
		}
	}
	return n
}

// retireEvents reads the stream: the state events of job id, in order,
// and its recipient events' types by subject.
func retireEvents(t *testing.T, js jetstream.JetStream, id string) (states []string, recipients map[string]string, reasons map[string]string) {
	recipients, reasons = map[string]string{}, map[string]string{}
	forEachStored(t, js, func(subject string, data []byte) {
		e, err := events.Decode(data)
		if err != nil || e.JobID != id {
			return
		}
		switch {
		case e.Type == events.TypeSyncState:
			var s events.SyncState
			if err := e.DecodeData(&s); err == nil {
				states = append(states, s.State)
			}
		case strings.HasPrefix(subject, "dirsync.recipients."):
			var c events.RecipientChange
			if err := e.DecodeData(&c); err == nil {
				recipients[subject], reasons[subject] = e.Type, c.Reason
			}
		}
	})
	return states, recipients, reasons
}

// TestConnectorRenameAndRetire: connector demo renamed in plugins.hcl
// without renamed_from. At the reload the daemon warns, naming demo and
// its active recipients; status shows demo as not configured; the renamed
// connector's users are skipped as duplicate_email, never doubled. A
// retire of the renamed connector is refused (still configured); one of
// demo past the mass-removal guard fails and changes nothing until
// confirmed; confirmed, it archives demo's recipients as a job with
// events. The next sync of the renamed connector creates them; one active
// recipient per email throughout.
func TestConnectorRenameAndRetire(t *testing.T) {
	listen := testenv.FreeAddr(t)
	f := newFixture(t, fmt.Sprintf("nats { listen = %q }", listen))
	f.start()
	first := f.syncJob()
	if first.State != events.StateCompleted {
		t.Fatalf("first sync %s: %s", first.State, first.Reason)
	}
	want := len(expectedRecipients(f.sim))

	f.renameDemo("")
	warning := fmt.Sprintf("connector demo is not in plugins.hcl but still has %d active recipients", want)
	if !strings.Contains(f.log.String(), warning) || !strings.Contains(f.log.String(), "dirsync connector retire demo") {
		t.Fatalf("no warning %q naming the retire command after the reload", warning)
	}
	if st := f.statusOf("demo"); st.Configured || st.Recipients != want {
		t.Errorf("status of demo: configured %v, %d recipients; want false, %d", st.Configured, st.Recipients, want)
	}
	if st := f.statusOf("renamed"); !st.Configured {
		t.Errorf("status of renamed: configured false")
	}
	out, _, _ := f.cli("status")
	if line := fmt.Sprintf("demo: not in plugins.hcl — %d active recipients; retire it with `dirsync connector retire demo`", want); !strings.Contains(out, line) {
		t.Errorf("dirsync status:\n%s\nwant the line %q", out, line)
	}

	var j jobJSON
	f.cliJSON(&j, "sync", "renamed", "--wait")
	var sum events.Summary
	if err := json.Unmarshal(j.Summary, &sum); err != nil || j.State != events.StateCompleted {
		t.Fatalf("sync of renamed: %s %s (%v)", j.State, j.Reason, err)
	}
	if sum.Skipped["duplicate_email"] != want || sum.RecipientsCreated != 0 {
		t.Errorf("sync of renamed skipped %v, created %d; want %d duplicate_email, 0 created", sum.Skipped, sum.RecipientsCreated, want)
	}
	if active, _ := f.activeByEmail(); countOf(active, "demo") != want || countOf(active, "renamed") != 0 {
		t.Errorf("active after the renamed sync: %d of demo, %d of renamed; want %d, 0", countOf(active, "demo"), countOf(active, "renamed"), want)
	}

	// Refusals: a configured connector, then the mass-removal guard.
	if _, errOut, code := f.cli("connector", "retire", "renamed"); code == 0 || !strings.Contains(errOut, "remove its block from plugins.hcl") {
		t.Errorf("retire of a configured connector: exit %d, %s", code, errOut)
	}
	out, _, code := f.cli("connector", "retire", "demo")
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "dirsync connector retire demo --allow-mass-removal") {
		t.Errorf("retire of %d recipients without --allow-mass-removal: exit %d\n%s", want, code, out)
	}
	if st := f.statusOf("demo"); st.Recipients != want {
		t.Errorf("a refused retire left %d of %d active", st.Recipients, want)
	}

	f.cliJSON(&j, "connector", "retire", "demo", "--allow-mass-removal")
	if j.State != events.StateCompleted {
		t.Fatalf("retire: %s %s", j.State, j.Reason)
	}
	if st := f.statusOf("demo"); st.Configured || st.Recipients != 0 || st.Archived != want {
		t.Errorf("status of demo after the retire: %+v; want 0 active, %d archived", st, want)
	}
	out, _, _ = f.cli("status")
	if strings.Contains(out, "demo: not in plugins.hcl") {
		t.Errorf("status still asks to retire demo:\n%s", out)
	}

	// The retire is in the stream as a job with events, as consumers see it.
	_, js := connectJS(t, "nats://"+listen, f.daemonCredential())
	states, recips, reasons := retireEvents(t, js, j.ID)
	if got := strings.Join(states, " "); got != "PENDING STARTED PROCESSING SAVING COMPLETED" {
		t.Errorf("retire job states in the stream: %s", got)
	}
	if len(recips) != want {
		t.Errorf("%d recipient events of the retire, want %d", len(recips), want)
	}
	for subject, typ := range recips {
		if typ != events.TypeRecipientArchived || !strings.HasPrefix(subject, "dirsync.recipients.demo.") || reasons[subject] != jobs.RetireReason("demo") {
			t.Errorf("retire event %s %s %q", typ, subject, reasons[subject])
		}
	}

	f.cliJSON(&j, "sync", "renamed", "--wait")
	sum = events.Summary{}
	if err := json.Unmarshal(j.Summary, &sum); err != nil || j.State != events.StateCompleted {
		t.Fatalf("sync of renamed after the retire: %s %s (%v)", j.State, j.Reason, err)
	}
	if sum.RecipientsCreated != want || sum.Skipped["duplicate_email"] != 0 {
		t.Errorf("sync of renamed after the retire: created %d, skipped %v; want %d created", sum.RecipientsCreated, sum.Skipped, want)
	}
	active, archived := f.activeByEmail()
	if countOf(active, "renamed") != want || countOf(active, "demo") != 0 || archived["demo"] != want {
		t.Errorf("final: %d active of renamed, %d of demo, %d archived of demo; want %d, 0, %d",
			countOf(active, "renamed"), countOf(active, "demo"), archived["demo"], want, want)
	}

	// A restart warns no more: demo has nothing active left.
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	before := len(f.log.String())
	f.start()
	if strings.Contains(f.log.String()[before:], "connector demo is not in plugins.hcl") {
		t.Errorf("a retired connector is warned about at start")
	}
	report(t, faultRow{Case: "connector/renamed-then-retired", Seed: "-", Fault: "a connector renamed in plugins.hcl (SIGHUP), then retired",
		AtFault: "warned with its count, shown unconfigured, new users skipped not doubled; retire 409 while configured, guarded, then COMPLETED"})
}

// TestConnectorRenamedFrom: renamed with renamed_from = "demo", the new
// connector's first sync takes demo's recipients over in one job: demo's
// archived first, the new connector's created from them, never one email
// active twice; the restart before it warns that the rename is pending.
func TestConnectorRenamedFrom(t *testing.T) {
	f := newFixture(t, "")
	f.start()
	if j := f.syncJob("--tag", "q4"); j.State != events.StateCompleted {
		t.Fatalf("first sync %s: %s", j.State, j.Reason)
	}
	want := len(expectedRecipients(f.sim))

	// Renamed while stopped: the warning comes at load.
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f.config, strings.Replace(string(b), `connector "demo" {`, "connector \"renamed\" {\n  renamed_from = \"demo\"", 1), 0o644)
	f.start()
	// The log is JSON: the quotes around demo are escaped there.
	if w := fmt.Sprintf(`connector demo is not in plugins.hcl and still has %d active recipients: connector renamed (renamed_from = \"demo\") takes them over at its next sync`, want); !strings.Contains(f.log.String(), w) {
		t.Errorf("no warning %q at start", w)
	}

	var j jobJSON
	f.cliJSON(&j, "sync", "renamed", "--wait")
	var sum events.Summary
	if err := json.Unmarshal(j.Summary, &sum); err != nil || j.State != events.StateCompleted {
		t.Fatalf("sync of renamed: %s %s (%v)", j.State, j.Reason, err)
	}
	if sum.RecipientsCreated != want || sum.Skipped["duplicate_email"] != 0 {
		t.Errorf("sync of renamed: created %d, skipped %v; want %d created, no duplicate_email", sum.RecipientsCreated, sum.Skipped, want)
	}
	active, archived := f.activeByEmail()
	if countOf(active, "renamed") != want || countOf(active, "demo") != 0 || archived["demo"] != want {
		t.Errorf("after the rename: %d active of renamed, %d of demo, %d archived of demo; want %d, 0, %d",
			countOf(active, "renamed"), countOf(active, "demo"), archived["demo"], want, want)
	}
	var rs []recipientJSON
	f.cliJSON(&rs, "recipients", "list", "--connector", "renamed", "--tag", "q4")
	if len(rs) != want {
		t.Errorf("%d of renamed's recipients kept demo's tag q4, want %d", len(rs), want)
	}
	// The job's change list holds both halves, archived before created,
	// and the history of one email shows the recipient under both names.
	var ch api.Changes
	f.cliJSON(&ch, "jobs", "show", j.ID)
	firstCreated, lastArchived := len(ch.Changes), -1
	for i, c := range ch.Changes {
		switch c.Kind {
		case "archived":
			lastArchived = i
		case "created":
			firstCreated = min(firstCreated, i)
		}
	}
	if lastArchived < 0 || lastArchived > firstCreated {
		t.Errorf("the rename job's changes are not archived-then-created: last archived %d, first created %d", lastArchived, firstCreated)
	}
	var h api.History
	f.cliJSON(&h, "recipients", "history", rs[0].Email)
	if len(h.Changes["demo."+rs[0].ObjectID]) < 2 || len(h.Changes["renamed."+rs[0].ObjectID]) < 1 {
		t.Errorf("history of %s: %v; want demo's created and archived, and renamed's created", rs[0].Email, h.Changes)
	}
	if st := f.statusOf("demo"); st.Configured || st.Recipients != 0 {
		t.Errorf("status of demo after the rename: %+v", st)
	}
	report(t, faultRow{Case: "connector/renamed_from", Seed: "-", Fault: "a connector renamed with renamed_from (restart)",
		AtFault: "old recipients adopted in one job, archived before created, tags and history kept"})
}
