package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
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

// A JetStream cluster for tests and benchmarks: nats-server processes
// on loopback, each with its own store, as an operator runs them (no
// Docker), so that a node can be killed, stopped, restarted or made to
// give up a stream's leadership. Child processes rather than servers in
// the test process, because a SIGKILL is what a crashed node is, and a
// restart must recover from the store alone. The binary is nats-server
// at the version go.mod names: the system's package may be too old for
// atomic batches (2.12+).
//
// LaunchCluster and NATSServerPath are the one implementation, for any
// caller (the benchmark harness); StartCluster and NATSServerBinary are
// them for a test, failing it instead of returning an error.
//
// The waits follow nats-server's own cluster test helpers
// (checkClusterFormed, waitOnClusterReadyWithNumPeers,
// waitOnStreamLeader), through what a client sees, since the servers'
// internals are in other processes.

// natsServerModule is nats-server's module, whose root is its main
// package (the go.mod tool directive names it too).
const natsServerModule = "github.com/nats-io/nats-server/v2"

// clusterDeadline bounds each wait on the cluster: forming, a leader
// elected, leadership moved. A step-down or a clean stop moves a
// leadership in well under a second, but an election after a crash
// waits out nats-server's election timeout (4 to 9 s, not configurable),
// and so does a first meta election whose vote split; the rest is room
// for a loaded 2-core machine.
const clusterDeadline = 30 * time.Second

// clusterRequest bounds one request to the cluster, so that a request
// nobody answers (no leader yet) is one failed poll, not the whole wait.
const clusterRequest = 2 * time.Second

// growingTimeouts returns the timeouts of one wait's successive
// requests. Until a leader is elected nobody answers, so a poll lasts
// its whole timeout: short ones first, because on loopback an answer
// takes milliseconds (with clusterRequest from the start, a cluster
// ready after half a second was seen only after two), doubling up to
// clusterRequest for a loaded machine.
func growingTimeouts() func() time.Duration {
	next := clusterRequest / 8
	return func() time.Duration {
		d := next
		next = min(2*next, clusterRequest)
		return d
	}
}

// within polls cond as Eventually does, until clusterDeadline has passed
// or ctx is done, and returns cond's last error then: Eventually for the
// waits LaunchCluster makes without a test.
func within(ctx context.Context, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, clusterDeadline)
	defer cancel()
	if err := Poll(ctx, 100*time.Millisecond, cond); err != nil {
		return fmt.Errorf("not within %s: %w", clusterDeadline, err)
	}
	return nil
}

// readyStream is the stream LaunchCluster creates, and deletes, to know
// that the meta leader may place a stream on every node.
const readyStream = "TESTENV_READY"

// natsBinaries are the nats-server binaries NATSServerPath found (or
// failed to), by the folder it was asked to look in: each is looked up
// once per process.
var natsBinaries struct {
	mu    sync.Mutex
	found map[string]natsBinary
}

type natsBinary struct {
	path string
	err  error
}

// NATSServerBinary returns a nats-server binary of go.mod's version:
// $DIRSYNC_NATS_SERVER if set (taken as it is, to try another version),
// else the repository's bin/nats-server (make bin/nats-server) if it is
// of that version, else one from `go tool -n`, which builds it once into
// Go's build cache, where every later test process finds it. It is
// looked up once per test process.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	p, err := NATSServerPath("", t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// NATSServerPath is NATSServerBinary for callers outside a test
// (benchmark harnesses): it looks for nats-server in binDir ("" for the
// repository's bin/), says through logf why it builds one, and returns
// its failure. It is looked up once per process and binDir.
func NATSServerPath(binDir string, logf func(format string, args ...any)) (string, error) {
	natsBinaries.mu.Lock()
	defer natsBinaries.mu.Unlock()
	if b, ok := natsBinaries.found[binDir]; ok {
		return b.path, b.err
	}
	var b natsBinary
	b.path, b.err = findNATSServer(binDir, logf)
	if natsBinaries.found == nil {
		natsBinaries.found = map[string]natsBinary{}
	}
	natsBinaries.found[binDir] = b
	return b.path, b.err
}

