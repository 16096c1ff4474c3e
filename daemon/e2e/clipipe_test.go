package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIReaderGone: `dirsync recipients list | head` where head has
// already left. The CLI ends quietly with status 0: no death by SIGPIPE
// (status 141 under `set -o pipefail`), no "broken pipe" on stderr, in
// table and JSON output alike.
func TestCLIReaderGone(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	if _, errOut, code := f.cli("sync", "demo", "--wait"); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"recipients", "list"}, {"recipients", "list", "-o", "json"}} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Close() // the reader is gone before the first line
		cmd := exec.Command(filepath.Join(f.bin, "dirsync"), append([]string{"--config", f.config}, args...)...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = w, &stderr
		err = cmd.Run()
		_ = w.Close()
		name := strings.Join(args, " ")
		if err != nil {
			t.Errorf("dirsync %s into a closed pipe: %v; want exit 0", name, err)
		}
		if stderr.Len() != 0 {
			t.Errorf("dirsync %s into a closed pipe wrote to stderr:\n%s", name, stderr.String())
		}
	}
}
