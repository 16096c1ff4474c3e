package jobs

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
	"google.golang.org/protobuf/proto"
)

// classifyingDir is a directory whose connector classifies mailboxes
// (connector.MailboxClassifier), as azuread does through Graph.
type classifyingDir struct {
	*dir
	mu          sync.Mutex
	purposes    map[string]string
	unavailable string
	asked       [][]string
}

func (d *classifyingDir) ClassifyMailboxes(_ context.Context, req *connectorv1.ClassifyMailboxesRequest) (*connectorv1.ClassifyMailboxesResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.asked = append(d.asked, slices.Clone(req.GetUserIds()))
	resp := &connectorv1.ClassifyMailboxesResponse{Purposes: map[string]string{}, Unavailable: d.unavailable, Requests: int64(len(req.GetUserIds())+19) / 20}
	if d.unavailable == "" {
		for _, id := range req.GetUserIds() {
			if p, ok := d.purposes[id]; ok {
				resp.Purposes[id] = p
			}
		}
	}
	return resp, nil
}

func (d *classifyingDir) lastAsked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.asked) == 0 {
		return nil
	}
	out := d.asked[len(d.asked)-1]
	d.asked = nil
	return out
}

// Mailboxes are classified only for users that pass the rules of the
// user alone and are new, changed or unclassified; the answers are kept
// through later full reads, and a shared mailbox is skipped as one.
func TestClassifyMailboxes(t *testing.T) {
	disabled := user("u3", "room@contoso.com", "Room 4.12", "")
	disabled.AccountEnabled = proto.Bool(false)
	d := &classifyingDir{dir: &dir{users: []*connectorv1.User{
		user("u1", "ann@contoso.com", "Ann", "Sales"), user("u2", "info@contoso.com", "Info", ""), disabled,
		user("u4", "hybrid@contoso.com", "On-prem mailbox", ""),
	}}, purposes: map[string]string{"u1": "user", "u2": "shared", "u3": "room"}}
	e := startEnvWith(t, d, nil)
	j := e.sync()
	if got := d.lastAsked(); !slices.Equal(got, []string{"u1", "u2", "u4"}) {
		t.Errorf("first sync asked about %v; want u1, u2, u4 (not the disabled u3)", got)
	}
	if rs := e.recipients(); len(rs) != 2 || rs["u1"].Email == "" || rs["u4"].Email == "" {
		t.Errorf("recipients %v; want ann and the user whose mailbox could not be read", rs)
	}
	if s := j.Summary; s.Skipped["shared_mailbox"] != 1 || s.Skipped["disabled"] != 1 {
		t.Errorf("skipped %v; want shared_mailbox 1, disabled 1", s.Skipped)
	}
	var purposes [2]string
	e.proj.View(func(s *projections.State) {
		purposes = [2]string{s.Directories["demo"].Users["u2"].MailboxPurpose, s.Directories["demo"].Users["u4"].MailboxPurpose}
	})
	if purposes != [2]string{"shared", events.MailboxNone} {
		t.Errorf("u2's and u4's mailbox purposes kept as %q; want shared and %s", purposes, events.MailboxNone)
	}

	// A full read again, nothing changed: nobody asked before is asked
	// again, not even u4, whose mailbox could not be read.
	e.sync()
	if got := d.lastAsked(); got != nil {
		t.Errorf("second sync asked about %v; want no one", got)
	}
	// u2 changes: asked again.
	d.dir.mu.Lock()
	d.dir.users[1] = user("u2", "info@contoso.com", "Info desk", "")
	d.dir.mu.Unlock()
	e.sync()
	if got := d.lastAsked(); !slices.Equal(got, []string{"u2"}) {
		t.Errorf("after u2 changed, asked about %v; want u2", got)
	}

	// Without the permission: warned, and the sync completes.
	d.mu.Lock()
	d.unavailable = "the app lacks MailboxSettings.Read; grant it with admin consent"
	d.mu.Unlock()
	d.dir.mu.Lock()
	d.dir.users = append(d.dir.users, user("u5", "new@contoso.com", "New", ""))
	d.dir.mu.Unlock()
	j = e.sync()
	if !slices.ContainsFunc(j.Summary.Warnings, func(w string) bool { return strings.Contains(w, "MailboxSettings.Read") }) {
		t.Errorf("warnings %v; want the missing permission named", j.Summary.Warnings)
	}
	if _, ok := e.recipients()["u5"]; !ok {
		t.Error("the new user is not a recipient when mailboxes cannot be classified")
	}
}

// Users never classified (the permission was missing) are asked about by
// the next incremental sync after it is granted, though the read brings
// none of them: the shared mailbox among them then leaves.
func TestClassifyMailboxesOnceGranted(t *testing.T) {
	d := &classifyingDir{dir: &dir{users: []*connectorv1.User{
		user("u1", "ann@contoso.com", "Ann", "Sales"), user("u2", "info@contoso.com", "Info", ""),
	}}, purposes: map[string]string{"u1": "user", "u2": "shared"}, unavailable: "the app lacks MailboxSettings.Read"}
	e := startEnvWith(t, d, nil)
	if j := e.sync(); len(j.Summary.Warnings) == 0 {
		t.Fatalf("first sync without the permission: no warning (%+v)", j.Summary)
	}
	if rs := e.recipients(); len(rs) != 2 {
		t.Fatalf("recipients %v; want both while mailboxes cannot be classified", rs)
	}
	var purpose string
	e.proj.View(func(s *projections.State) { purpose = s.Directories["demo"].Users["u2"].MailboxPurpose })
	if purpose != events.MailboxUnknown {
		t.Errorf("u2's purpose while the connector cannot say: %q, want %q", purpose, events.MailboxUnknown)
	}
	// Still not granted: asked again, and nothing changes.
	if j := e.sync(); len(j.Summary.Warnings) == 0 || j.Summary.DirectoryEvents != 0 {
		t.Errorf("second sync without the permission: %+v; want a warning and no directory event", j.Summary)
	}
	if got := d.lastAsked(); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Errorf("second sync without the permission asked about %v; want u1 and u2", got)
	}
	d.mu.Lock()
	d.unavailable = ""
	d.mu.Unlock()
	d.dir.mu.Lock()
	d.dir.delta = []*connectorv1.SyncBatch{{}} // an incremental read that brings nothing
	d.dir.mu.Unlock()
	j := e.sync()
	if j.Summary.FullRead {
		t.Fatal("the second sync read everything: the test needs an incremental one")
	}
	if got := d.lastAsked(); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Errorf("after the permission was granted, asked about %v; want u1 and u2", got)
	}
	if r := e.recipients()["u2"]; r.Status != events.RecipientArchived {
		t.Errorf("the shared mailbox's recipient is %q; want archived", r.Status)
	}
	if j.Summary.Skipped["shared_mailbox"] != 1 || len(j.Summary.Warnings) > 0 {
		t.Errorf("summary %+v; want shared_mailbox 1 and no warning", j.Summary)
	}
	e.sync()
	if got := d.lastAsked(); got != nil {
		t.Errorf("the sync after asked about %v; want no one", got)
	}
}
