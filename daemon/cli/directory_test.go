package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
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

// state is a projections.State behind the api.ReadModels interface.
type state struct{ st *projections.State }

func (s state) View(fn func(*projections.State)) { fn(s.st) }

// JobChanges and History find nothing: these tests keep no event stream.
func (s state) JobChanges(context.Context, string) ([]projections.Change, error) { return nil, nil }

func (s state) History(context.Context, string) ([]events.Recipient, map[string][]projections.Change, error) {
	return nil, nil, nil
}

// idle is an api.JobRunner with no connectors.
type idle struct{}

func (idle) Connectors() []string                  { return nil }
func (idle) Progress(string) (jobs.Progress, bool) { return jobs.Progress{}, false }
func (idle) Request(context.Context, string, jobs.Request) (string, error) {
	return "", jobs.ErrUnknownConnector
}
func (idle) Cancel(context.Context, string) error { return jobs.ErrUnknownJob }
func (idle) DryRunChanges(context.Context, string) ([]projections.Change, bool, error) {
	return nil, false, nil
}
func (idle) TestConnection(context.Context, string) (*connectorv1.TestConnectionResponse, error) {
	return nil, jobs.ErrUnknownConnector
}

// serve starts the API on a unix socket over a state with two users, one
// of them a recipient, in one group, and returns the socket.
func serve(t *testing.T) string {
	t.Helper()
	st := projections.NewState()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	apply := func(typ, subject string, data any) {
		if _, err := st.Apply(events.New(typ, subject, "demo", "j1", 0, at, data)); err != nil {
			t.Fatal(err)
		}
	}
	apply(events.TypeUserChanged, events.DirectorySubject("demo", "user", "u1"), events.User{ID: "u1", Mail: "ann@x.com", DisplayName: "Ann"})
	apply(events.TypeUserChanged, events.DirectorySubject("demo", "user", "u2"), events.User{ID: "u2", DisplayName: "Bob"})
	apply(events.TypeGroupChanged, events.DirectorySubject("demo", "group", "g1"), events.Group{ID: "g1", DisplayName: "Sales"})
	apply(events.TypeGroupMembersChanged, events.DirectorySubject("demo", "group", "g1"), events.MembersChanged{GroupID: "g1", Added: []string{"u1", "u2"}})
	apply(events.TypeRecipientCreated, events.RecipientSubject("demo", "u1"), events.RecipientChange{Recipient: events.Recipient{
		ID: "demo.u1", Connector: "demo", ObjectID: "u1", Email: "ann@x.com", DisplayName: "=cmd()", Groups: []string{"Sales"},
		Status: events.RecipientActive, UpdatedAt: at}})

	return serveSocket(t, api.NewServer(idle{}, state{st}, zaptest.NewLogger(t)))
}

// serveSocket serves h on a unix socket (in a short temporary path: a
// socket path is limited to about 100 bytes) and returns the socket.
func serveSocket(t *testing.T, h http.Handler) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dscli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDirectoryCommands(t *testing.T) {
	sock := serve(t)
	file := filepath.Join(t.TempDir(), "out.csv")
	tests := []struct {
		name     string
		args     []string
		contains []string
		err      string
	}{
		{name: "list shows IDs", args: []string{"recipients", "list"}, contains: []string{"ann@x.com", "demo.u1", "1 recipients"}},
		{name: "get", args: []string{"recipients", "get", "demo.u1"}, contains: []string{"Email:", "ann@x.com", "Sales"}},
		{name: "get json", args: []string{"recipients", "get", "demo.u1", "-o", "json"}, contains: []string{`"id": "demo.u1"`}},
		{name: "get absent", args: []string{"recipients", "get", "demo.u9"}, err: `no recipient with ID "demo.u9"`},
		{name: "export csv", args: []string{"recipients", "export"}, contains: []string{"id,connector,objectId,email", "'=cmd()"}},
		{name: "export json", args: []string{"recipients", "export", "-o", "json"}, contains: []string{`"id":"demo.u1"`}},
		{name: "export filtered", args: []string{"recipients", "export", "--status", "archived"}, contains: []string{"id,connector"}},
		{name: "export bad format", args: []string{"recipients", "export", "--format", "xls"}, err: "--format"},
		{name: "export to a file", args: []string{"recipients", "export", "--file", file}},
		{name: "groups list", args: []string{"groups", "list"}, contains: []string{"demo.g1", "Sales", "1 groups"}},
		{name: "groups list json", args: []string{"groups", "list", "--connector", "demo", "-o", "json"}, contains: []string{`"displayName": "Sales"`}},
		{name: "groups show", args: []string{"groups", "show", "demo.g1"}, contains: []string{"ann@x.com", "demo.u1", "Bob", "not a recipient"}},
		{name: "groups show json", args: []string{"groups", "show", "demo.g1", "-o", "json"}, contains: []string{`"memberList"`}},
		{name: "groups show absent", args: []string{"groups", "show", "demo.g9"}, err: "demo.g9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append(tt.args, "--socket", sock)...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
		})
	}

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode %v, want 0600", fi.Mode().Perm())
	}
	f, _ := os.Open(file)
	defer f.Close()
	if rows, err := csv.NewReader(f).ReadAll(); err != nil || len(rows) != 2 || rows[1][0] != "demo.u1" {
		t.Errorf("export file: %q, %v", rows, err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*.tmp")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestExportFailureLeavesNoFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.json")
	err := writeFileAtomic(file, func(w io.Writer) error {
		_, _ = w.Write([]byte("[half"))
		return errors.New("connection reset")
	})
	if err == nil {
		t.Fatal("no error")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*")); len(m) != 0 {
		t.Errorf("files left: %v", m)
	}
}