func findNATSServer(binDir string, logf func(format string, args ...any)) (string, error) {
	if p := os.Getenv("DIRSYNC_NATS_SERVER"); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("DIRSYNC_NATS_SERVER=%s: no such file", p)
		}
		return p, nil
	}
	// go runs in the repository's root; with binDir given, a working
	// directory outside the repository is no error until go is asked.
	root, err := repoRoot()
	if binDir == "" {
		if err != nil {
			return "", err
		}
		binDir = filepath.Join(root, "bin")
	}
	want := natsServerVersion(root)
	wanted := want
	if wanted == "" {
		wanted = "of go.mod's version"
	}
	if p := filepath.Join(binDir, "nats-server"); fileExists(p) {
		// A bin/nats-server left from before a version bump would test
		// the old server without a word: check it.
		got, err := binaryVersion(p)
		if err == nil && (want == "" || got == want) {
			return p, nil
		}
		if err != nil {
			got = err.Error()
		}
		logf("%s is %s, not %s (remove it and run make bin/nats-server)", p, got, wanted)
	}
	logf("building nats-server %s (go tool -n %s; cached for later runs, or run make bin/nats-server)", wanted, natsServerModule)
	cmd := exec.Command("go", "tool", "-n", natsServerModule)
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building nats-server failed: %v\n%s\nrun make bin/nats-server to see why, or set DIRSYNC_NATS_SERVER to a nats-server %s", err, stderr.String(), wanted)
	}
	return strings.TrimSpace(string(out)), nil
}

// natsServerVersion is the version of nats-server go.mod names (after a
// replace), "" when go cannot tell (a replacement by a folder). Asked of
// go, since a test binary's build information lists no dependencies.
func natsServerVersion(root string) string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", natsServerModule)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// binaryVersion is what a nats-server binary says its version is.
func binaryVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", bin, err)
	}
	// "nats-server: v2.15.2"
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server: "), nil
}

// repoRoot is the folder of go.mod above the working directory (a
// test's working directory is its package's folder).
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

// Cluster is a JetStream cluster of nats-server processes that
// LaunchCluster (or StartCluster) started.
type Cluster struct {
	// Nodes are the servers, named n1 to nN in this order.
	Nodes []*ClusterNode

	// nc and js are the fixture's own connection, for its requests (a
	// stream's leader, a step-down), closed by Close.
	nc *nats.Conn
	js jetstream.JetStream
}

// ClusterNode is one nats-server of a Cluster. Its methods may be called
// from any goroutine.
type ClusterNode struct {
	// Name is the server's server_name: what JetStream reports as a
	// stream's leader and peers.
	Name string
	// ClientURL is the server's client URL; it stays the same across
	// restarts.
	ClientURL string

	addr      string // ClientURL's host:port
	bin, conf string
	log       string     // stdout and stderr of every run, appended
	t         testing.TB // StartCluster's test; nil for LaunchCluster

	mu   sync.Mutex
	cmd  *exec.Cmd     // the last run; nil before the first
	done chan struct{} // closed once the last run has exited
}

// StartCluster starts an n-node JetStream cluster on loopback, storing
// under t.TempDir(), and returns once it has formed (see LaunchCluster),
// or fails the test. The nodes are killed when the test ends; the tail
// of each node's log is logged then if the test failed.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := NATSServerBinary(t)
	c, err := LaunchCluster(context.Background(), bin, t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.Nodes {
		nd.t = t
	}
	// Registered after t.TempDir, so it runs before the folder goes: the
	// servers must have exited by then.
	t.Cleanup(func() {
		c.Close()
		if tails := c.logTails(40); t.Failed() && tails != "" {
			t.Log(tails)
		}
	})
	return c
}

