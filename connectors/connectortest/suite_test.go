package connectortest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
)

const (
	fakeSecret  = "fake-Secret-0123456789"
	wrongSecret = "wrong-Secret-9876543210"
)

// fakeHarness serves a fresh fake directory of 300 users (three batches).
func fakeHarness(brk string) (Harness, Features) {
	f := NewFake(fakeSecret, 300)
	f.Break = brk
	return Harness{
		New:              func() connector.Connector { return f },
		Config:           f.Config(fakeSecret),
		Secrets:          []string{fakeSecret, wrongSecret},
		WrongSecret:      f.Config(wrongSecret),
		Change:           f.Change,
		InvalidateCursor: f.InvalidateCursor,
		ForceRestart:     f.ForceRestart,
	}, Features{Incremental: true, Restart: true, Groups: true, MultiBatch: true}
}

func TestFakePasses(t *testing.T) {
	h, f := fakeHarness("")
	Run(t, h, f)
}

// recorder is a T that keeps failures instead of failing the test, so
// that a broken connector can be seen to fail the suite.
type recorder struct {
	mu       sync.Mutex
	failures []string
	skipped  bool
}

func (r *recorder) Helper()             {}
func (r *recorder) Logf(string, ...any) {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skipf(string, ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

// runCheck runs c on its own goroutine, as testing does, so that Fatalf
// and Skipf end only the check.
func runCheck(c Check, h *Harness, f Features) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(r, h, f)
	}()
	<-done
	return r
}

// Each deliberately broken fake fails the check that guards the rule it
// breaks, and a sound fake passes all of them.
func TestBrokenFakesFail(t *testing.T) {
	caughtBy := map[string]string{
		BreakAfterFinal:     "FullRead",
		BreakRemovedInFull:  "FullRead",
		BreakOversized:      "FullRead",
		BreakIgnoresCursor:  "CursorRoundTrip",
		BreakLeaksSecret:    "SecretsStayOut",
		BreakIgnoresCancel:  "CancelStops",
		BreakNoResyncReason: "InvalidCursorRereads",
		BreakNoNeutral:      "FullRead",
		BreakSwallowsSend:   "SendErrorStops",
		BreakFullRestart:    "RestartStartsOver",
	}
	for _, brk := range Breakages() {
		t.Run(brk, func(t *testing.T) {
			want, ok := caughtBy[brk]
			if !ok {
				t.Fatalf("no check named for breakage %s", brk)
			}
			h, f := fakeHarness(brk)
			var failed []string
			for _, c := range Checks() {
				if r := runCheck(c, &h, f); len(r.failures) > 0 {
					failed = append(failed, c.Name)
					if c.Name == want {
						t.Logf("%s: %s", c.Name, strings.Join(r.failures, "; "))
					}
				}
			}
			if !strings.Contains(" "+strings.Join(failed, " ")+" ", " "+want+" ") {
				t.Errorf("the fake that breaks %s failed %v; want %s among them", brk, failed, want)
			}
		})
	}
}
