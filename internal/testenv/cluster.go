package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A JetStream cluster for tests: nats-server processes on loopback, each
// with its own store, as an operator runs them (no Docker), so that a
// node can be killed, paused, restarted or made to give up a stream's
// leadership. The binary is nats-server at the version go.mod names,
// built from the module cache: the system's package may be too old for
// atomic batches (2.12+).

var natsBinary struct {
	once sync.Once
	path string
	err  error
}

// NATSServerBinary returns a nats-server binary of go.mod's version:
// $DIRSYNC_NATS_SERVER if set, bin/nats-server of the repository if it
// is there (make bin/nats-server), else one built once per test process.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsBinary.once.Do(func() {
		if p := os.Getenv("DIRSYNC_NATS_SERVER"); p != "" {
			natsBinary.path = p
			return
		}
		root, err := repoRoot()
		if err != nil {
			natsBinary.err = err
			return
		}
		if p := filepath.Join(root, "bin", "nats-server"); fileExists(p) {
			natsBinary.path = p
			return
		}
		dir, err := os.MkdirTemp("", "dirsync-nats-server-")
		if err != nil {
			natsBinary.err = err
			return
		}
		p := filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", p, "github.com/nats-io/nats-server/v2")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			natsBinary.err = fmt.Errorf("building nats-server (run make bin/nats-server to see why): %w\n%s", err, out)
			return
		}
		natsBinary.path = p
	})
	if natsBinary.err != nil {
		t.Fatal(natsBinary.err)
	}
	return natsBinary.path
}

// repoRoot is the folder of go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Cluster is a JetStream cluster of nats-server processes.
type Cluster struct {
	Nodes []*ClusterNode
	t     testing.TB
}

// ClusterNode is one nats-server of a Cluster.
type ClusterNode struct {
	Name      string
	ClientURL string
	bin, conf string
	log       string
	t         testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartCluster starts an n-node JetStream cluster on loopback (each node
// syncing every write, sync_interval: always) and waits until every node
// answers JetStream requests. The nodes are killed when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := NATSServerBinary(t)
	dir := t.TempDir()
	c := &Cluster{t: t}
	clients, routes := make([]string, n), make([]string, n)
	for i := range n {
		clients[i], routes[i] = FreeAddr(t), FreeAddr(t)
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		var rs []string
		for _, r := range routes {
			rs = append(rs, "nats-route://"+r)
		}
		host, port, _ := strings.Cut(clients[i], ":")
		rhost, rport, _ := strings.Cut(routes[i], ":")
		store := filepath.Join(dir, name)
		conf := filepath.Join(dir, name+".conf")
		cfg := fmt.Sprintf(`server_name: %s
host: %s
port: %s
max_payload: 8MB
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: dirsync-test
  host: %s
  port: %s
  routes: [%s]
}
`, name, host, port, store, rhost, rport, strings.Join(rs, ", "))
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, &ClusterNode{Name: name, ClientURL: "nats://" + clients[i], bin: bin, conf: conf,
			log: filepath.Join(dir, name+".log"), t: t})
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
		}
		if t.Failed() {
			for _, nd := range c.Nodes {
				t.Logf("nats-server %s log (tail):\n%s", nd.Name, nd.LogTail(40))
			}
		}
	})
	for _, nd := range c.Nodes {
		nd.Start()
	}
	c.WaitJetStream(t)
	return c
}

// URLs returns the nodes' client URLs, comma-separated, as nats.Connect
// and dirsyncd's nats { url } take them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, nd := range c.Nodes {
		urls = append(urls, nd.ClientURL)
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *ClusterNode {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// WaitJetStream waits until every running node answers a JetStream
// account request (a meta leader is elected and the node knows it).
func (c *Cluster) WaitJetStream(t testing.TB) {
	t.Helper()
	for _, nd := range c.Nodes {
		if !nd.Running() {
			continue
		}
		Eventually(t, 60*time.Second, func() error {
			nc, err := nats.Connect(nd.ClientURL, nats.Timeout(2*time.Second))
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err = js.AccountInfo(ctx)
			return err
		})
	}
}

// Connect connects to the cluster (any node) for the rest of the test.
func (c *Cluster) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
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

// StreamLeader returns the node leading stream, waiting until one does.
func (c *Cluster) StreamLeader(t testing.TB, stream string) *ClusterNode {
	t.Helper()
	_, js := c.Connect(t)
	var leader *ClusterNode
	Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("stream %s has no leader", stream)
		}
		if leader = c.Node(info.Cluster.Leader); leader == nil {
			return fmt.Errorf("stream %s is led by %q, not a node of this cluster", stream, info.Cluster.Leader)
		}
		return nil
	})
	return leader
}

// StepDownStream makes stream's leader give up leadership and waits
// until another node leads it.
func (c *Cluster) StepDownStream(t testing.TB, stream string) {
	t.Helper()
	old := c.StreamLeader(t, stream)
	nc, _ := c.Connect(t)
	Eventually(t, 60*time.Second, func() error {
		if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second); err != nil {
			return fmt.Errorf("asking %s to step down from %s: %w", old.Name, stream, err)
		}
		if now := c.StreamLeader(t, stream); now == old {
			return fmt.Errorf("%s still leads %s", old.Name, stream)
		}
		return nil
	})
}

// Start starts the node (again: same ports and store).
func (n *ClusterNode) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		n.t.Fatalf("starting nats-server %s: %v", n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
}

// Running reports whether the node's process runs.
func (n *ClusterNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// Pid returns the node's process ID (0 when it does not run).
func (n *ClusterNode) Pid() int {
	if !n.Running() {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// Kill kills the node (SIGKILL) and waits for it to exit.
func (n *ClusterNode) Kill() { n.signal(syscall.SIGKILL) }

// Stop stops the node cleanly (SIGTERM) and waits for it to exit.
func (n *ClusterNode) Stop() { n.signal(syscall.SIGTERM) }

func (n *ClusterNode) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-done
}

// LogTail returns the last lines of the node's log.
func (n *ClusterNode) LogTail(lines int) string {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