// LaunchCluster starts an n-node JetStream cluster of the nats-server
// binary bin (see NATSServerPath) on loopback (server names n1 to nN,
// each storing in its own folder under dir and syncing every write,
// sync_interval: always) and returns once every node is routed to every
// other, answers JetStream requests, and the meta leader may place a
// stream of n replicas. Each wait is bounded by clusterDeadline, and by
// ctx. On failure the nodes are killed and the error ends with the tail
// of each node's log; otherwise the caller closes the cluster (Close).
func LaunchCluster(ctx context.Context, bin, dir string, n int) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("a cluster of %d nodes", n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Two ports per node, all different: FreeLoopbackAddr picks each at
	// random, and two picks of one port would both look free until the
	// servers start.
	taken := map[string]bool{}
	freeAddr := func() (string, error) {
		for {
			a, err := FreeLoopbackAddr()
			if err != nil || !taken[a] {
				taken[a] = true
				return a, err
			}
		}
	}
	clients, routes := make([]string, n), make([]string, n)
	var routeURLs []string
	for i := range n {
		var err error
		if clients[i], err = freeAddr(); err != nil {
			return nil, err
		}
		if routes[i], err = freeAddr(); err != nil {
			return nil, err
		}
		routeURLs = append(routeURLs, fmt.Sprintf("%q", "nats-route://"+routes[i]))
	}
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		// Every node lists every route, its own too (nats-server ignores
		// a route to itself), as nats-server's cluster tests configure
		// theirs: the cluster then has its size from the start.
		cfg := fmt.Sprintf(`server_name: %s
listen: %q
max_payload: 8MB
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: dirsync-test
  listen: %q
  routes: [%s]
}
`, name, clients[i], filepath.Join(dir, name), routes[i], strings.Join(routeURLs, ", "))
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, &ClusterNode{Name: name, ClientURL: "nats://" + clients[i], addr: clients[i],
			bin: bin, conf: conf, log: filepath.Join(dir, name+".log")})
	}
	if err := c.launch(ctx, n); err != nil {
		c.Close()
		return nil, fmt.Errorf("nats-server cluster of %d nodes in %s: %w\n%s", n, dir, err, c.logTails(40))
	}
	return c, nil
}

// launch starts the nodes and waits until the cluster has formed.
func (c *Cluster) launch(ctx context.Context, n int) error {
	for _, nd := range c.Nodes {
		if err := nd.start(ctx); err != nil {
			return err
		}
	}
	if err := c.waitJetStream(ctx); err != nil {
		return err
	}
	var err error
	if c.nc, c.js, err = c.connect(); err != nil {
		return err
	}
	return c.waitPlacement(ctx, n)
}

// Close closes the fixture's connection, kills every node and waits
// until each has exited. StartCluster's cluster is closed when the test
// ends.
func (c *Cluster) Close() {
	if c.nc != nil {
		c.nc.Close()
	}
	for _, nd := range c.Nodes {
		nd.Kill()
	}
}

