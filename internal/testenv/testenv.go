// Package testenv is the one test kit every dirsync package shares: a
// polling helper with a deadline, a buffer safe for concurrent writers,
// and the real parts tests start (a JetStream server, read models, a
// daemon). A test waits on a condition, never on a sleep, and never
// asserts on a measured duration: a slower machine takes longer, not
// differently.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Eventually calls cond until it returns nil, and fails the test with
// cond's last error once timeout has passed. The timeout is a deadline
// for a condition that should hold long before it, never a measurement:
// pick it generously (a loaded 2-core machine is several times slower).
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Wait(timeout, cond); err != nil {
		t.Fatalf("not within %s: %v", timeout, err)
	}
}

// Wait is Eventually for callers that handle the failure themselves (a
// goroutine, or a test that adds context): it returns nil once cond
// does, or cond's last error at the deadline.
func Wait(timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Poll(ctx, 100*time.Millisecond, cond)
}

// Poll calls cond until it returns nil, or until ctx is done and then
// returns cond's last error. It starts fast, for conditions that hold
// almost at once, and doubles its pause up to maxPause, so that a long
// wait does not burn a core the code under test needs. A caller that
// times what it waits for (a benchmark) passes a small maxPause: the
// pause is the resolution of its measurement.
func Poll(ctx context.Context, maxPause time.Duration, cond func() error) error {
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(pause*2, maxPause)
	}
}

// LockedBuffer is a bytes.Buffer safe for concurrent writers, such as a
// child process's stdout and stderr and a logger at once.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len is the number of bytes written so far.
func (l *LockedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// FreeAddr returns a loopback address with a port that is free now, for
// a server a test starts later on a port it must know in advance (to
// restart it on the same one, or to write it into a config).
//
// The port is taken below the kernel's ephemeral range: a port from that
// range (what listening on :0 gives) is also what every outgoing
// connection on the machine takes as its source port, so between this
// call and the server's start another test's connection may hold it, and
// the server fails with "address already in use". Below the range only
// another listener can take it, and the random choice makes two tests
// meeting there unlikely. Ports under 20000 (well-known services, the
// demo's 4222, 4250 and 8943) are never chosen.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// FreeLoopbackAddr is FreeAddr for callers outside a test (benchmark
// harnesses): it returns the failure instead of failing a test.
func FreeLoopbackAddr() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 20000+1000 {
				low = n
			}
		}
	}
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(low-20000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free port between 20000 and %d", low)
}
