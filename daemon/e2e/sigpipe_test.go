package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirsync/dirsync/internal/testenv"
)

// TestClosedLogPipe: `make run 2>&1 | tee run.log`, then Ctrl-C, stops
// tee first. The daemon's log pipe is then closed while it still runs
// and stops: it must not die of SIGPIPE (exit 141) at its next log line.
// It goes on serving (a sync completes), SIGTERM stops it with exit 0,
// and the next start finds its stores as it left them: the read-model
// checkpoint of the stop leaves nothing to replay or rewrite, nats-server
// warns of no recovery, and the daemon does
// not report an unclean stop (TestUncleanStopIsReported shows it would).
func TestClosedLogPipe(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(f.bin, "dirsyncd"), "--config", f.config, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close() // the daemon holds the only write end
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	before := &testenv.LockedBuffer{}
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(before, r)
		close(copied)
	}()
	testenv.Eventually(t, 60*time.Second, func() error {
		if !strings.Contains(before.String(), `"msg":"dirsyncd ready"`) {
			return fmt.Errorf("dirsyncd not ready:\n%s", before.String())
		}
		return nil
	})
	_ = r.Close() // tee is gone
	<-copied

	// Every job state is logged: the daemon writes to the closed pipe.
	if out, errOut, code := f.cli("sync", "demo", "--wait"); code != 0 {
		t.Fatalf("sync with the log pipe closed: exit %d\n%s%s", code, out, errOut)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("dirsyncd with its log pipe closed ended with %v; want exit 0", ee.ProcessState)
		}
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dirsyncd did not stop within 60s of SIGTERM")
	}

	f.start()
	if _, errOut, code := f.cli("sync", "demo", "--wait"); code != 0 {
		t.Fatalf("sync after the restart: %s", errOut)
	}
	// The stop, though it could not log, ended cleanly: it wrote the
	// read-model checkpoint of everything, so the restart loads it and
	// replays nothing.
	loaded := false
	for _, line := range strings.Split(f.log.String(), "\n") {
		var e struct {
			Level  string  `json:"level"`
			Logger string  `json:"logger"`
			Msg    string  `json:"msg"`
			Tail   *uint64 `json:"tail"`
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if e.Msg == "read models loaded from the checkpoint" {
			loaded = true
			if e.Tail == nil || *e.Tail != 0 {
				t.Errorf("the restart replayed events after the checkpoint of the clean stop: %s", line)
			}
		}
		if e.Msg == "read models reconciled" {
			t.Errorf("the restart compared every read model: no checkpoint of the clean stop? %s", line)
		}
		if e.Logger == "nats" && (e.Level == "warn" || e.Level == "error") {
			t.Errorf("nats-server at the restart: %s", line)
		}
	}
	if !loaded {
		t.Errorf("the restart did not load a read-model checkpoint:\n%s", f.log.String())
	}
	// The daemon's own account of the last run: a death by SIGPIPE left
	// its run marker, and this start would warn of an unclean stop.
	if !strings.Contains(f.log.String(), `"msg":"dirsyncd ready"`) || countUncleanStop(f.log.String()) != 0 {
		t.Errorf("the restart is not a clean start after a clean stop:\n%s", f.log.String())
	}
}
