package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/dirsyncd"
)

// Connector is the connector name the benchmark daemons sync.
const Connector = "bench"

// NewSim starts a simulated tenant of s.Users users and s.Groups
// Microsoft 365 (Unified) groups, about 30 members each.
func NewSim(s Sizes) (*graphsim.Sim, error) {
	sim, err := graphsim.New(graphsim.Config{Users: s.Users, Groups: s.Groups, Seed: 11, ClientSecret: newClientSecret()})
	if err != nil {
		return nil, err
	}
	// Every group a Microsoft 365 group: the scenario's 5,000 are Unified.
	if err := sim.Mutate(func(t *graphsim.Tenant) {
		for i := range t.Groups {
			t.Groups[i].GroupTypes = []string{"Unified"}
		}
	}); err != nil {
		return nil, err
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return sim, nil
}

// newClientSecret is a random client secret for a simulated tenant.
func newClientSecret() string {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	return hex.EncodeToString(secret)
}

// Daemon is a dirsyncd process syncing one connector against a sim.
type Daemon struct {
	Cmd *exec.Cmd
	// Dir holds plugins.hcl, the secret and data/.
	Dir    string
	Client *api.Client
	// NATSURL reaches the daemon's NATS server: the embedded one, whose
	// user nkey seed is NkeyFile, or the deployment of nats { url }.
	NATSURL, NkeyFile string
	// Started is when the process was started, Ready when its API answered.
	Started, Ready time.Time

	proc *dirsyncd.Process
}

// daemonConfig is what a daemon's plugins.hcl says beside its connector
// (see writeConfig).
type daemonConfig struct {
	// LogLevel is daemon { log_level }: warn, or info for a scenario
	// that reads what the daemon says (a read-model checkpoint loaded,
	// a connector taken over).
	LogLevel string
	// NATSListen is where the embedded NATS server listens (nats {
	// listen }). NATSURL, set instead, is an external deployment's
	// client URLs, comma-separated (nats { url }), with R3 streams.
	NATSListen, NATSURL string
	// Replica and LeaseTTL are daemon { replica, lease_ttl }, set for one
	// of the replicas sharing a deployment and its connector.
	Replica  string
	LeaseTTL time.Duration
	// Import is the body of the connector's import { } block (its
	// lines, e.g. "nested_groups = false"); empty for none, the default
	// policy.
	Import string
}

// natsURL is the URL the daemon's NATS server is reached at.
func (c daemonConfig) natsURL() string {
	if c.NATSURL != "" {
		return c.NATSURL
	}
	return "nats://" + c.NATSListen
}

// configPath is the plugins.hcl of the daemon in dir.
func configPath(dir string) string { return filepath.Join(dir, "plugins.hcl") }

// WriteConfig writes dir/plugins.hcl for a daemon syncing sim (nil: no
// connector) with its embedded NATS on natsAddr, logging warnings and
// errors only.
func WriteConfig(env *Env, dir string, sim *graphsim.Sim, natsAddr string) error {
	return writeConfig(env, dir, sim, daemonConfig{LogLevel: "warn", NATSListen: natsAddr})
}

// writeConfig is WriteConfig for any daemonConfig: dir/plugins.hcl, and
// the sim's CA certificate and client secret beside it.
func writeConfig(env *Env, dir string, sim *graphsim.Sim, c daemonConfig) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf("daemon {\n  data_dir = \"./data\"\n  log_level = %q\n", c.LogLevel)
	if c.Replica != "" {
		cfg += fmt.Sprintf("  replica = %q\n  lease_ttl = %q\n", c.Replica, c.LeaseTTL.String())
	}
	if c.NATSURL != "" {
		cfg += fmt.Sprintf("}\nnats {\n  url = %q\n  replicas = 3\n}\n", c.NATSURL)
	} else {
		cfg += fmt.Sprintf("}\nnats { listen = %q }\n", c.NATSListen)
	}
	cfg += fmt.Sprintf("plugin \"azuread\" { path = %q }\n", filepath.Join(env.Bin, "dirsync-azuread"))
	if sim != nil {
		if err := sim.WriteCACert(filepath.Join(dir, "ca.pem")); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(sim.Config().ClientSecret), 0o600); err != nil {
			return err
		}
		cfg += fmt.Sprintf(`connector %q {
  plugin = "azuread"
  full_sync_interval = "0"
  config {
    tenant             = %q
    client_id          = %q
    client_secret_file = "./secret"
    authority_host     = %q
    graph_url          = %q
    ca_file            = "./ca.pem"
  }
%s}
`, Connector, sim.Tenant().Domain, sim.Config().ClientID, sim.AuthorityHost(), sim.GraphURL(), importBlock(c.Import))
	}
	return os.WriteFile(configPath(dir), []byte(cfg), 0o600)
}

// importBlock is the connector's import block holding body, indented
// as writeConfig writes the connector; "" without a body.
func importBlock(body string) string {
	if strings.TrimSpace(body) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for i, l := range lines {
		lines[i] = "    " + strings.TrimSpace(l)
	}
	return "  import {\n" + strings.Join(lines, "\n") + "\n  }\n"
}

