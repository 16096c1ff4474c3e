package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// update rewrites the golden files from what the commands print now.
var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// jobsAt is when the served jobs were requested: j1 at jobsAt, each next
// one a minute later.
var jobsAt = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// serveJobs serves the API over four finished jobs of connector demo (a
// sync that made every kind of change, a dry run, a FAILED one with a
// long reason, a CANCELED one) and a group with a recipient and a user
// who is none.
func serveJobs(t *testing.T) string {
	t.Helper()
	st := projections.NewState()
	apply := func(at time.Time, typ, subject, job string, data any) {
		t.Helper()
		if _, err := st.Apply(events.New(typ, subject, "demo", job, 0, at, data)); err != nil {
			t.Fatal(err)
		}
	}
	jobs := []struct {
		id, final, reason string
		opts              *events.JobOptions
		sum               *events.Summary
	}{
		{"j1", events.StateCompleted, "", nil, &events.Summary{FullRead: true, RecipientsCreated: 4, RecipientsUpdated: 16,
			RecipientsArchived: 7, RecipientsRestored: 1, RecipientsRemoved: 2}},
		{"j2", events.StateCompleted, "", &events.JobOptions{DryRun: true}, &events.Summary{RecipientsCreated: 3, DryRun: true}},
		{"j3", events.StateFailed, "Microsoft Graph kept failing (503 Service Unavailable), still after 4 attempts over 9m58s. " +
			"Nothing was changed: the next sync starts again from the last good cursor.", nil,
			&events.Summary{GraphRequests: 4, Retries: 3}},
		{"j4", events.StateCanceled, "canceled by the operator", nil, nil},
		{"j5", events.StateCompleted, "", nil, &events.Summary{RecipientsUnchanged: 9}},
	}
	for i, j := range jobs {
		at := jobsAt.Add(time.Duration(i) * time.Minute)
		subject := events.SyncSubject("demo", j.id)
		apply(at, events.TypeSyncState, subject, j.id, events.SyncState{JobID: j.id, Connector: "demo", State: events.StatePending,
			RequestedBy: "cli", Options: j.opts})
		apply(at, events.TypeSyncState, subject, j.id, events.SyncState{JobID: j.id, Connector: "demo", State: j.final,
			RequestedBy: "cli", Reason: j.reason, Summary: j.sum})
	}
	apply(jobsAt, events.TypeUserChanged, events.DirectorySubject("demo", "user", "u1"), "j1",
		events.User{ID: "u1", Mail: "ann@x.com", DisplayName: "Ann"})
	apply(jobsAt, events.TypeUserChanged, events.DirectorySubject("demo", "user", "u2"), "j1",
		events.User{ID: "u2", DisplayName: "Bob"})
	apply(jobsAt, events.TypeGroupChanged, events.DirectorySubject("demo", "group", "g1"), "j1",
		events.Group{ID: "g1", DisplayName: "Sales", Mail: "sales@x.com", GroupTypes: []string{"Unified"}})
	apply(jobsAt, events.TypeGroupMembersChanged, events.DirectorySubject("demo", "group", "g1"), "j1",
		events.MembersChanged{GroupID: "g1", Added: []string{"u1", "u2"}})
	apply(jobsAt, events.TypeRecipientCreated, events.RecipientSubject("demo", "u1"), "j1",
		events.RecipientChange{Recipient: events.Recipient{ID: "demo.u1", Connector: "demo", ObjectID: "u1",
			Email: "ann@x.com", DisplayName: "Ann", Groups: []string{"Sales"}, Status: events.RecipientActive, UpdatedAt: jobsAt}})
	return serveSocket(t, api.NewServer(oneConnector{}, state{st}, zaptest.NewLogger(t)))
}

// What `dirsync jobs`, `groups list` and `groups show` print, exactly
// (long outputs in testdata/*.golden, times in UTC); and the errors
// of `jobs cancel` for a finished job and `connector test` for a
// misspelt connector.
func TestCommandAnswers(t *testing.T) {
	sock := serveJobs(t)
	tests := []struct {
		name   string
		args   []string
		golden string // file under testdata with the exact output
		err    string // exact error
	}{
		{name: "jobs table", args: []string{"jobs"}, golden: "jobs.golden"},
		{name: "groups list", args: []string{"groups", "list"}, golden: "groups_list.golden"},
		{name: "groups show takes the listed ID", args: []string{"groups", "show", "demo.g1"}, golden: "groups_show.golden"},
		{name: "groups show of a bare object ID", args: []string{"groups", "show", "g1"},
			err: `group ID "g1": want <connector>.<groupId>, e.g. demo.7d1e…`},
		{name: "cancel a finished job", args: []string{"jobs", "cancel", "j1"},
			err: "job j1 is already COMPLETED: there is nothing to cancel"},
		{name: "test a misspelt connector", args: []string{"connector", "test", "deom"},
			err: `unknown connector "deom"; did you mean "demo"? (configured in plugins.hcl: demo)`},
		{name: "groups of an unknown connector", args: []string{"groups", "list", "--connector", "nosuch"},
			err: `unknown connector "nosuch" (configured in plugins.hcl: demo)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, append(tt.args, "--socket", sock)...)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v\nwant  %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, out)
		})
	}
}

// checkGolden compares out with testdata/name, where the served jobs'
// times are in UTC: the CLI prints local times, as wide as UTC ones, so
// the columns line up alike in any time zone.
func checkGolden(t *testing.T, name, out string) {
	t.Helper()
	var pairs []string
	for i := range 5 {
		at := jobsAt.Add(time.Duration(i) * time.Minute)
		pairs = append(pairs, fmtTime(&at), at.UTC().Format("2006-01-02 15:04:05"))
	}
	generic := strings.NewReplacer(pairs...).Replace(out)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(generic), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if generic != string(want) {
		t.Errorf("output:\n%s\nwant (%s):\n%s", generic, path, want)
	}
}
