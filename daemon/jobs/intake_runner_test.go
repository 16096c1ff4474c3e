package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/safetext"
	"github.com/dirsync/dirsync/projections"
)

// script sends fixed batches whatever the request, then returns err.
type script struct {
	dir
	batches []*connectorv1.SyncBatch
	err     error
}

func (s *script) Sync(_ context.Context, _ *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	for _, b := range s.batches {
		if err := send(b); err != nil {
			return err
		}
	}
	return s.err
}

// usePlugin makes the env's connector run c, as plugin "fake".
func (e *env) usePlugin(c connector.Connector) {
	e.runner.mu.Lock()
	spec := e.runner.specs["demo"]
	spec.Plugin = "fake"
	e.runner.specs["demo"] = spec
	e.runner.launch = func(context.Context, string, ...zap.Field) (connector.Connector, func(), error) {
		return c, func() {}, nil
	}
	e.runner.mu.Unlock()
}

// storedEvents returns every stored event from sequence from on, as
// stored (the bytes downstream consumers read).
func (e *env) storedEvents(from uint64) [][]byte {
	e.t.Helper()
	ctx := context.Background()
	s, err := e.b.JS.Stream(ctx, store.StreamName)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out [][]byte
	for seq := max(from, 1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			e.t.Fatalf("event %d: %v", seq, err)
		}
		out = append(out, m.Data)
	}
	return out
}

func (e *env) lastSeq() uint64 {
	e.t.Helper()
	seq, err := e.st.LastSeq(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// hostileIn reports what in a stored event a downstream service could be
// fooled by: a control or bidi character, invalid UTF-8, a header, an
// angle bracket, an overlong directory value.
func hostileIn(raw []byte) []string {
	var found []string
	if !utf8.Valid(raw) {
		found = append(found, "invalid UTF-8")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return append(found, err.Error())
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(path+"/"+k, c)
				walk(path+"/"+k+"(key)", k)
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s/%d", path, i), c)
			}
		case string:
			if strings.ContainsFunc(x, safetext.Breaks) || strings.ContainsRune(x, utf8.RuneError) && !strings.Contains(path, "givenName") {
				found = append(found, fmt.Sprintf("%s = %q", path, x))
			}
			if strings.Contains(x, "Bcc:") || strings.Contains(x, "<") {
				found = append(found, fmt.Sprintf("%s = %q", path, x))
			}
			if !strings.Contains(path, "/data/reason") && utf8.RuneCountInString(x) > MaxTextRunes {
				found = append(found, fmt.Sprintf("%s has %d runes", path, utf8.RuneCountInString(x)))
			}
		}
	}
	walk("", v)
	return found
}

