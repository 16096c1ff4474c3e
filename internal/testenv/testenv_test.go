package testenv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Poll returns nil once the condition holds, and the condition's last
// error (not the context's) once the context is done.
func TestPoll(t *testing.T) {
	tests := []struct {
		name    string
		holdsAt int // the call from which cond returns nil; 0: never
		want    string
	}{
		{"at once", 1, ""},
		{"after a few calls", 5, ""},
		{"never", 0, "call "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			cond := func() error {
				calls++
				if tt.holdsAt > 0 && calls >= tt.holdsAt {
					return nil
				}
				return fmt.Errorf("call %d", calls)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.holdsAt == 0 {
				cancel() // the deadline has passed: one call, then its error
			}
			defer cancel()
			err := Poll(ctx, time.Millisecond, cond)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err %v after %d calls", err, calls)
			case tt.want != "" && (err == nil || errors.Is(err, context.Canceled)):
				t.Fatalf("err %v; want the condition's last error", err)
			case tt.holdsAt > 0 && calls != tt.holdsAt:
				t.Errorf("%d calls; want %d", calls, tt.holdsAt)
			}
		})
	}
}

// LockedBuffer keeps every write of concurrent writers whole.
func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("0123456789"))
			}
		}()
	}
	wg.Wait()
	if b.Len() != 8*100*10 || len(b.String()) != b.Len() {
		t.Fatalf("%d bytes; want 8000", b.Len())
	}
}

// A NATSServer comes back on the same URL with its store after Stop.
func TestNATSServerRestart(t *testing.T) {
	ns := StartNATS(t, "testenv")
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ns.Stop()
	ns.Stop() // again: a no-op
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 30*time.Second, func() error {
		if !nc.IsConnected() {
			return fmt.Errorf("the client did not reconnect to %s: %s", ns.URL(), nc.Status())
		}
		return nil
	})
}
