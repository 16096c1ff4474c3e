package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirsync/dirsync/internal/testenv"
)

// The daemon tells systemd (Type=notify) it is ready once everything is
// up, with a status line, and that it is stopping on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	sock, msgs := notifySocket(t)
	f.env = []string{"NOTIFY_SOCKET=" + sock}
	f.start()
	ready, err := awaitNotify(msgs, "READY=1", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ready, "STATUS=demo: never synced") {
		t.Errorf("READY message %q lacks the status line", ready)
	}
	// The API answers once READY was sent.
	if _, _, code := f.cli("status"); code != 0 {
		t.Error("READY=1 sent before the API answers")
	}
	if err := f.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	// The daemon has exited: STOPPING=1 was sent before, and is read
	// at once; the guard only bounds a daemon that never sent it.
	if _, err := awaitNotify(msgs, "STOPPING=1", 30*time.Second); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// deploy/dirsyncd.service passes systemd-analyze verify without a word.
func TestUnitFileVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	bin := binaries(t)
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(filepath.Dir(strings.TrimSpace(string(root))), "deploy", "dirsyncd.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart exists: point it at the built binary.
	text := strings.Replace(string(unit), "/usr/local/bin/dirsyncd", filepath.Join(bin, "dirsyncd"), 1)
	path := filepath.Join(t.TempDir(), "dirsyncd.service")
	write(t, path, text, 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// SIGHUP reloads plugins.hcl: a new connector appears; a broken file is
// logged and the configuration in force stays.
func TestReloadOnSIGHUP(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	orig, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	// A third connector: a copy of the last block under a new name.
	wrongBlock := string(orig[strings.Index(string(orig), `connector "wrong" {`):])
	added := string(orig) + strings.Replace(wrongBlock, `connector "wrong" {`, `connector "third" {`, 1)
	write(t, f.config, added, 0o644)
	// Through the socket directly: a broken plugins.hcl also stops the CLI
	// from finding the daemon, which is the point of the second half.
	connectors := func() []string {
		st, err := f.api().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range st.Connectors {
			names = append(names, c.Connector)
		}
		return names
	}
	if err := f.daemon.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if got := connectors(); !slices.Contains(got, "third") {
			return fmt.Errorf("connector third did not appear after SIGHUP: %v\n%s", got, f.log.String())
		}
		return nil
	})
	var j jobJSON
	f.cliJSON(&j, "sync", "demo", "--wait")
	if j.State != "COMPLETED" {
		t.Fatalf("sync after reload: %s %s", j.State, j.Reason)
	}

	write(t, f.config, added+"\nconnector \"broken\" {\n", 0o644)
	if err := f.daemon.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if !strings.Contains(f.log.String(), "reloading plugins.hcl failed") {
			return fmt.Errorf("no log line about the failed reload:\n%s", f.log.String())
		}
		return nil
	})
	if got := connectors(); !slices.Equal(got, []string{"demo", "third", "wrong"}) {
		t.Errorf("after a broken reload the connectors are %v", got)
	}
	// The CLI cannot read the broken file, says so, and --socket still works.
	if _, errOut, code := f.cli("status"); code == 0 || !strings.Contains(errOut, "--socket") {
		t.Errorf("status with a broken plugins.hcl: exit %d, %q", code, errOut)
	}
	if out, errOut, code := f.cli("--socket", filepath.Join(f.dir, "data", "dirsyncd.sock"), "status"); code != 0 {
		t.Errorf("status --socket: exit %d, %s%s", code, out, errOut)
	}
	if err := f.stop(); err != nil {
		t.Fatalf("SIGTERM after reloads: %v", err)
	}
}
