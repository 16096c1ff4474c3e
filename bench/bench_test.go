package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binaries builds the daemon and the connector once for the test.
func binaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./daemon/cmd/dirsyncd", "./daemon/cmd/dirsync", "./connectors/cmd/dirsync-azuread")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// Every scenario runs at a tiny size and yields rows with a value, so
// the benchmark code cannot rot between full runs.
func TestScenariosTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			env := &Env{Bin: bin, Dir: t.TempDir(), Log: testWriter{t}, Command: "test"}
			rows, err := sc.Run(ctx, env, Tiny())
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				t.Fatal("no rows")
			}
			for _, r := range rows {
				if r.Value <= 0 || r.Unit == "" || r.Metric == "" || r.Target == "" {
					t.Errorf("incomplete row: %+v", r)
				}
			}
			t.Log("\n" + Table(rows))
		})
	}
	if len(Scenarios()) != 6 {
		t.Errorf("%d scenarios; the issue has 6", len(Scenarios()))
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
