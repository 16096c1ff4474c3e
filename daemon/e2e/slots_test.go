package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// TestConcurrentConnectionTests: 60 connection tests at once (an admin
// clicking "test connection" in a loop, or a script gone wrong) never run
// more than jobs.PluginSlots plugin processes; the others wait for a slot
// or are refused as busy (429 with Retry-After over HTTP), and the daemon
// then syncs as ever with no plugin process left behind.
func TestConcurrentConnectionTests(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	// Slow Graph: each test holds its plugin a while.
	f.sim.SetFaults(graphsim.Faults{Latency: 300 * time.Millisecond})
	pid := f.daemon.Cmd.Process.Pid

	var peak int
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if n := children(pid); n > peak {
				peak = n
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	const n = 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, busy := 0, 0
	var other []string
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.api().Test(context.Background(), "demo")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && res.OK:
				ok++
			case err != nil && strings.Contains(err.Error(), "process slots"):
				busy++
			default:
				other = append(other, fmt.Sprintf("%+v %v", res, err))
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watched
	if peak > jobs.PluginSlots {
		t.Errorf("%d plugin processes ran at once; want at most %d", peak, jobs.PluginSlots)
	}
	if ok < jobs.PluginSlots || ok+busy != n || len(other) > 0 {
		t.Errorf("%d tests passed, %d refused as busy, %d otherwise: %v", ok, busy, len(other), other)
	}
	t.Logf("%d connection tests: %d passed, %d refused as busy; at most %d plugin processes at once", n, ok, busy, peak)

	f.sim.SetFaults(graphsim.Faults{})
	if j := f.syncJob(); j.State != events.StateCompleted {
		t.Fatalf("sync after the connection tests: %s %s", j.State, j.Reason)
	}
	// The sync's plugin is stopped after its job is recorded COMPLETED:
	// wait for it to go, then nothing of the tests may be left.
	testenv.Eventually(t, 30*time.Second, func() error {
		if left := children(pid); left != 0 {
			return fmt.Errorf("%d plugin processes left after the tests and the sync", left)
		}
		return nil
	})
	report(t, faultRow{Case: "plugin/60-connection-tests", Seed: "-", Fault: fmt.Sprintf("%d concurrent connection tests, Graph answering in 300 ms", n),
		AtFault: fmt.Sprintf("%d passed, %d busy, peak %d processes", ok, busy, peak)})
	assertConvergedLog(t, f)
}

// children counts the processes whose parent is pid.
func children(pid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				n++
			}
		}
	}
	return n
}
