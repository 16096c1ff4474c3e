// Package testenv is the one test kit every dirsync package shares: a
// polling helper with a deadline, a buffer safe for concurrent writers,
// and the real parts tests start (a JetStream server, read models, a
// daemon). A test waits on a condition, never on a sleep, and never
// asserts on a measured duration: a slower machine takes longer, not
// differently.
package testenv

import (
	"bytes"
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
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
		// Start fast for conditions that hold almost at once, then back
		// off so a long wait does not burn a core the code under test needs.
		pause = min(pause*2, 100*time.Millisecond)
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