// logTails is the end of every node's log that exists (not a node that
// never started), lines each.
func (c *Cluster) logTails(lines int) string {
	var b strings.Builder
	for _, nd := range c.Nodes {
		if fileExists(nd.log) {
			fmt.Fprintf(&b, "nats-server %s log (tail):\n%s\n", nd.Name, nd.LogTail(lines))
		}
	}
	return b.String()
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

// Connect connects to the cluster (any node, and another when that one
// goes) for the rest of the test.
func (c *Cluster) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := c.connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// connect connects to any node, and to another when that one goes.
func (c *Cluster) connect() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// WaitJetStream waits until every running node is routed to every other
// running node and answers a JetStream account request, which only the
// meta leader answers: one is elected and the node reaches it. After a
// node's restart, it waits for the node to rejoin; the node's streams
// may still be catching up (see WaitStreamCurrent).
func (c *Cluster) WaitJetStream(t testing.TB) {
	t.Helper()
	if err := c.waitJetStream(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitJetStream is WaitJetStream returning its failure.
func (c *Cluster) waitJetStream(ctx context.Context) error {
	var running []*ClusterNode
	for _, nd := range c.Nodes {
		if nd.Running() {
			running = append(running, nd)
		}
	}
	for _, nd := range running {
		timeout := growingTimeouts()
		if err := within(ctx, func() error { return nd.ready(ctx, running, timeout()) }); err != nil {
			return err
		}
	}
	return nil
}

// ready is nil once the node is routed to the others and reaches the
// meta leader.
func (n *ClusterNode) ready(ctx context.Context, others []*ClusterNode, timeout time.Duration) error {
	nc, err := nats.Connect(n.ClientURL, nats.Timeout(clusterRequest), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	defer nc.Close()
	// A server tells its clients the client URLs of the servers it has
	// routes to (and its own): nats-server's checkClusterFormed, seen
	// from a client.
	routed := map[string]bool{}
	for _, u := range nc.Servers() {
		if pu, err := url.Parse(u); err == nil {
			routed[pu.Host] = true
		}
	}
	for _, o := range others {
		if !routed[o.addr] {
			return fmt.Errorf("%s has no route to %s yet", n.Name, o.Name)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("%s: JetStream: %w", n.Name, err)
	}
	return nil
}

// waitPlacement waits until the meta leader places a stream on all n
// nodes, and deletes that stream. A meta leader is elected before it has
// heard from every peer, and until it has it refuses a stream of n
// replicas ("insufficient resources"): nats-server's
// waitOnClusterReadyWithNumPeers, which counts the leader's peers, does
// not work from another process.
func (c *Cluster) waitPlacement(ctx context.Context, n int) error {
	cfg := jetstream.StreamConfig{Name: readyStream, Subjects: []string{"_testenv.ready"}, Replicas: n}
	if err := within(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, clusterRequest)
		defer cancel()
		// Creating an existing stream of the same config succeeds: a
		// create that timed out here and went through does not fail the
		// next one.
		_, err := c.js.CreateStream(ctx, cfg)
		return err
	}); err != nil {
		return fmt.Errorf("placing a stream of %d replicas: %w", n, err)
	}
	return within(ctx, func() error {
		ctx, cancel := context.WithTimeout(ctx, clusterRequest)
		defer cancel()
		if err := c.js.DeleteStream(ctx, readyStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		return nil
	})
}

// StreamLeader returns the node leading stream, waiting until one does.
// A node that does not run is never the answer: a killed leader's
// successor is what a test waits for.
func (c *Cluster) StreamLeader(t testing.TB, stream string) *ClusterNode {
	t.Helper()
	var leader *ClusterNode
	timeout := growingTimeouts()
	Eventually(t, clusterDeadline, func() error {
		info, err := c.streamInfo(stream, timeout())
		if err != nil {
			return err
		}
		leader, err = c.leaderOf(stream, info)
		return err
	})
	return leader
}

func (c *Cluster) streamInfo(stream string, timeout time.Duration) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Only the stream's leader answers (the meta leader, with an error,
	// when it has none): an answer is the current leader's word.
	st, err := c.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	return st.CachedInfo(), nil
}

func (c *Cluster) leaderOf(stream string, info *jetstream.StreamInfo) (*ClusterNode, error) {
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return nil, fmt.Errorf("stream %s has no leader", stream)
	}
	nd := c.Node(info.Cluster.Leader)
	if nd == nil {
		return nil, fmt.Errorf("stream %s is led by %q, not a node of this cluster", stream, info.Cluster.Leader)
	}
	if !nd.Running() {
		return nil, fmt.Errorf("stream %s is led by %s, which does not run", stream, nd.Name)
	}
	return nd, nil
}

// StepDownStream makes stream's leader give up its leadership and waits
// until another node leads the stream.
func (c *Cluster) StepDownStream(t testing.TB, stream string) {
	t.Helper()
	old := c.StreamLeader(t, stream)
	timeout := growingTimeouts()
	Eventually(t, clusterDeadline, func() error {
		// Asked only while the old leader still leads: asking again once
		// leadership has moved would move it on, maybe back.
		info, err := c.streamInfo(stream, timeout())
		if err != nil {
			return err
		}
		if now, err := c.leaderOf(stream, info); err != nil {
			return err
		} else if now != old {
			return nil
		}
		msg, err := c.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, clusterRequest)
		if err != nil {
			return fmt.Errorf("asking %s to give up %s: %w", old.Name, stream, err)
		}
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(msg.Data, &resp); err != nil {
			return fmt.Errorf("asking %s to give up %s: %w", old.Name, stream, err)
		}
		if resp.Error != nil {
			return fmt.Errorf("asking %s to give up %s: %w", old.Name, stream, resp.Error)
		}
		return fmt.Errorf("%s still leads %s", old.Name, stream)
	})
}

// WaitStreamCurrent waits until stream has a leader and every replica
// of it is current (online, nothing to catch up): after a node's
// restart, it has all the stream again.
func (c *Cluster) WaitStreamCurrent(t testing.TB, stream string) {
	t.Helper()
	timeout := growingTimeouts()
	Eventually(t, clusterDeadline, func() error {
		info, err := c.streamInfo(stream, timeout())
		if err != nil {
			return err
		}
		if _, err := c.leaderOf(stream, info); err != nil {
			return err
		}
		want := max(info.Config.Replicas, 1) - 1 // the leader is not among the replicas
		if got := len(info.Cluster.Replicas); got != want {
			return fmt.Errorf("stream %s has %d followers, want %d", stream, got, want)
		}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline || p.Lag > 0 {
				return fmt.Errorf("stream %s: %s is not current (offline %v, lag %d)", stream, p.Name, p.Offline, p.Lag)
			}
		}
		return nil
	})
}