// A hostile batch (header injection, control and bidi characters, invalid
// UTF-8, display-name addresses, overlong text, bad IDs, a plugin's
// hostile reason name) yields no hostile value in any stored event; what
// was dropped and cleaned is counted in the summary; clean values and
// users are unaffected.
func TestHostileBatchIsCleaned(t *testing.T) {
	e := startEnv(t, &dir{})
	hostile := &script{batches: []*connectorv1.SyncBatch{
		{Users: []*connectorv1.User{
			{Id: "u1", Mail: proto.String("ann@contoso.com"), UserPrincipalName: proto.String("ann@contoso.com"),
				DisplayName: proto.String("Ann\r\nX-Phish: 1"), GivenName: proto.String("A\xffnn"),
				Department: proto.String("Sales\x00\u202Egpj.exe"), JobTitle: proto.String(strings.Repeat("j", 5000)),
				AccountEnabled: proto.Bool(true), UserType: proto.String("Member")},
			{Id: "u2", Mail: proto.String("Eve <eve@evil.com>"), UserPrincipalName: proto.String("eve@contoso.com\r\nBcc: all@contoso.com"),
				DisplayName: proto.String("Eve"), AccountEnabled: proto.Bool(true)},
			{Id: "u3", Mail: proto.String("bob@contoso.com\nBcc: all@contoso.com"), UserPrincipalName: proto.String("bob@contoso.com"),
				DisplayName: proto.String("Bob"), AccountEnabled: proto.Bool(true)},
			{Id: "bad.id", Mail: proto.String("x@contoso.com")},
			{Id: "x\r\nBcc: all@contoso.com", Mail: proto.String("y@contoso.com")},
			user("u4", "cy@contoso.com", "Cy", "IT"),
		}},
		{Groups: []*connectorv1.Group{{Id: "g1", DisplayName: proto.String("Team\u2066Blue\u2069"), Mail: proto.String("team@contoso.com>"),
			GroupTypes: []string{"Unified"}, GroupTypesKnown: true, MailEnabled: proto.Bool(true)}},
			Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u1", "u4", "u\nx"}}},
			Progress: &connectorv1.Progress{Phase: "reading\r\nX-Phish: 1", Requests: -5,
				Rejected: map[string]int64{"id_not_guid": 2, "Bcc: x\r\n": 1}}},
		{Done: true, Complete: true, Cursor: "c1", ResyncReason: "expired\r\nX-Injected: 1"},
	}}
	e.usePlugin(hostile)
	j := e.sync()
	if j.State != events.StateCompleted {
		t.Fatalf("%s %q", j.State, j.Reason)
	}
	s := j.Summary
	if w := map[string]int64{"invalid_id": 3, "id_not_guid": 2, "other": 1}; !maps.Equal(s.Rejected, w) || s.RejectedObjects != 6 {
		t.Errorf("rejected %v (total %d), want %v (total 6)", s.Rejected, s.RejectedObjects, w)
	}
	if w := map[string]int64{"control_characters": 3, "invalid_utf8": 1, "too_long": 1, "invalid_email": 4}; !maps.Equal(s.Sanitized, w) {
		t.Errorf("sanitized %v, want %v", s.Sanitized, w)
	}
	if s.Skipped["no_email"] != 2 || s.RecipientsCreated != 2 || s.UsersRetrieved != 4 || s.GraphRequests != 0 {
		t.Errorf("summary %+v", s)
	}
	if s.ResyncReason != "expired  X-Injected: 1" {
		t.Errorf("resyncReason %q", s.ResyncReason)
	}

	rs := e.recipients()
	want := events.Recipient{ID: "demo.u1", Connector: "demo", ObjectID: "u1", Email: "ann@contoso.com", DisplayName: "AnnX-Phish: 1",
		GivenName: "A\uFFFDnn", Department: "Salesgpj.exe", JobTitle: strings.Repeat("j", MaxTextRunes), Groups: []string{"TeamBlue"},
		Tags: []string{}, Status: events.RecipientActive}
	got := rs["u1"]
	got.UpdatedAt = want.UpdatedAt
	if !equalRecipients(got, want) {
		t.Errorf("u1 = %+v\nwant %+v", got, want)
	}
	if r := rs["u4"]; r.Email != "cy@contoso.com" || r.DisplayName != "Cy" || !slices.Equal(r.Groups, []string{"TeamBlue"}) {
		t.Errorf("a clean user was changed: %+v", r)
	}
	if _, ok := rs["u2"]; ok {
		t.Errorf("a user with only invalid addresses became a recipient: %+v", rs["u2"])
	}
	if _, ok := rs["u3"]; ok {
		t.Errorf("a user with an invalid mail became a recipient (email_from = mail): %+v", rs["u3"])
	}
	var dirUser events.User
	e.proj.View(func(st *projections.State) { dirUser = st.Directories["demo"].Users["u2"] })
	if dirUser.Mail != "" || dirUser.UserPrincipalName != "" {
		t.Errorf("invalid addresses stored in the directory: %+v", dirUser)
	}

	raw := e.storedEvents(1)
	for _, ev := range raw {
		if bad := hostileIn(ev); len(bad) > 0 {
			t.Errorf("stored event carries hostile values %q:\n%s", bad, ev)
		}
		if err := events.Validate(ev); err != nil {
			t.Errorf("stored event does not match its schema: %v", err)
		}
	}

	// An incremental change to an invalid address takes the address away:
	// the old one is not kept, as if the field were absent.
	e.usePlugin(&script{batches: []*connectorv1.SyncBatch{
		{Users: []*connectorv1.User{{Id: "u4", Mail: proto.String("cy@contoso.com>\r\nBcc: all@contoso.com")}}},
		{Done: true, Cursor: "c2"},
	}})
	j = e.sync()
	if j.State != events.StateCompleted || j.Summary.Sanitized["invalid_email"] != 1 || j.Summary.RecipientsArchived != 1 {
		t.Fatalf("incremental: %s %q %+v", j.State, j.Reason, j.Summary)
	}
	if r := e.recipients()["u4"]; r.Status != events.RecipientArchived || r.Email != "cy@contoso.com" {
		t.Errorf("u4 after its mail became invalid: %+v", r)
	}
	for _, ev := range e.storedEvents(uint64(len(raw)) + 1) {
		if bad := hostileIn(ev); len(bad) > 0 {
			t.Errorf("stored event carries hostile values %q:\n%s", bad, ev)
		}
	}
}

