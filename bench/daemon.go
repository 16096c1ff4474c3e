package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	sim, err := graphsim.New(graphsim.Config{Users: s.Users, Groups: s.Groups, Seed: 11, ClientSecret: hex.EncodeToString(secret)})
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

// Daemon is a dirsyncd process syncing one connector against a sim.
type Daemon struct {
	Cmd *exec.Cmd
	// Dir holds plugins.hcl, the secret and data/.
	Dir    string
	Client *api.Client
	// NATSURL and NkeyFile reach the embedded NATS server.
	NATSURL, NkeyFile string
	// Started is when the process was started, Ready when its API answered.
	Started, Ready time.Time

	proc *dirsyncd.Process
}

// WriteConfig writes dir/plugins.hcl for a daemon syncing sim (nil: no
// connector) with its embedded NATS on natsAddr, logging warnings and
// errors only.
func WriteConfig(env *Env, dir string, sim *graphsim.Sim, natsAddr string) error {
	return writeConfig(env, dir, sim, natsAddr, "warn")
}

// writeConfig is WriteConfig with a log level: a scenario that reads what
// the daemon says at start (a read-model checkpoint loaded) asks for info.
func writeConfig(env *Env, dir string, sim *graphsim.Sim, natsAddr, logLevel string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf("daemon {\n  data_dir = \"./data\"\n  log_level = %q\n}\nnats { listen = %q }\nplugin \"azuread\" { path = %q }\n",
		logLevel, natsAddr, filepath.Join(env.Bin, "dirsync-azuread"))
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
}
`, Connector, sim.Tenant().Domain, sim.Config().ClientID, sim.AuthorityHost(), sim.GraphURL())
	}
	return os.WriteFile(filepath.Join(dir, "plugins.hcl"), []byte(cfg), 0o600)
}

// pollEvery bounds the pause between two looks at the daemon: Ready and
// a job's end are timed, and the pause is their resolution.
const pollEvery = 20 * time.Millisecond

// StartDaemon starts dirsyncd on dir/plugins.hcl (see WriteConfig) and
// waits until its API answers and its read models are ready.
func StartDaemon(ctx context.Context, env *Env, dir, natsAddr string) (*Daemon, error) {
	p, err := dirsyncd.Start(env.Bin, filepath.Join(dir, "plugins.hcl"), nil)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Cmd: p.Cmd, Dir: dir, NATSURL: "nats://" + natsAddr, NkeyFile: filepath.Join(dir, "data", "nats-user.nk"),
		Started: p.Started, proc: p, Client: api.NewClient(filepath.Join(dir, "data", "dirsyncd.sock"))}
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

// startFor is StartFor with a log level (see writeConfig).
func startFor(ctx context.Context, env *Env, sim *graphsim.Sim, name, logLevel string) (*Daemon, error) {
	dir := filepath.Join(env.Dir, name)
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	if err := writeConfig(env, dir, sim, addr, logLevel); err != nil {
		return nil, err
	}
	return StartDaemon(ctx, env, dir, addr)
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

// StateTime returns when job j entered state (zero if it did not).
func StateTime(j api.Job, state string) time.Time {
	for _, h := range j.History {
		if h.State == state {
			return h.At
		}
	}
	return time.Time{}
}
