package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/internal/testenv"
)

// A JetStream cluster for the cluster scenarios (fenced, failover):
// nats-server processes on loopback, each with its own store, as
// internal/testenv.StartCluster starts them for the tests, but for a
// harness without a testing.TB. The binary is nats-server at the version
// go.mod names (2.12+ for atomic batches): the system's may be older.

// natsServerModule is nats-server's module, whose root is its main
// package (the go.mod tool directive names it too).
const natsServerModule = "github.com/nats-io/nats-server/v2"

var natsServer struct {
	once sync.Once
	path string
	err  error
}

// natsServerBin finds a nats-server of go.mod's version as
// testenv.NATSServerBinary does: $DIRSYNC_NATS_SERVER as it is, else
// nats-server beside the other binaries (make bin/nats-server) when it
// is of that version, else `go tool -n`, which builds it once into Go's
// build cache.
func natsServerBin(env *Env) (string, error) {
	natsServer.once.Do(func() { natsServer.path, natsServer.err = findNATSServer(env) })
	return natsServer.path, natsServer.err
}

func findNATSServer(env *Env) (string, error) {
	if p := os.Getenv("DIRSYNC_NATS_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DIRSYNC_NATS_SERVER: %w", err)
		}
		return p, nil
	}
	want := ""
	if out, err := exec.Command("go", "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", natsServerModule).Output(); err == nil {
		want = strings.TrimSpace(string(out))
	}
	if p := filepath.Join(env.Bin, "nats-server"); fileExists(p) {
		out, err := exec.Command(p, "--version").Output()
		got := strings.TrimPrefix(strings.TrimSpace(string(out)), "nats-server: ")
		if err == nil && (want == "" || got == want) {
			return p, nil
		}
		env.Logf("%s is %q, not %s (remove it and run make bin/nats-server): using go tool -n", p, got, want)
	}
	env.Logf("building nats-server %s (go tool -n %s; cached for later runs, or run make bin/nats-server)", want, natsServerModule)
	var stderr strings.Builder
	cmd := exec.Command("go", "tool", "-n", natsServerModule)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("no nats-server: %s/nats-server is missing (make bin/nats-server) and go tool -n failed: %v\n%s", env.Bin, err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// natsCluster is a JetStream cluster of nats-server processes.
type natsCluster struct {
	nodes []*natsNode
}

// natsNode is one nats-server of a natsCluster.
type natsNode struct {
	name, url, addr, log string
	cmd                  *exec.Cmd
	done                 chan struct{} // closed once the process has exited
}

// clusterWait bounds the wait for a cluster to form and to place a
// stream on every node: a first meta election whose vote split waits
// out nats-server's election timeout (4 to 9 s).
const clusterWait = time.Minute

// startNATSCluster starts n nodes on loopback (server names n1…nN, each
// storing in its own folder under dir and syncing every write,
// sync_interval: always, as deploy/cluster configures them) and returns
// once the meta leader places a stream of n replicas.
func startNATSCluster(ctx context.Context, env *Env, dir string, n int) (*natsCluster, error) {
	bin, err := natsServerBin(env)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Two ports per node, all different.
	taken := map[string]bool{}
	freeAddr := func() (string, error) {
		for {
			a, err := testenv.FreeLoopbackAddr()
			if err != nil || !taken[a] {
				taken[a] = true
				return a, err
			}
		}
	}
	clients, routes := make([]string, n), make([]string, n)
	var routeURLs []string
	for i := range n {
		if clients[i], err = freeAddr(); err != nil {
			return nil, err
		}
		if routes[i], err = freeAddr(); err != nil {
			return nil, err
		}
		routeURLs = append(routeURLs, fmt.Sprintf("%q", "nats-route://"+routes[i]))
	}
	c := &natsCluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		cfg := fmt.Sprintf(`server_name: %s
listen: %q
max_payload: 8MB
jetstream {
  store_dir: %q
  sync_interval: always
}
cluster {
  name: dirsync-bench
  listen: %q
  routes: [%s]
}
`, name, clients[i], filepath.Join(dir, name), routes[i], strings.Join(routeURLs, ", "))
		conf := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
			c.Close()
			return nil, err
		}
		nd := &natsNode{name: name, url: "nats://" + clients[i], addr: clients[i], log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
		logf, err := os.Create(nd.log)
		if err != nil {
			c.Close()
			return nil, err
		}
		nd.cmd = exec.Command(bin, "-c", conf)
		nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
		if err := nd.cmd.Start(); err != nil {
			_ = logf.Close()
			c.Close()
			return nil, fmt.Errorf("starting nats-server %s: %w", name, err)
		}
		go func() {
			_ = nd.cmd.Wait()
			_ = logf.Close()
			close(nd.done)
		}()
		c.nodes = append(c.nodes, nd)
	}
	if err := c.waitPlacement(ctx, n); err != nil {
		err = fmt.Errorf("nats-server cluster of %d did not form within %s: %w\n%s", n, clusterWait, err, c.logTail(10))
		c.Close()
		return nil, err
	}
	return c, nil
}

// URLs returns the nodes' client URLs, comma-separated, as nats.Connect
// and dirsyncd's nats { url } take them.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, nd.url)
	}
	return strings.Join(urls, ",")
}

// readyStream is the stream waitPlacement creates, and deletes.
const readyStream = "BENCH_READY"

// waitPlacement waits until the meta leader places a stream on all n
// nodes (it refuses one until it has heard from every peer), and
// deletes it.
func (c *natsCluster) waitPlacement(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, clusterWait)
	defer cancel()
	nc, err := nats.Connect(c.URLs(), nats.Name("dirsync-bench"), nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := jetstream.StreamConfig{Name: readyStream, Subjects: []string{"_bench.ready"}, Replicas: n}
	request := func(op func(context.Context) error) error {
		return testenv.Poll(ctx, 250*time.Millisecond, func() error {
			for _, nd := range c.nodes {
				select {
				case <-nd.done:
					return fmt.Errorf("nats-server %s exited: %v", nd.name, nd.cmd.ProcessState)
				default:
				}
			}
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return op(rctx)
		})
	}
	if err := request(func(ctx context.Context) error { _, err := js.CreateStream(ctx, cfg); return err }); err != nil {
		return err
	}
	return request(func(ctx context.Context) error {
		if err := js.DeleteStream(ctx, readyStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		return nil
	})
}

// Close kills every node (by its process) and waits for its exit.
func (c *natsCluster) Close() {
	for _, nd := range c.nodes {
		_ = nd.cmd.Process.Kill()
		<-nd.done
	}
}

// logTail is the end of every node's log.
func (c *natsCluster) logTail(lines int) string {
	var b strings.Builder
	for _, nd := range c.nodes {
		data, err := os.ReadFile(nd.log)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "nats-server %s log (tail):\n%s\n", nd.name, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}
