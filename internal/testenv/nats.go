package testenv

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is a plain nats-server with JetStream (the real server, as
// a library, not the daemon's broker) that a test stops and starts
// again on the same port and store: an external NATS deployment, or an
// outage of one. Stop and Start may be called from any goroutine.
type NATSServer struct {
	t    testing.TB
	opts server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// StartNATS starts a NATSServer named name on a port from FreeAddr, with
// its JetStream store in a new t.TempDir(), and shuts it down when the
// test ends.
func StartNATS(t testing.TB, name string) *NATSServer {
	t.Helper()
	return StartNATSWith(t, name, nil)
}

// StartNATSWith is StartNATS with the server's options adjusted by opt
// (nil: none), for a deployment configured otherwise than the defaults.
func StartNATSWith(t testing.TB, name string, opt func(*server.Options)) *NATSServer {
	t.Helper()
	host, port, _ := strings.Cut(FreeAddr(t), ":")
	p, _ := strconv.Atoi(port)
	n := &NATSServer{t: t, opts: server.Options{ServerName: name, Host: host, Port: p, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true}}
	if opt != nil {
		opt(&n.opts)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// URL is the server's client URL; it stays the same across restarts.
func (n *NATSServer) URL() string { return fmt.Sprintf("nats://%s:%d", n.opts.Host, n.opts.Port) }

// Start starts the server again after Stop (a no-op while it runs) and
// returns once it accepts connections. It returns an error rather than
// failing the test, so that a goroutine may call it.
func (n *NATSServer) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("nats-server on %s: %w", n.URL(), err)
	}
	go srv.Start()
	// A guard, not a measurement: a server starts in milliseconds.
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats-server on %s: not ready within 30s", n.URL())
	}
	n.srv = srv
	return nil
}

// Stop shuts the server down and waits until it has (a no-op once
// stopped). Its store stays for the next Start.
func (n *NATSServer) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}
