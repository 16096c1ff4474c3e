package service

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxAPIConns caps the TCP API's open connections. It stays far below the
// daemon's file limit, so no number of clients can starve the JetStream
// store, the plugins or the control socket of descriptors (seen before the
// cap: EMFILE, then jobs PENDING for good).
const maxAPIConns = 512

// capListener accepts at most max connections at once. One beyond is
// accepted and closed at once, not left in the kernel's backlog: the
// client learns at once, and the next slot that frees serves whoever
// comes next rather than the oldest of a flood.
type capListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	log     *zap.Logger
	refused atomic.Int64
	mu      sync.Mutex
	warned  time.Time
}

func newCapListener(ln net.Listener, max int, log *zap.Logger) *capListener {
	return &capListener{Listener: ln, max: int64(max), log: log}
}

// Accept returns the next connection within the cap.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			c.Close()
			l.refuse()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

// refuse counts a refused connection and warns at most once a minute.
func (l *capListener) refuse() {
	n := l.refused.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.warned) < time.Minute {
		return
	}
	l.warned = time.Now()
	l.log.Warn("API connection refused: too many open connections; a client may be flooding the API",
		zap.Int64("max_connections", l.max), zap.Int64("refused_so_far", n))
}

// countedConn frees its slot once, when closed.
type countedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
