package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/internal/testenv"
)

// TestOutageVisible: with Graph down and the default retry_budget (10m),
// the outage shows while it lasts, not only in the reason of a job that
// fails ten minutes later: `sync --wait` prints each retry wave (what
// failed, the next attempt, the budget left), the plugin logs it at warn
// level with the status, the wait and the budget left, and the daemon
// names the job. When Graph comes back, the same job completes and counts
// its retries.
func TestOutageVisible(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{})
	f.start()
	f.sim.SetFaults(graphsim.Faults{Down: true, RetryAfter: "1"})

	out := &testenv.LockedBuffer{}
	cmd := exec.Command(filepath.Join(f.bin, "dirsync"), "--config", f.config, "sync", "demo", "--wait")
	cmd.Stdout, cmd.Stderr = out, out // not a terminal: plain lines
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	wave := regexp.MustCompile(`(?m)^ {11}retrying: Graph answered 503 Service Unavailable \(attempt (\d+)\); next attempt in 1s; (\d+m\d+s) of the retry budget left, then the job fails$`)
	testenv.Eventually(t, 60*time.Second, func() error {
		if waves := wave.FindAllStringSubmatch(out.String(), -1); len(waves) < 2 {
			return fmt.Errorf("sync --wait printed %d retry waves; want 2:\n%s", len(waves), out.String())
		}
		return nil
	})
	for _, w := range wave.FindAllStringSubmatch(out.String(), -1) {
		left, err := time.ParseDuration(w[2])
		if err != nil || left <= 9*time.Minute || left > 10*time.Minute {
			t.Errorf("budget left %q of the default 10m, after a few seconds", w[2])
		}
	}

	log := f.log.String()
	plugin := regexp.MustCompile(`Graph answered 503 Service Unavailable; retrying in 1s \(attempt 1; \d+m\d+s of retry_budget 10m0s left\)`)
	if !plugin.MatchString(log) {
		t.Errorf("the plugin logged no retry wave:\n%s", log)
	}
	var daemonLine string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"msg":"the connector is retrying its directory"`) {
			daemonLine = line
			break
		}
	}
	for _, want := range []string{`"level":"warn"`, `"connector":"demo"`, `"job":"`, `"cause":"Graph answered 503 Service Unavailable"`, `"wait":1`, `"budgetLeft":`} {
		if !strings.Contains(daemonLine, want) {
			t.Errorf("the daemon's retry line %q lacks %s", daemonLine, want)
		}
	}

	f.sim.SetFaults(graphsim.Faults{})
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("sync --wait after Graph came back: %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("the sync did not end within 2 minutes of Graph coming back:\n%s", out.String())
	}
	if !strings.Contains(out.String(), ": COMPLETED") {
		t.Errorf("the job did not complete:\n%s", out.String())
	}
	retried := regexp.MustCompile(`directory requests \((\d+) retried`).FindStringSubmatch(out.String())
	if retried == nil {
		t.Fatalf("no summary line with the retries:\n%s", out.String())
	}
	if n, _ := strconv.Atoi(retried[1]); n < 2 {
		t.Errorf("the summary counts %v retries; want at least 2:\n%s", retried, out.String())
	}
}