func equalRecipients(a, b events.Recipient) bool {
	return a.ID == b.ID && a.Connector == b.Connector && a.ObjectID == b.ObjectID && a.Email == b.Email &&
		a.DisplayName == b.DisplayName && a.GivenName == b.GivenName && a.Surname == b.Surname &&
		a.Department == b.Department && a.JobTitle == b.JobTitle && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.Tags, b.Tags) && a.Status == b.Status
}

// Each protocol violation ends the job FAILED with a reason that names the
// plugin and says what to do, and nothing the plugin sent is saved.
func TestProtocolViolationsFailTheJob(t *testing.T) {
	e := startEnv(t, &dir{users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "Sales")}})
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatalf("first sync: %s %q", j.State, j.Reason)
	}
	newUser := func() *connectorv1.SyncBatch {
		return &connectorv1.SyncBatch{Users: []*connectorv1.User{user("u9", "new@contoso.com", "New", "IT")},
			Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: []string{"u9"}}}}
	}
	done := func(cursor string) *connectorv1.SyncBatch { return &connectorv1.SyncBatch{Done: true, Cursor: cursor} }
	many := make([]string, MaxBatchObjects+1)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	cases := []struct {
		name    string
		full    bool
		batches []*connectorv1.SyncBatch
		err     error
		want    string
	}{
		{"batch after the final one", false, []*connectorv1.SyncBatch{newUser(), done("c2"), newUser()}, nil, "it sent a batch after its final one"},
		{"second final batch", false, []*connectorv1.SyncBatch{newUser(), done("c2"), done("c3")}, nil, "it sent a second final batch"},
		{"restart after the final batch", false, []*connectorv1.SyncBatch{newUser(), done("c2"), {Restart: true}}, nil, "restarted the read after its final batch"},
		{"oversized batch", false, []*connectorv1.SyncBatch{newUser(), {Memberships: []*connectorv1.Membership{{GroupId: "g1", AddedUserIds: many}}}, done("c2")}, nil,
			"it sent a batch of 10001 objects"},
		{"removed user in a full read", true, []*connectorv1.SyncBatch{newUser(), {Users: []*connectorv1.User{{Id: "u1", Removed: &connectorv1.Removal{Reason: "deleted"}}}},
			{Done: true, Complete: true, Cursor: "c2"}}, nil, "it marked user u1 removed in a full read"},
		{"removed group in a full read", true, []*connectorv1.SyncBatch{newUser(), {Groups: []*connectorv1.Group{{Id: "g1", Removed: &connectorv1.Removal{Reason: "deleted"}}}},
			{Done: true, Complete: true, Cursor: "c2"}}, nil, "it marked group g1 removed in a full read"},
		{"incomplete answer to a full read", true, []*connectorv1.SyncBatch{newUser(), done("c2")}, nil, "it answered a full read with an incomplete one"},
		{"cursor with a line break", false, []*connectorv1.SyncBatch{newUser(), done("c2\r\nX: 1")}, nil, "it sent a cursor that is not printable text"},
		{"found by the plugin client", false, []*connectorv1.SyncBatch{newUser()}, &connector.ProtocolError{What: "it sent a batch after its final one"},
			"broke the sync protocol: it sent a batch after its final one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.recipients()
			from := e.lastSeq() + 1
			e.usePlugin(&script{batches: c.batches, err: c.err})
			id, err := e.runner.Request(context.Background(), "demo", Request{RequestedBy: "test", Full: c.full})
			if err != nil {
				t.Fatal(err)
			}
			j := e.waitFinal(id)
			if j.State != events.StateFailed {
				t.Fatalf("job ended %s (%q), want FAILED", j.State, j.Reason)
			}
			for _, w := range []string{`connector demo: plugin "fake" broke the sync protocol: `, c.want,
				"the plugin is faulty or does not match this dirsyncd version: update it, or report it to its author"} {
				if !strings.Contains(j.Reason, w) {
					t.Errorf("reason %q does not say %q", j.Reason, w)
				}
			}
			if after := e.recipients(); !maps.EqualFunc(before, after, equalRecipients) {
				t.Errorf("a failed job changed recipients:\nbefore %v\nafter  %v", before, after)
			}
			for _, raw := range e.storedEvents(from) {
				var ev struct{ Subject string }
				if err := json.Unmarshal(raw, &ev); err != nil || !strings.HasPrefix(ev.Subject, "dirsync.sync.demo.") {
					t.Errorf("a failed job stored more than its states: %s", raw)
				}
			}
			var cursor string
			e.proj.View(func(s *projections.State) { cursor = s.Cursors["demo"] })
			if cursor != "c1" {
				t.Errorf("cursor = %q after a failed job, want c1", cursor)
			}
		})
	}
}

