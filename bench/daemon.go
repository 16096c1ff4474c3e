package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
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

	log    *testenv.LockedBuffer
	exited chan error
}

// FreeAddr returns a loopback address with a free port.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WriteConfig writes dir/plugins.hcl for a daemon syncing sim (nil: no
// connector) with its embedded NATS on natsAddr.
func WriteConfig(env *Env, dir string, sim *graphsim.Sim, natsAddr string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf("daemon {\n  data_dir = \"./data\"\n  log_level = \"warn\"\n}\nnats { listen = %q }\nplugin \"azuread\" { path = %q }\n",
		natsAddr, filepath.Join(env.Bin, "dirsync-azuread"))
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

// StartDaemon starts dirsyncd on dir/plugins.hcl (see WriteConfig) and
// waits until its API answers and its read models are ready.
func StartDaemon(ctx context.Context, env *Env, dir, natsAddr string) (*Daemon, error) {
	d := &Daemon{Dir: dir, NATSURL: "nats://" + natsAddr, NkeyFile: filepath.Join(dir, "data", "nats-user.nk"),
		log: &testenv.LockedBuffer{}, exited: make(chan error, 1)}
	d.Cmd = exec.Command(filepath.Join(env.Bin, "dirsyncd"), "--config", filepath.Join(dir, "plugins.hcl"), "--log-format", "json")
	d.Cmd.Stdout, d.Cmd.Stderr = d.log, d.log
	d.Started = time.Now()
	if err := d.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.exited <- d.Cmd.Wait() }()
	d.Client = api.NewClient(filepath.Join(dir, "data", "dirsyncd.sock"))
	for {
		if err := d.Client.Ready(ctx); err == nil {
			d.Ready = time.Now()
			return d, nil
		}
		select {
		case err := <-d.exited:
			return nil, fmt.Errorf("dirsyncd exited at start: %v\n%s", err, d.log.String())
		case <-ctx.Done():
			_ = d.Cmd.Process.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StartFor starts a daemon syncing sim (nil: no connector) in
// env.Dir/name, with its embedded NATS on a free port.
func StartFor(ctx context.Context, env *Env, sim *graphsim.Sim, name string) (*Daemon, error) {
	dir := filepath.Join(env.Dir, name)
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := WriteConfig(env, dir, sim, addr); err != nil {
		return nil, err
	}
	return StartDaemon(ctx, env, dir, addr)
}

// Log is the daemon's output so far.
func (d *Daemon) Log() string { return d.log.String() }

// Sync requests a job and waits for its final state; it fails unless the
// job COMPLETED.
func (d *Daemon) Sync(ctx context.Context, full bool) (api.Job, error) {
	j, err := d.Client.Sync(ctx, Connector, api.SyncRequest{Full: full})
	if err != nil {
		return j, err
	}
	for !events.Final(j.State) {
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if j, err = d.Client.Job(ctx, j.ID); err != nil {
			return j, err
		}
	}
	if j.State != events.StateCompleted {
		return j, fmt.Errorf("job %s ended %s: %s", j.ID, j.State, j.Reason)
	}
	return j, nil
}

// Stop sends SIGTERM and waits for the exit.
func (d *Daemon) Stop() error {
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		d.exited <- err
		return err
	case <-time.After(60 * time.Second):
		_ = d.Cmd.Process.Kill()
		return errors.New("dirsyncd did not stop within 60s of SIGTERM")
	}
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