// pollEvery bounds the pause between two looks at the daemon: Ready and
// a job's end are timed, and the pause is their resolution.
const pollEvery = 20 * time.Millisecond

// StartDaemon starts dirsyncd on dir/plugins.hcl (see WriteConfig) and
// waits until its API answers and its read models are ready.
func StartDaemon(ctx context.Context, env *Env, dir, natsAddr string) (*Daemon, error) {
	return startDaemon(ctx, env, dir, daemonConfig{NATSListen: natsAddr})
}

// startDaemon is StartDaemon on the plugins.hcl that writeConfig wrote
// of c.
func startDaemon(ctx context.Context, env *Env, dir string, c daemonConfig) (*Daemon, error) {
	p, err := dirsyncd.Start(env.Bin, configPath(dir), nil)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Cmd: p.Cmd, Dir: dir, NATSURL: c.natsURL(), Started: p.Started, proc: p,
		Client: api.NewClient(filepath.Join(dir, "data", "dirsyncd.sock"))}
	if c.NATSURL == "" {
		d.NkeyFile = filepath.Join(dir, "data", "nats-user.nk")
	}
	if err := p.WaitReady(ctx, pollEvery, d.Client.Ready); err != nil {
		_ = p.Cmd.Process.Kill()
		return nil, err
	}
	d.Ready = time.Now()
	return d, nil
}

// StartFor starts a daemon syncing sim (nil: no connector) in
// env.Dir/name, with its embedded NATS on a free port.
func StartFor(ctx context.Context, env *Env, sim *graphsim.Sim, name string) (*Daemon, error) {
	return startFor(ctx, env, sim, name, "warn")
}

// startFor is StartFor with a log level (see daemonConfig).
func startFor(ctx context.Context, env *Env, sim *graphsim.Sim, name, logLevel string) (*Daemon, error) {
	return startWith(ctx, env, sim, name, daemonConfig{LogLevel: logLevel})
}

// startWith is startFor with the rest of c too (an import policy); the
// embedded NATS listens on a free port whatever c.NATSListen says.
func startWith(ctx context.Context, env *Env, sim *graphsim.Sim, name string, c daemonConfig) (*Daemon, error) {
	dir := filepath.Join(env.Dir, name)
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	c.NATSListen, c.NATSURL = addr, ""
	if err := writeConfig(env, dir, sim, c); err != nil {
		return nil, err
	}
	return startDaemon(ctx, env, dir, c)
}

// Log is the daemon's output so far.
func (d *Daemon) Log() string { return d.proc.Log.String() }

// State says whether the daemon still runs, or how it exited. An exit
// under way (the reason a sync just failed) gets a moment to show.
func (d *Daemon) State() string {
	select {
	case <-d.proc.Done():
		_, err := d.proc.Exited()
		if st := d.Cmd.ProcessState; st != nil {
			return "dirsyncd exited: " + st.String()
		}
		return fmt.Sprintf("dirsyncd exited: %v", err)
	case <-time.After(100 * time.Millisecond):
		return "dirsyncd still runs"
	}
}

// Sync requests a job and waits for its final state; it fails unless the
// job COMPLETED.
func (d *Daemon) Sync(ctx context.Context, full bool) (api.Job, error) {
	j, err := d.Client.Sync(ctx, Connector, api.SyncRequest{Full: full})
	if err != nil {
		return j, err
	}
	// An API error ends the wait (cond returns nil) and is returned.
	waitErr := testenv.Poll(ctx, pollEvery, func() error {
		if events.Final(j.State) {
			return nil
		}
		if j, err = d.Client.Job(ctx, j.ID); err != nil {
			return nil
		}
		return fmt.Errorf("job %s is %s", j.ID, j.State)
	})
	if err != nil {
		return j, err
	}
	if waitErr != nil {
		return j, fmt.Errorf("%w: %v", ctx.Err(), waitErr)
	}
	if j.State != events.StateCompleted {
		return j, fmt.Errorf("job %s ended %s: %s", j.ID, j.State, j.Reason)
	}
	return j, nil
}

// Stop sends SIGTERM and waits for the exit (a minute at most, then it
// kills the daemon and says so).
func (d *Daemon) Stop() error { return d.proc.Stop(time.Minute) }

// Kill SIGKILLs the daemon (a crash: nothing flushed, no lease given
// up) and waits for its exit.
func (d *Daemon) Kill() {
	_ = d.Cmd.Process.Signal(syscall.SIGKILL)
	<-d.proc.Done()
}

// Running reports whether the daemon's process runs.
func (d *Daemon) Running() bool {
	exited, _ := d.proc.Exited()
	return !exited
}

// StateTime returns when job j entered state (zero if it did not).
func StateTime(j api.Job, state string) time.Time {
	for _, h := range j.History {
		if h.State == state {
			return h.At
		}
	}
	return time.Time{}
}