// A failure while retrieving names the plugin, and the plugin's own error
// text reaches the reason only cleaned.
func TestRetrievalFailureNamesPlugin(t *testing.T) {
	e := startEnv(t, &dir{})
	cases := []struct {
		name string
		s    *script
		want string
	}{
		{"plugin error", &script{err: fmt.Errorf("graph said no\r\nX-Injected: 1\x1b[31m\u202E")},
			`connector demo (plugin "fake"): retrieving the directory: graph said no  X-Injected: 1[31m`},
		{"plugin error of megabytes", &script{err: fmt.Errorf("%s", strings.Repeat("e", 1<<20))},
			`connector demo (plugin "fake"): retrieving the directory: eeee`},
		{"stream ended early", &script{batches: []*connectorv1.SyncBatch{{Users: []*connectorv1.User{user("u1", "a@contoso.com", "A", "")}}}},
			`connector demo (plugin "fake"): the plugin ended the sync without its final batch`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.usePlugin(c.s)
			j := e.sync()
			if j.State != events.StateFailed || !strings.Contains(j.Reason, c.want) {
				t.Fatalf("%s %q; want FAILED with %q", j.State, j.Reason, c.want)
			}
			if strings.ContainsFunc(j.Reason, safetext.Breaks) || utf8.RuneCountInString(j.Reason) > maxMessageRunes+200 {
				t.Errorf("reason carries control characters or is unbounded (%d runes): %.300q", utf8.RuneCountInString(j.Reason), j.Reason)
			}
			if len(e.recipients()) != 0 {
				t.Errorf("a failed job saved recipients: %v", e.recipients())
			}
		})
	}
}
