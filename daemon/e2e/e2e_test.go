package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/dirsyncd"
)

// secret is the client secret Value graphsim expects; no output may carry it.
const secret = "Xq48Q~e2e.TestSecretValue-DoNotLeak0123456"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds dirsyncd, dirsync, the plugins (dirsync-azuread, dirsync-ldap, and
// dirsync-faulty for the fault tests) and graphsim once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "dirsync-e2e-bin")
		if buildErr != nil {
			return
		}
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./daemon/cmd/dirsyncd", "./daemon/cmd/dirsync", "./connectors/cmd/dirsync-azuread", "./connectors/cmd/dirsync-ldap", "./connectors/cmd/dirsync-faulty", "./connectors/cmd/graphsim")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

type fixture struct {
	t      *testing.T
	bin    string
	dir    string
	sim    *graphsim.Sim
	config string
	// daemon is the running dirsyncd, nil when stopped.
	daemon *dirsyncd.Process
	// log is the output of every dirsyncd the fixture started.
	log *testenv.LockedBuffer
	// env is added to the daemon's environment.
	env []string
	// demoImport is the import block setDemoImport put in demo's block.
	demoImport string
}

// natsBlock is the nats {} block of the generated plugins.hcl.
func newFixture(t *testing.T, natsBlock string) *fixture {
	return newFixtureWith(t, natsBlock, fixtureOptions{})
}

// fixtureOptions vary the simulated tenant and the demo connector.
type fixtureOptions struct {
	users, groups int
	// demoExtra is added to the demo connector block (schedule, import {}).
	demoExtra string
	// demoConfig is added inside the demo connector's config {} block.
	demoConfig string
	// sim adjusts the simulated tenant's configuration.
	sim func(*graphsim.Config)
	// extra is appended to plugins.hcl (more plugin and connector blocks).
	extra string
}

func newFixtureWith(t *testing.T, natsBlock string, o fixtureOptions) *fixture {
	t.Helper()
	bin := binaries(t)
	if o.users == 0 {
		o.users, o.groups = 120, 12
	}
	simCfg := graphsim.Config{Users: o.users, Groups: o.groups, Seed: 7, ClientSecret: secret}
	if o.sim != nil {
		o.sim(&simCfg)
	}
	sim, err := graphsim.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	dir := t.TempDir()
	if err := sim.WriteCACert(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "secret"), secret+"\n", 0o600)
	write(t, filepath.Join(dir, "wrong-secret"), "not-the-value\n", 0o600)
	plugin, err := os.ReadFile(filepath.Join(bin, "dirsync-azuread"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plugin)
	cfg := fmt.Sprintf(`
daemon {
  data_dir = "./data"
  # A read-model checkpoint whenever the read models catch up, so that
  # every job and every kill point meets checkpoints being written.
  checkpoint_events = 1
}
%s
plugin "azuread" {
  path   = %q
  sha256 = %q
}
connector "demo" {
  plugin = "azuread"
%s
  config {
    tenant             = %q
    client_id          = "6731de76-14a6-49ae-97bc-6eba6914391e"
    client_secret_file = "./secret"
    authority_host     = %q
    graph_url          = %q
    ca_file            = "./ca.pem"
%s
  }
}
connector "wrong" {
  plugin = "azuread"
  config {
    tenant             = %q
    client_id          = "6731de76-14a6-49ae-97bc-6eba6914391e"
    client_secret_file = "./wrong-secret"
    authority_host     = %q
    graph_url          = %q
    ca_file            = "./ca.pem"
  }
}
`, natsBlock, filepath.Join(bin, "dirsync-azuread"), hex.EncodeToString(sum[:]), o.demoExtra,
		sim.Tenant().Domain, sim.AuthorityHost(), sim.GraphURL(), o.demoConfig,
		sim.Tenant().Domain, sim.AuthorityHost(), sim.GraphURL())
	cfg += strings.ReplaceAll(o.extra, "$BIN", bin)
	write(t, filepath.Join(dir, "plugins.hcl"), cfg, 0o644)
	f := &fixture{t: t, bin: bin, dir: dir, sim: sim, config: filepath.Join(dir, "plugins.hcl"), log: &testenv.LockedBuffer{}}
	t.Cleanup(func() {
		f.stop()
		if t.Failed() {
			t.Logf("dirsyncd log:\n%s", f.log.String())
		}
	})
	return f
}

// connectJS connects to the NATS server at url with opts (the daemon's
// credential: f.daemonCredential) and returns the connection, closed when
// the test ends, and its JetStream context.
func connectJS(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// daemonCredential connects to the fixture's embedded server as the
// daemon does, with data/nats-user.nk.
func (f *fixture) daemonCredential() nats.Option {
	f.t.Helper()
	opt, err := nats.NkeyOptionFromSeed(filepath.Join(f.dir, "data", broker.NkeyFileName))
	if err != nil {
		f.t.Fatal(err)
	}
	return opt
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) start() {
	f.t.Helper()
	d, err := dirsyncd.Start(f.bin, f.config, f.log, f.env...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.daemon = d
	// A guard for a loaded machine: the daemon is ready in seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = d.WaitReady(ctx, 100*time.Millisecond, func(context.Context) error {
		if _, errOut, code := f.cli("status"); code != 0 {
			return fmt.Errorf("dirsync status: exit %d: %s", code, errOut)
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// assertRunning fails the test if the daemon has exited: after a fault, it must
// still be up.
func (f *fixture) assertRunning(after string) {
	f.t.Helper()
	if exited, err := f.daemon.Exited(); exited {
		f.t.Fatalf("dirsyncd exited %s: %v", after, err)
	}
}

// stop sends SIGTERM and returns the exit error (nil for exit 0).
func (f *fixture) stop() error {
	if f.daemon == nil {
		return nil
	}
	d := f.daemon
	f.daemon = nil
	return d.Stop(30 * time.Second)
}

// cli runs dirsync with the fixture's config and returns stdout, stderr
// and the exit code.
func (f *fixture) cli(args ...string) (string, string, int) { return runCLI(f.bin, f.config, args...) }

// runCLI runs bin/dirsync with config and returns stdout, stderr and the
// exit code.
func runCLI(bin, config string, args ...string) (string, string, int) {
	cmd := exec.Command(filepath.Join(bin, "dirsync"), append([]string{"--config", config}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

func (f *fixture) cliJSON(v any, args ...string) {
	f.t.Helper()
	out, errOut, code := f.cli(append(args, "-o", "json")...)
	if code != 0 {
		f.t.Fatalf("dirsync %v: exit %d\n%s%s", args, code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		f.t.Fatalf("dirsync %v -o json: %v\n%s", args, err, out)
	}
}

type jobJSON struct {
	ID        string          `json:"id"`
	Connector string          `json:"connector"`
	State     string          `json:"state"`
	Summary   json.RawMessage `json:"summary"`
	Reason    string          `json:"reason"`
	History   []struct {
		State string `json:"state"`
	} `json:"history"`
}

type recipientJSON struct {
	Email       string   `json:"email"`
	DisplayName string   `json:"displayName"`
	ObjectID    string   `json:"objectId"`
	Connector   string   `json:"connector"`
	Department  string   `json:"department"`
	Groups      []string `json:"groups"`
	Tags        []string `json:"tags"`
	Status      string   `json:"status"`
}

// expectedRecipients is what the default import policy must make of the
// simulated tenant: every enabled member (not guest) with a mail address,
// with the display names of the Unified groups it is a member of.
func expectedRecipients(sim *graphsim.Sim) []recipientJSON {
	t := sim.Tenant()
	groupsOf := map[string][]string{}
	for _, g := range t.Groups {
		if !slices.Contains(g.GroupTypes, "Unified") {
			continue
		}
		for _, m := range g.Members {
			if m.ODataType == "#microsoft.graph.user" {
				groupsOf[m.ID] = append(groupsOf[m.ID], g.DisplayName)
			}
		}
	}
	var out []recipientJSON
	for _, u := range t.Users {
		if u.Mail == "" || !u.AccountEnabled || u.UserType == "Guest" {
			continue
		}
		gs := groupsOf[u.ID]
		sort.Strings(gs)
		if gs == nil {
			gs = []string{}
		}
		out = append(out, recipientJSON{Email: u.Mail, DisplayName: u.DisplayName, ObjectID: u.ID, Connector: "demo",
			Department: u.Department, Groups: gs, Tags: []string{}, Status: "active"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ObjectID < out[j].ObjectID })
	return out
}

func TestEndToEndEmbeddedNATS(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	// Before the daemon runs, the CLI says so and fails.
	if out, errOut, code := f.cli("status"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("dirsync status without a daemon: exit %d, %q %q", code, out, errOut)
	}
	f.start()
	runSyncScenario(t, f)

	// The wrong secret is named as the problem, and the command fails.
	out, errOut, code := f.cli("connector", "test", "wrong")
	if code == 0 {
		t.Fatalf("connector test with a wrong secret exited 0:\n%s", out)
	}
	if !strings.Contains(out+errOut, "secret") || !strings.Contains(out+errOut, "Value") {
		t.Errorf("wrong-secret test does not name the secret's Value as the problem:\n%s%s", out, errOut)
	}

	// SIGTERM stops the daemon with exit 0; a restart on the same data
	// directory serves the same recipients from the stored events.
	before := recipientsByID(t, f)
	if err := f.stop(); err != nil {
		t.Fatalf("dirsyncd did not exit cleanly on SIGTERM: %v", err)
	}
	f.start()
	after := recipientsByID(t, f)
	if len(after) != len(before) {
		t.Fatalf("after restart %d recipients, before %d", len(after), len(before))
	}
	assertNoSecret(t, "dirsyncd log", f.log.String())
	assertNoSecret(t, "connector test output", out+errOut)

	// The events on disk: open the daemon's JetStream store after it stopped.
	if err := f.stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	b := testenv.JetStream(t, filepath.Join(f.dir, "data"))
	assertStreamClean(t, b.JS)
}

// A mistake in a connector's config block is found by checking it against
// the plugin's schema at start: the daemon refuses to start and names the
// file, line and column, without echoing the secret.
func TestConfigErrorNamesPosition(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(cfg), `client_secret_file = "./wrong-secret"`, "client_secret_file = \"./wrong-secret\"\n    tenent = \"typo\"", 1)
	write(t, f.config, bad, 0o644)
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "tenent") {
			line = i + 1
		}
	}
	cmd := exec.Command(filepath.Join(f.bin, "dirsyncd"), "--config", f.config)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("dirsyncd started with an unknown config key:\n%s", out)
	}
	want := fmt.Sprintf("%s:%d:5:", f.config, line)
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "tenent") {
		t.Errorf("error does not name %s and the key:\n%s", want, out)
	}
	assertNoSecret(t, "config error", string(out))
}

// TestEndToEndExternalNATS runs the same sync against an existing NATS
// server (nats { url = … }): the machine's JetStream server on 4222 in CI.
func TestEndToEndExternalNATS(t *testing.T) {
	url := os.Getenv("DIRSYNC_TEST_NATS_URL")
	if url == "" {
		t.Skip("DIRSYNC_TEST_NATS_URL not set: no external NATS server to test against (the embedded one is covered)")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("DIRSYNC_TEST_NATS_URL=%s: %v", url, err)
	}
	defer nc.Close()
	if v := nc.ConnectedServerVersion(); !atLeast212(v) {
		// An older server cannot fence appends: dirsyncd must say so and
		// not start (nor touch the server's streams).
		f := newFixture(t, fmt.Sprintf("nats { url = %q }", url))
		out, err := exec.Command(filepath.Join(f.bin, "dirsyncd"), "--config", f.config).CombinedOutput()
		if err == nil {
			t.Fatalf("dirsyncd started on nats-server %s, which has no atomic batches:\n%s", v, out)
		}
		if !strings.Contains(string(out), "needs nats-server 2.12 or newer") || !strings.Contains(string(out), v) {
			t.Errorf("dirsyncd's refusal does not name the server's version and the upgrade:\n%s", out)
		}
		t.Skipf("nats-server %s at %s is older than 2.12: dirsyncd refuses it, as checked; the sync itself runs against the cluster tests' servers", v, url)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// Start from an empty log on the shared test server.
	_ = js.DeleteStream(ctx, "DIRSYNC")
	for _, b := range []string{"dirsync_recipients", "dirsync_groups", "dirsync_jobs", "dirsync_sync"} {
		_ = js.DeleteKeyValue(ctx, b)
	}
	f := newFixture(t, fmt.Sprintf("nats { url = %q }", url))
	f.start()
	runSyncScenario(t, f)
	assertStreamClean(t, js)
}

// atLeast212 reports whether a nats-server version is 2.12 or newer.
func atLeast212(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(version, "v"), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 12
}

func recipientsByID(t *testing.T, f *fixture) map[string]recipientJSON {
	var list []recipientJSON
	f.cliJSON(&list, "recipients", "list")
	m := map[string]recipientJSON{}
	for _, r := range list {
		m[r.ObjectID] = r
	}
	return m
}

func runSyncScenario(t *testing.T, f *fixture) {
	t.Helper()
	var test struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
	}
	f.cliJSON(&test, "connector", "test", "demo")
	if !test.OK || len(test.Checks) == 0 {
		t.Fatalf("connector test demo: %+v", test)
	}

	var job jobJSON
	f.cliJSON(&job, "sync", "demo", "--wait")
	if job.State != "COMPLETED" || job.ID == "" || job.Connector != "demo" || len(job.Summary) == 0 {
		t.Fatalf("sync: %+v", job)
	}
	var states []string
	for _, h := range job.History {
		states = append(states, h.State)
	}
	want := []string{"PENDING", "STARTED", "RETRIEVING", "PROCESSING", "SAVING", "COMPLETED"}
	if !slices.Equal(states, want) {
		t.Fatalf("job passed through %v, want %v", states, want)
	}
	var jobs []jobJSON
	f.cliJSON(&jobs, "jobs")
	if len(jobs) == 0 || jobs[0].ID != job.ID || jobs[0].State != "COMPLETED" {
		t.Errorf("dirsync jobs: %+v", jobs)
	}

	var got []recipientJSON
	f.cliJSON(&got, "recipients", "list")
	sort.Slice(got, func(i, j int) bool { return got[i].ObjectID < got[j].ObjectID })
	exp := expectedRecipients(f.sim)
	if len(got) != len(exp) {
		t.Fatalf("%d recipients, want %d (graphsim's enabled members with a mail address)", len(got), len(exp))
	}
	for i := range exp {
		g, w := got[i], exp[i]
		if g.Email != w.Email || g.DisplayName != w.DisplayName || g.ObjectID != w.ObjectID || g.Connector != w.Connector ||
			g.Department != w.Department || !slices.Equal(g.Groups, w.Groups) || !slices.Equal(g.Tags, w.Tags) || g.Status != w.Status {
			t.Errorf("recipient %d:\n got %+v\nwant %+v", i, g, w)
		}
	}

	var st struct {
		Connectors []struct {
			Connector  string `json:"connector"`
			LastSyncAt string `json:"lastSyncAt"`
			Recipients int    `json:"recipients"`
		} `json:"connectors"`
	}
	f.cliJSON(&st, "status")
	found := false
	for _, c := range st.Connectors {
		if c.Connector == "demo" {
			found = true
			if c.LastSyncAt == "" || c.Recipients != len(exp) {
				t.Errorf("status of demo: %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("status lacks connector demo: %+v", st)
	}

	// A second sync of an unchanged tenant changes no recipient.
	var job2 jobJSON
	f.cliJSON(&job2, "sync", "demo", "--wait")
	var sum events.Summary
	_ = json.Unmarshal(job2.Summary, &sum)
	if job2.State != "COMPLETED" || sum.RecipientsCreated+sum.RecipientsUpdated+sum.RecipientsRemoved != 0 || sum.RecipientsUnchanged != len(exp) {
		t.Errorf("second sync of an unchanged tenant: %s %+v", job2.State, sum)
	}

	assertNoSecret(t, "dirsyncd log", f.log.String())
	if !pluginLogged(f.log.String(), "sync started") {
		t.Errorf("the plugin's \"sync started\" log line did not reach the daemon's zap log")
	}
}

// pluginLogged reports whether the daemon's JSON log holds a line the
// plugin logged, forwarded by go-plugin under the plugin binary's name.
func pluginLogged(log, msg string) bool {
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Logger string `json:"logger"`
			Msg    string `json:"msg"`
			Plugin string `json:"plugin"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Logger == "dirsync-azuread" && e.Msg == msg && e.Plugin == "azuread" {
			return true
		}
	}
	return false
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Errorf("%s contains the client secret", what)
	}
}

// forEachStored calls fn with every message of the DIRSYNC stream, in
// order, and fails the test unless it saw them all (and at least one).
func forEachStored(t *testing.T, js jetstream.JetStream, fn func(subject string, data []byte)) {
	t.Helper()
	type stored struct {
		subject string
		data    []byte
	}
	var msgs []stored
	var total uint64
	// A cluster that just lost a node or a leader, or places the reading
	// consumer, may not answer at once ("no responders"): the stream is
	// read again from the start until one read gets through; fn sees
	// one complete read.
	testenv.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		msgs = msgs[:0]
		st, err := js.Stream(ctx, "DIRSYNC")
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		total = info.State.Msgs
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return fmt.Errorf("a consumer on DIRSYNC: %w", err)
		}
		for uint64(len(msgs)) < total {
			batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return fmt.Errorf("reading DIRSYNC after %d events: %w", len(msgs), err)
			}
			got := 0
			for m := range batch.Messages() {
				got++
				msgs = append(msgs, stored{m.Subject(), m.Data()})
			}
			if err := batch.Error(); err != nil {
				return fmt.Errorf("reading DIRSYNC after %d events: %w", len(msgs), err)
			}
			if got == 0 {
				break
			}
		}
		return nil
	})
	for _, m := range msgs {
		fn(m.subject, m.data)
	}
	if uint64(len(msgs)) != total || total == 0 {
		t.Errorf("read %d events of %d", len(msgs), total)
	}
}

// assertStreamClean reads every stored event: none may carry the secret,
// and every one must decode as a CloudEvent.
func assertStreamClean(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	forEachStored(t, js, func(subject string, data []byte) {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("event on %s contains the client secret", subject)
		}
		if _, err := events.Decode(data); err != nil {
			t.Errorf("event on %s: %v", subject, err)
		}
	})
}
