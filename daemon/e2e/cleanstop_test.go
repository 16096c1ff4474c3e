package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/internal/testenv"
)

// uncleanStop is the start of the warning dirsyncd logs when the last run
// on its data directory ended without stopping (killed, crashed, dead of
// a signal such as SIGPIPE).
const uncleanStop = "the last run on this data directory did not stop cleanly"

// TestUncleanStopIsReported: a daemon killed (SIGKILL: what SIGPIPE did
// to a daemon logging into a closed pipe) is reported at the next start,
// with when that run began; a daemon stopped with SIGTERM is not. This
// is the marker TestClosedLogPipe looks for.
func TestUncleanStopIsReported(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	marker := filepath.Join(f.dir, "data", "dirsyncd.running")
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, err := os.Stat(marker); err != nil {
			return fmt.Errorf("the ready daemon wrote no run marker: %w", err)
		}
		return nil
	})
	if err := f.daemon.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-f.daemon.Done()
	f.daemon = nil

	off := f.log.Len()
	f.start()
	restart := f.log.String()[off:]
	if n := countUncleanStop(restart); n != 1 {
		t.Errorf("after a kill, the start logs %d unclean-stop warnings; want 1:\n%s", n, restart)
	}
	if !strings.Contains(restart, `"last_run":"pid `) {
		t.Errorf("the warning does not say which run:\n%s", restart)
	}
	if err := f.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("a clean stop left the run marker: %v", err)
	}

	off = f.log.Len()
	f.start()
	if restart := f.log.String()[off:]; countUncleanStop(restart) != 0 {
		t.Errorf("after a clean stop, the start warns of an unclean one:\n%s", restart)
	}
}

// countUncleanStop counts the warnings of an unclean stop in a JSON log.
func countUncleanStop(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, uncleanStop) {
			n++
		}
	}
	return n
}