// Start starts the node's server: at first, and again after Kill or
// Stop, on the same ports, config and store, as an operator restarts
// one. It returns once the server accepts client connections (JetStream
// may still be recovering: see Cluster.WaitJetStream), and fails the
// test if the server exits first. It does nothing while the node runs.
// A node of LaunchCluster has no test to fail: it panics instead.
func (n *ClusterNode) Start() {
	err := n.start(context.Background())
	if err == nil {
		return
	}
	if n.t == nil {
		panic(err)
	}
	n.t.Helper()
	n.t.Fatal(err)
}

// start is Start returning its failure; ctx bounds the wait too.
func (n *ClusterNode) start(ctx context.Context) error {
	n.mu.Lock()
	if n.running() {
		n.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	// A mark between runs, so that a restart shows in the log's tail.
	fmt.Fprintf(logf, "=== testenv: starting %s at %s\n", n.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		n.mu.Unlock()
		return fmt.Errorf("starting nats-server %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	// Polled until it accepts, or until it exits: a server that cannot
	// start (its port taken, a bad config) says why in its log, whose
	// tail LaunchCluster's error, or StartCluster's cleanup, shows.
	ctx, cancel := context.WithTimeout(ctx, clusterDeadline)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = Poll(ctx, 100*time.Millisecond, func() error {
		conn, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	select {
	case <-done:
		return fmt.Errorf("nats-server %s exited at start (%v); its log: %s", n.Name, cmd.ProcessState, n.log)
	default:
	}
	if err != nil {
		return fmt.Errorf("nats-server %s does not accept connections on %s: %w; its log: %s", n.Name, n.addr, err, n.log)
	}
	return nil
}

// Running reports whether the node's server runs.
func (n *ClusterNode) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running()
}

// running is Running with n.mu held.
func (n *ClusterNode) running() bool {
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

// Pid returns the process ID of the node's server, 0 when it does not
// run.
func (n *ClusterNode) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill kills the node's server (SIGKILL: a crash, nothing flushed or
// said to the others) and waits until it has exited. It does nothing
// when the server does not run.
func (n *ClusterNode) Kill() { n.signal(syscall.SIGKILL) }

// Stop stops the node's server cleanly (SIGTERM) and waits until it has
// exited; one still running after clusterDeadline is killed, and the
// test fails (a node of LaunchCluster, with no test, panics). It does
// nothing when the server does not run.
func (n *ClusterNode) Stop() {
	if n.signal(syscall.SIGTERM) {
		return
	}
	n.signal(syscall.SIGKILL)
	err := fmt.Errorf("nats-server %s did not stop within %s of SIGTERM: killed", n.Name, clusterDeadline)
	if n.t == nil {
		panic(err)
	}
	n.t.Helper()
	n.t.Error(err)
}

// signal sends sig to the server and reports whether it exited within
// clusterDeadline (at once when it had already).
func (n *ClusterNode) signal(sig syscall.Signal) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig) // fails only when it has exited: done is closed
	t := time.NewTimer(clusterDeadline)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// LogTail returns the last lines of the node's log (every run's stdout
// and stderr, each run after a "=== testenv: starting" line).
func (n *ClusterNode) LogTail(lines int) string {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
