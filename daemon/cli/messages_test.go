package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// oneConnector is an api.JobRunner with connector demo, whose requests
// all name job j1 (left RETRIEVING in the read models).
type oneConnector struct{}

func (oneConnector) Connectors() []string                  { return []string{"demo"} }
func (oneConnector) Progress(string) (jobs.Progress, bool) { return jobs.Progress{}, false }
func (oneConnector) Request(_ context.Context, name string, _ jobs.Request) (string, error) {
	if name != "demo" {
		return "", fmt.Errorf("%w %q", jobs.ErrUnknownConnector, name) // as jobs.Runner says it
	}
	return "j1", nil
}
func (oneConnector) Cancel(_ context.Context, id string) error { return jobs.ErrUnknownJob }
func (oneConnector) DryRunChanges(context.Context, string) ([]projections.Change, bool, error) {
	return nil, false, nil
}
func (oneConnector) TestConnection(context.Context, string) (*connectorv1.TestConnectionResponse, error) {
	return nil, jobs.ErrUnknownConnector
}

// serveRunning serves the API over a job j1 of demo that is RETRIEVING,
// and calls onPoll at each poll of it.
func serveRunning(t *testing.T, onPoll func()) string {
	t.Helper()
	st := projections.NewState()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{events.StatePending, events.StateStarted, events.StateRetrieving} {
		if _, err := st.Apply(events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, at,
			events.SyncState{JobID: "j1", Connector: "demo", State: s})); err != nil {
			t.Fatal(err)
		}
	}
	h := api.NewServer(oneConnector{}, state{st}, zaptest.NewLogger(t))
	return serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/jobs/j1" && onPoll != nil {
			onPoll()
		}
		h.ServeHTTP(w, r)
	}))
}

// The messages an operator meets, exactly: each says what is wrong and
// what to do.
func TestOperatorMessages(t *testing.T) {
	sock := serveRunning(t, nil)
	missing := filepath.Join(t.TempDir(), "plugins.hcl")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown connector, close to one", []string{"--socket", sock, "sync", "dmeo"},
			`unknown connector "dmeo"; did you mean "demo"? (configured in plugins.hcl: demo)`},
		{"recipients of an unknown connector", []string{"--socket", sock, "recipients", "list", "--connector", "nosuch"},
			`unknown connector "nosuch" (configured in plugins.hcl: demo)`},
		{"missing argument", []string{"--socket", sock, "sync"},
			`missing <connector>: dirsync sync <connector> (see dirsync sync --help)`},
		{"missing sync ID", []string{"--socket", sock, "jobs", "show"},
			`missing <sync-id>: dirsync jobs show <sync-id> (see dirsync jobs show --help)`},
		{"too many arguments", []string{"--socket", sock, "connector", "test", "a", "b"},
			`dirsync connector test takes one <connector>, got 2 arguments: a b`},
		{"missing config file", []string{"--config", missing, "status"},
			`no plugins.hcl at ` + missing + `: dirsync finds the daemon through the daemon's plugins.hcl; point --config at it (e.g. dirsync --config /etc/dirsync/plugins.hcl status), or pass --socket DATA_DIR/dirsyncd.sock`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant  %s", err, tt.want)
			}
		})
	}
}

// Ctrl-C in `sync --wait` stops the following, not the job, and says how
// to follow it further.
func TestInterruptedWait(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sock := serveRunning(t, cancel) // the first poll is "Ctrl-C"
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs([]string{"--socket", sock, "sync", "demo", "--wait"})
	err := cmd.ExecuteContext(ctx)
	want := "stopped following sync j1; the job goes on in dirsyncd. Follow it with: dirsync jobs show j1 (or stop it with: dirsync jobs cancel j1)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	if strings.Contains(out.String()+errOut.String(), "context canceled") {
		t.Errorf("output speaks of a context: %s%s", out.String(), errOut.String())
	}
}

// The top-level help shows examples.
func TestHelpHasExamples(t *testing.T) {
	out, err := run(t, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Examples:", "dirsync sync demo --wait", "dirsync --config /etc/dirsync/plugins.hcl status"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
}
