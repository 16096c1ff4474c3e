package e2e

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRun runs scripts/run.sh, what `make run` runs after building,
// as a newcomer would on a fresh checkout: the repository's plugins.hcl,
// graphsim and dirsyncd on their default ports, and the first sync of the
// demo connector must complete. The tenant is then churned and synced,
// and `make run` run again: graphsim serves the tenant as the first run
// left it, churn included, so the demo says it goes on where it stopped
// and its sync changes no recipient (a regenerated tenant would archive
// and restore dozens). A ./data without a saved tenant (an older
// checkout) is moved aside, and the screen says so.
func TestMakeRun(t *testing.T) {
	bin := binaries(t)
	root := repoRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(root, "scripts", "run.sh"), filepath.Join(dir, "scripts", "run.sh"), 0o755)
	copyFile(t, filepath.Join(root, "plugins.hcl"), filepath.Join(dir, "plugins.hcl"), 0o644)
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"dirsyncd", "dirsync", "dirsync-azuread", "graphsim"} {
		if err := os.Symlink(filepath.Join(bin, b), filepath.Join(dir, "bin", b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []string{"fresh checkout", "second run", "older checkout's data"} {
		if run == "older checkout's data" {
			// What an older graphsim left: a ./data, but no saved tenant.
			if err := os.Remove(filepath.Join(dir, "data", "graphsim", "tenant.json")); err != nil {
				t.Fatal(err)
			}
		}
		// As a newcomer's shell runs it: the usual umask, not the daemon's.
		cmd := exec.Command("bash", "-c", "umask 022 && exec bash scripts/run.sh")
		cmd.Dir = dir
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var log strings.Builder
		completed := false
		lines := bufio.NewScanner(out)
		deadline := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		for lines.Scan() {
			log.WriteString(lines.Text() + "\n")
			if strings.HasPrefix(lines.Text(), "sync ") && strings.HasSuffix(lines.Text(), ": COMPLETED") {
				completed = true
			}
			if strings.Contains(lines.Text(), "dirsyncd is running") {
				break
			}
		}
		deadline.Stop()
		screen := log.String()
		switch run {
		case "fresh checkout":
			if !strings.Contains(screen, ">> fresh demo: a new simulated tenant") {
				t.Errorf("%s: the screen does not say the demo is fresh:\n%s", run, screen)
			}
			assertMakeRunAPI(t, dir, screen)
			// An admin plays with the tenant: hires, leavers, moves.
			g := []string{"-ca-file", "data/graphsim/ca.pem", "-client-secret-file", "data/graphsim/client-secret"}
			for _, c := range [][]string{append([]string{"bin/graphsim", "churn", "-n", "40", "-seed", "3"}, g...), {"bin/dirsync", "sync", "demo", "--wait"}} {
				sub := exec.Command(c[0], c[1:]...)
				sub.Dir = dir
				if b, err := sub.CombinedOutput(); err != nil {
					t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, b)
				}
			}
		case "second run":
			if !strings.Contains(screen, ">> the demo goes on where the last run stopped") {
				t.Errorf("%s: the screen does not say the demo goes on:\n%s", run, screen)
			}
			if !strings.Contains(screen, "recipients: 0 created, 0 updated, 0 archived, 0 restored, 0 deleted") {
				t.Errorf("%s: the sync changed recipients that never changed in the tenant:\n%s", run, screen)
			}
		case "older checkout's data":
			if !strings.Contains(screen, "holds no saved simulated tenant") || !strings.Contains(screen, "is now ./data.prev-") {
				t.Errorf("%s: the screen does not say what became of the earlier data:\n%s", run, screen)
			}
			if !strings.Contains(screen, " 0 archived, 0 restored, 0 deleted") {
				t.Errorf("%s: the first sync archived or restored users that never changed:\n%s", run, screen)
			}
		}
		// Ctrl-C: the script stops graphsim and dirsyncd.
		_ = cmd.Process.Signal(syscall.SIGINT)
		go func() {
			for lines.Scan() {
			}
		}()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s: run.sh did not stop within 40s of Ctrl-C", run)
		}
		if !completed {
			t.Fatalf("%s: make run's first sync did not complete:\n%s", run, log.String())
		}
	}
}

// repoRoot is the module's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, string(b), mode)
}

// assertMakeRunAPI checks what make run says of the web console: the
// token it wrote is owner-only and never on the screen, and the api
// listener of plugins.hcl takes it.
func assertMakeRunAPI(t *testing.T, dir, screen string) {
	t.Helper()
	path := filepath.Join(dir, "data", "api-token")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("make run wrote no api token: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("data/api-token has mode %04o; want 0600", st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 32 || strings.Contains(screen, token) {
		t.Errorf("the api token is %d characters or shown on the screen:\n%s", len(token), screen)
	}
	if !strings.Contains(screen, "http://127.0.0.1:8470/console/") {
		t.Errorf("the screen does not say where the web console is:\n%s", screen)
	}
	resp, err := http.Get("http://127.0.0.1:8470/console/login")
	if err != nil {
		t.Fatalf("make run's web console: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /console/login: %d; want the login page", resp.StatusCode)
	}
	for _, tt := range []struct {
		bearer string
		code   int
	}{{"", http.StatusUnauthorized}, {token, http.StatusOK}} {
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:8470/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tt.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("make run's api listener: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("GET /v1/status with token %v: %d; want %d", tt.bearer != "", resp.StatusCode, tt.code)
		}
	}
}
