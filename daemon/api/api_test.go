package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"go.uber.org/zap/zaptest"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// The daemon's types implement the interfaces the server is built on.
var (
	_ JobRunner  = (*jobs.Runner)(nil)
	_ ReadModels = (*projections.Projector)(nil)
)

// models is a real projections.State, fed through State.Apply with real
// events, behind the lock a Projector would hold. It keeps the recipient
// events it applied, as the stream would, for change lists and histories.
type models struct {
	t       *testing.T
	mu      sync.RWMutex
	st      *projections.State
	changes []projections.Change
}

func (m *models) View(fn func(*projections.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.st)
}

func (m *models) JobChanges(_ context.Context, jobID string) ([]projections.Change, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []projections.Change
	for _, c := range m.changes {
		if c.JobID == jobID {
			out = append(out, c)
		}
	}
	return out, nil
}

func (m *models) History(_ context.Context, email string) ([]events.Recipient, map[string][]projections.Change, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var now []events.Recipient
	for _, rs := range m.st.Recipients {
		for _, r := range rs {
			if strings.EqualFold(r.Email, email) {
				now = append(now, r)
			}
		}
	}
	ids := map[string]bool{}
	for _, c := range m.changes {
		if strings.EqualFold(c.Email, email) {
			ids[c.RecipientID] = true
		}
	}
	out := map[string][]projections.Change{}
	for _, c := range m.changes {
		if ids[c.RecipientID] {
			out[c.RecipientID] = append(out[c.RecipientID], c)
		}
	}
	return now, out, nil
}

// testTime is the time of every test event.
func testTime() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }

func (m *models) apply(evs ...events.Event) {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		if _, err := m.st.Apply(e); err != nil {
			m.t.Fatalf("applying %s: %v", e.Type, err)
		}
		if c, ok := projections.ChangeOf(e); ok {
			m.changes = append(m.changes, c)
		}
	}
}

func (m *models) putRecipient(r events.Recipient) {
	m.t.Helper()
	r.ID = projections.RecipientKey(r.Connector, r.ObjectID)
	if r.Status == "" {
		r.Status = events.RecipientActive
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = testTime()
	}
	m.apply(events.New(events.TypeRecipientCreated, events.RecipientSubject(r.Connector, r.ObjectID), r.Connector, "job1", 0, testTime(),
		events.RecipientChange{Recipient: r, Reason: "test"}))
}

func (m *models) removeRecipient(connector, objectID string) {
	m.t.Helper()
	r := events.Recipient{ID: projections.RecipientKey(connector, objectID), Connector: connector, ObjectID: objectID}
	m.apply(events.New(events.TypeRecipientRemoved, events.RecipientSubject(connector, objectID), connector, "job1", 0, testTime(),
		events.RecipientChange{Recipient: r, Reason: "test"}))
}

func (m *models) putGroup(connector string, g events.Group, members ...string) {
	m.t.Helper()
	m.apply(events.New(events.TypeGroupChanged, events.DirectorySubject(connector, "group", g.ID), connector, "job1", 0, testTime(), g))
	if len(members) > 0 {
		m.apply(events.New(events.TypeGroupMembersChanged, events.DirectorySubject(connector, "group", g.ID), connector, "job1", 1, testTime(),
			events.MembersChanged{GroupID: g.ID, Added: members}))
	}
}

func (m *models) putUser(connector string, u events.User) {
	m.t.Helper()
	m.apply(events.New(events.TypeUserChanged, events.DirectorySubject(connector, "user", u.ID), connector, "job1", 0, testTime(), u))
}

// runner is a JobRunner with one connector, demo, that runs nothing.
type runner struct {
	mu        sync.Mutex
	requested []jobs.Request
}

func (r *runner) Connectors() []string                  { return []string{"demo"} }
func (r *runner) Progress(string) (jobs.Progress, bool) { return jobs.Progress{}, false }
func (r *runner) Request(_ context.Context, connector string, req jobs.Request) (string, error) {
	if connector != "demo" {
		return "", fmt.Errorf("%w %q", jobs.ErrUnknownConnector, connector)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requested = append(r.requested, req)
	return "job-new", nil
}
func (r *runner) Cancel(_ context.Context, id string) error {
	return fmt.Errorf("%w %q", jobs.ErrUnknownJob, id)
}
func (r *runner) DryRunChanges(context.Context, string) ([]projections.Change, bool, error) {
	return nil, false, nil
}
func (r *runner) TestConnection(_ context.Context, connector string) (*connectorv1.TestConnectionResponse, error) {
	if connector != "demo" {
		return nil, fmt.Errorf("%w %q", jobs.ErrUnknownConnector, connector)
	}
	return &connectorv1.TestConnectionResponse{Ok: true, Checks: []*connectorv1.Check{{Name: "token", Ok: true}}}, nil
}

func newTestServer(t *testing.T) (*Server, *models) {
	t.Helper()
	m := &models{t: t, st: projections.NewState()}
	return NewServer(&runner{}, m, zaptest.NewLogger(t)), m
}

// get serves one request on h and returns the recorder.
func get(t *testing.T, h http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return v
}

// fill adds n recipients over two connectors, with emails in mixed case
// and some shared between connectors, and returns their IDs in list
// order.
func fill(m *models, n int) []string {
	var all []events.Recipient
	for i := range n {
		connector := "demo"
		if i%3 == 0 {
			connector = "other"
		}
		email := fmt.Sprintf("User%04d@Contoso.com", i/2) // pairs share an email
		if i%2 == 0 {
			email = strings.ToLower(email)
		}
		r := events.Recipient{Connector: connector, ObjectID: fmt.Sprintf("u%05d", i), Email: email, DisplayName: fmt.Sprintf("User %d", i)}
		m.putRecipient(r)
		r.ID = projections.RecipientKey(r.Connector, r.ObjectID)
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b events.Recipient) int { return keyOf(a).compare(keyOf(b)) })
	ids := make([]string, len(all))
	for i, r := range all {
		ids[i] = r.ID
	}
	return ids
}

// pageAll follows the pages of GET /v1/recipients from cursor and returns
// the IDs, calling between after each page.
func pageAll(t *testing.T, s http.Handler, query string, between func(page int)) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("paging does not end")
		}
		target := "/v1/recipients?" + query
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		rec := get(t, s, target)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		p := decode[RecipientPage](t, rec)
		for _, r := range p.Items {
			ids = append(ids, r.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		cursor = p.NextCursor
		if between != nil {
			between(page)
		}
	}
}

func TestRecipientsPaging(t *testing.T) {
	s, m := newTestServer(t)
	want := fill(m, 1234)
	tests := []struct {
		name  string
		query string
		pages int
	}{
		{"limit 100", "limit=100", 13},
		{"limit 1", "limit=1", 1234},
		{"default limit", "", 3},
		{"limit equal to the count", "limit=1234", 1},
		{"max limit", "limit=10000", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := 1
			got := pageAll(t, s, tt.query, func(int) { pages++ })
			if !slices.Equal(got, want) {
				t.Fatalf("paging yielded %d recipients, not each of the %d once in order", len(got), len(want))
			}
			if pages != tt.pages {
				t.Errorf("%d pages, want %d", pages, tt.pages)
			}
		})
	}
	rec := get(t, s, "/v1/recipients?limit=100")
	if p := decode[RecipientPage](t, rec); len(p.Items) != 100 || p.NextCursor == "" {
		t.Errorf("first page: %d items, nextCursor %q", len(p.Items), p.NextCursor)
	}
	if strings.Contains(get(t, s, "/v1/recipients?limit=10000").Body.String(), "nextCursor") {
		t.Error("the last page has a nextCursor")
	}
}

func TestRecipientsCursorIsStable(t *testing.T) {
	s, m := newTestServer(t)
	original := fill(m, 300)
	// Between pages: add a recipient before the cursor (never listed),
	// one after it (listed once), and remove one not yet listed (not
	// listed) and the one the cursor names (the cursor still works).
	var added, removed []string
	between := func(page int) {
		before := events.Recipient{Connector: "demo", ObjectID: fmt.Sprintf("early%03d", page), Email: "aaaa@contoso.com"}
		after := events.Recipient{Connector: "demo", ObjectID: fmt.Sprintf("late%03d", page), Email: "zzzz@contoso.com"}
		m.putRecipient(before)
		m.putRecipient(after)
		added = append(added, projections.RecipientKey("demo", after.ObjectID))
		if page == 2 {
			victim := original[len(original)-5] // on a later page
			removed = append(removed, victim)
			c, o, _ := splitID(victim)
			m.removeRecipient(c, o)
			last := original[(page+1)*40-1] // the last of this page: the cursor's own recipient
			c, o, _ = splitID(last)
			m.removeRecipient(c, o)
		}
	}
	got := pageAll(t, s, "limit=40", between)
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range original {
		want := 1
		if slices.Contains(removed, id) {
			want = 0
		}
		if seen[id] != want {
			t.Errorf("recipient %s listed %d times, want %d", id, seen[id], want)
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("recipient %s listed %d times", id, n)
		}
		if strings.HasPrefix(id, "demo.early") {
			t.Errorf("recipient %s, added before the cursor, was listed", id)
		}
	}
	for _, id := range added {
		if seen[id] != 1 {
			t.Errorf("recipient %s, added after the cursor, listed %d times", id, seen[id])
		}
	}
}

func TestRecipientsFilters(t *testing.T) {
	s, m := newTestServer(t)
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "a", Email: "a@x.com", Tags: []string{"q4"}, Groups: []string{"Sales Team"}})
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "b", Email: "b@x.com", Status: events.RecipientArchived, Groups: []string{"IT"}})
	m.putRecipient(events.Recipient{Connector: "other", ObjectID: "c", Email: "c@x.com", Tags: []string{"q4", "vip"}, Groups: []string{"sales team"}})
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"demo.a", "demo.b", "other.c"}},
		{"connector=demo", []string{"demo.a", "demo.b"}},
		{"tag=nope", nil}, // an unknown connector is an error: TestUnknownConnector
		{"status=active", []string{"demo.a", "other.c"}},
		{"status=archived", []string{"demo.b"}},
		{"tag=q4", []string{"demo.a", "other.c"}},
		{"tag=vip&connector=demo", nil},
		{"group=SALES%20TEAM", []string{"demo.a", "other.c"}},
		{"group=IT&status=archived", []string{"demo.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := get(t, s, "/v1/recipients?"+tt.query)
			p := decode[RecipientPage](t, rec)
			if p.Items == nil {
				t.Error("items is null, want []")
			}
			var got []string
			for _, r := range p.Items {
				got = append(got, r.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecipientsBadParameters(t *testing.T) {
	s, m := newTestServer(t)
	fill(m, 3)
	garbage := base64.RawURLEncoding.EncodeToString([]byte(`{"x":1}`))
	noID := base64.RawURLEncoding.EncodeToString([]byte(`{"e":"a"}`))
	valid := base64.RawURLEncoding.EncodeToString([]byte(`{"e":"a","i":"b"}`))
	tests := []struct {
		query, names string
	}{
		{"limit=0", "limit"},
		{"limit=-5", "limit"},
		{"limit=10001", "limit"},
		{"limit=ten", "limit"},
		{"cursor=%21%21%21", "cursor"},
		{"cursor=" + garbage, "cursor"},
		{"cursor=" + noID, "cursor"},
		{"cursor=" + base64.RawURLEncoding.EncodeToString([]byte(`{"e":"a","i":"b"}{"e":"c","i":"d"}`)), "cursor"},
		{"cursor=", "cursor"},
		{"cursor=" + valid + "&cursor=" + valid, "cursor"},
		{"status=deleted", "status"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := get(t, s, "/v1/recipients?"+tt.query)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", rec.Code)
			}
			if e := decode[Error](t, rec); !strings.HasPrefix(e.Error, tt.names) {
				t.Errorf("error %q does not name %s", e.Error, tt.names)
			}
		})
	}
}

func TestRecipientGet(t *testing.T) {
	s, m := newTestServer(t)
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "u.1-x", Email: "jane@contoso.com", DisplayName: "Jane"})
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "history", Email: "h@contoso.com"})
	tests := []struct {
		name, path string
		code       int
		contains   string
	}{
		{"found", "/v1/recipients/demo.u.1-x", http.StatusOK, `"displayName": "Jane"`},
		{"escaped", "/v1/recipients/" + url.PathEscape("demo.u.1-x"), http.StatusOK, `"email": "jane@contoso.com"`},
		{"absent", "/v1/recipients/demo.nobody", http.StatusNotFound, `demo.nobody`},
		{"other connector", "/v1/recipients/other.u.1-x", http.StatusNotFound, `other.u.1-x`},
		{"malformed", "/v1/recipients/nodot", http.StatusBadRequest, `<connector>.<objectId>`},
		{"history is a route", "/v1/recipients/history?email=JANE@contoso.com", http.StatusOK, `"recipients"`},
		{"history needs email", "/v1/recipients/history", http.StatusBadRequest, `email`},
		{"export is a route", "/v1/recipients/export?format=json", http.StatusOK, `demo.u.1-x`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, s, tt.path)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("%s: %d %s; want %d containing %q", tt.path, rec.Code, rec.Body, tt.code, tt.contains)
			}
		})
	}
}

func TestExportCSV(t *testing.T) {
	s, m := newTestServer(t)
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "a", Email: "a@x.com", DisplayName: "=HYPERLINK(\"http://evil\",\"x\")",
		GivenName: "+1", Surname: "-2", Department: "@SUM(A1)", JobTitle: "\tTab", Groups: []string{"=g1", "Sales; EU"}, Tags: []string{"q4", "vip"}})
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "b", Email: "B@x.com", DisplayName: "Bob, \"the\" builder", JobTitle: "\rCR",
		Status: events.RecipientArchived})
	m.putRecipient(events.Recipient{Connector: "other", ObjectID: "c", Email: "c@x.com", DisplayName: "Plain"})

	rec := get(t, s, "/v1/recipients/export?format=csv")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="recipients.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		csvHeader(),
		{"demo.a", "demo", "a", "a@x.com", "'=HYPERLINK(\"http://evil\",\"x\")", "'+1", "'-2", "'@SUM(A1)", "'\tTab", "'=g1;Sales; EU", "q4;vip", "active", "2026-03-04T05:06:07Z"},
		{"demo.b", "demo", "b", "B@x.com", "Bob, \"the\" builder", "", "", "", "'\rCR", "", "", "archived", "2026-03-04T05:06:07Z"},
		{"other.c", "other", "c", "c@x.com", "Plain", "", "", "", "", "", "", "active", "2026-03-04T05:06:07Z"},
	}
	// encoding/csv reads a quoted \r as \n only when followed by \n; a
	// lone \r inside quotes survives.
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %q", len(rows), len(want), rows)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q can run as a formula", cell)
			}
		}
	}

	// Filters apply; no format means CSV.
	rows, err = csv.NewReader(get(t, s, "/v1/recipients/export?connector=demo&status=active").Body).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][0] != "demo.a" {
		t.Errorf("filtered export: %q, %v", rows, err)
	}
}

func TestExportJSON(t *testing.T) {
	s, m := newTestServer(t)
	want := fill(m, 2500) // past flushEvery
	rec := get(t, s, "/v1/recipients/export?format=json")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="recipients.json"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	list := decode[[]events.Recipient](t, rec)
	var got []string
	for _, r := range list {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("export has %d recipients, want the %d in list order", len(got), len(want))
	}

	empty := get(t, s, "/v1/recipients/export?format=json&connector=demo&tag=none")
	if l := decode[[]events.Recipient](t, empty); l == nil || len(l) != 0 {
		t.Errorf("empty export = %s, want []", empty.Body)
	}
}

func TestExportBadParameters(t *testing.T) {
	s, _ := newTestServer(t)
	for _, q := range []string{"format=xlsx", "format=CSV", "status=gone"} {
		rec := get(t, s, "/v1/recipients/export?"+q)
		name, _, _ := strings.Cut(q, "=")
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), name) {
			t.Errorf("%s: %d %s, want 400 naming %s", q, rec.Code, rec.Body, name)
		}
	}
}

func TestGroups(t *testing.T) {
	s, m := newTestServer(t)
	m.putUser("demo", events.User{ID: "u1", Mail: "ann@x.com", DisplayName: "Ann"})
	m.putUser("demo", events.User{ID: "u2", DisplayName: "No Mail"})
	m.putUser("demo", events.User{ID: "u3", Mail: "Carl@x.com", DisplayName: "Carl"})
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "u1", Email: "ann@x.com"})
	m.putGroup("demo", events.Group{ID: "g1", DisplayName: "Sales", GroupTypes: []string{"Unified"}}, "u1", "u2", "u3")
	m.putGroup("demo", events.Group{ID: "g2", DisplayName: "IT"})
	m.putGroup("acme", events.Group{ID: "g9", DisplayName: "Zeta"})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			query string
			want  []string
		}{
			{"", []string{"acme/Zeta", "demo/IT", "demo/Sales"}},
			{"connector=demo", []string{"demo/IT", "demo/Sales"}},
			{"connector=demo&x=1", []string{"demo/IT", "demo/Sales"}},
		}
		for _, tt := range tests {
			rec := get(t, s, "/v1/groups?"+tt.query)
			got := []string{}
			for _, g := range decode[[]projections.GroupView](t, rec) {
				got = append(got, g.Connector+"/"+g.DisplayName)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%q: %v, want %v", tt.query, got, tt.want)
			}
		}
	})
	t.Run("get", func(t *testing.T) {
		rec := get(t, s, "/v1/groups/demo.g1")
		if rec.Code != http.StatusOK {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		g := decode[Group](t, rec)
		want := []GroupMember{
			{ObjectID: "u1", RecipientID: "demo.u1", Email: "ann@x.com", DisplayName: "Ann"},
			{ObjectID: "u3", Email: "Carl@x.com", DisplayName: "Carl"},
			{ObjectID: "u2", DisplayName: "No Mail"},
		}
		if g.DisplayName != "Sales" || g.Members != 3 || !slices.Equal(g.MemberList, want) {
			t.Errorf("group = %+v", g)
		}
		if g := decode[Group](t, get(t, s, "/v1/groups/demo.g2")); g.MemberList == nil || len(g.MemberList) != 0 {
			t.Errorf("empty group = %+v", g)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for path, code := range map[string]int{"/v1/groups/demo.nope": http.StatusNotFound, "/v1/groups/nope": http.StatusBadRequest} {
			rec := get(t, s, path)
			if rec.Code != code || !strings.Contains(rec.Body.String(), strings.TrimPrefix(path, "/v1/groups/")) {
				t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
			}
		}
	})
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name    string
		ready   func(context.Context) error
		metrics http.Handler
		path    string
		code    int
		body    string
	}{
		{name: "healthz", path: "/healthz", code: 200, body: `"status": "ok"`},
		{name: "ready without a hook", path: "/readyz", code: 200, body: `"status": "ready"`},
		{name: "ready", ready: func(context.Context) error { return nil }, path: "/readyz", code: 200, body: `"status": "ready"`},
		{name: "not ready", ready: func(context.Context) error { return errors.New("projections are replaying") },
			path: "/readyz", code: 503, body: `"reason": "projections are replaying"`},
		{name: "healthz while not ready", ready: func(context.Context) error { return errors.New("no") }, path: "/healthz", code: 200, body: `"ok"`},
		{name: "no metrics", path: "/metrics", code: 404, body: "no metrics handler"},
		{name: "metrics", metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "dirsync_up 1\n") }),
			path: "/metrics", code: 200, body: "dirsync_up 1"},
		{name: "openapi", path: "/v1/openapi.yaml", code: 200, body: "openapi: 3.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t)
			s.WithReadiness(tt.ready).WithMetrics(tt.metrics)
			rec := get(t, s, tt.path)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%d %s; want %d with %q", rec.Code, rec.Body, tt.code, tt.body)
			}
		})
	}
	s, _ := newTestServer(t)
	s.WithReadiness(func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the readiness check has no deadline")
		}
		return nil
	})
	get(t, s, "/readyz")
}

// samplePath turns a route pattern into a path that matches it.
func samplePath(pattern string) string {
	r := strings.NewReplacer("{name}", "demo", "{id}", "demo.x")
	return r.Replace(pattern)
}

func TestAuth(t *testing.T) {
	s, m := newTestServer(t)
	s.WithMetrics(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "m 1\n") }))
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "x", Email: "x@x.com"})
	var mu sync.Mutex
	token := []byte("s3cret-token\n")
	h := s.Authenticated(func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return token
	})
	const wrong = "WrongTokenValue-1234567890"
	tests := []struct {
		name, path, auth string
		code             int
		challenge        string
	}{
		{"no header", "/v1/status", "", 401, `Bearer realm="dirsync"`},
		{"wrong token", "/v1/status", "Bearer " + wrong, 401, `Bearer realm="dirsync", error="invalid_token"`},
		{"token prefix", "/v1/status", "Bearer s3cret", 401, `Bearer realm="dirsync", error="invalid_token"`},
		{"token with more", "/v1/status", "Bearer s3cret-token-and-more", 401, `Bearer realm="dirsync", error="invalid_token"`},
		{"another scheme", "/v1/status", "Basic " + wrong, 401, `Bearer realm="dirsync"`},
		{"empty bearer", "/v1/status", "Bearer ", 401, `Bearer realm="dirsync"`},
		{"right token", "/v1/status", "Bearer s3cret-token", 200, ""},
		{"scheme in any case", "/v1/recipients/demo.x", "bearer s3cret-token", 200, ""},
		{"unknown path needs the token", "/v1/nothing", "", 401, `Bearer realm="dirsync"`},
		{"unknown path with the token", "/v1/nothing", "Bearer s3cret-token", 404, ""},
		{"healthz is public", "/healthz", "", 200, ""},
		{"readyz is public", "/readyz", "", 200, ""},
		{"metrics is public", "/metrics", "", 200, ""},
		{"openapi is public", "/v1/openapi.yaml", "", 200, ""},
		{"public with a wrong token", "/healthz", "Bearer " + wrong, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, h, tt.path, "Authorization", tt.auth)
			if rec.Code != tt.code {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tt.code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			if strings.Contains(rec.Body.String(), wrong) || strings.Contains(rec.Body.String(), "s3cret") {
				t.Errorf("the answer echoes a token: %s", rec.Body)
			}
			if tt.code == 401 {
				if e := decode[Error](t, rec); !strings.Contains(e.Error, "Authorization: Bearer") && !strings.Contains(e.Error, "token_file") {
					t.Errorf("401 message %q does not say how to send the token", e.Error)
				}
			}
		})
	}

	t.Run("every protected route needs the token", func(t *testing.T) {
		for _, r := range Routes() {
			req := httptest.NewRequest(r.Method, samplePath(r.Pattern), nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if r.Public == (rec.Code == http.StatusUnauthorized) {
				t.Errorf("%s %s without a token: %d (public %v)", r.Method, r.Pattern, rec.Code, r.Public)
			}
		}
	})
	t.Run("the unix socket handler needs none", func(t *testing.T) {
		if rec := get(t, s, "/v1/status"); rec.Code != 200 {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("a rotated token applies at once", func(t *testing.T) {
		mu.Lock()
		token = []byte("rotated")
		mu.Unlock()
		if rec := get(t, h, "/v1/status", "Authorization", "Bearer s3cret-token"); rec.Code != 401 {
			t.Errorf("old token: %d", rec.Code)
		}
		if rec := get(t, h, "/v1/status", "Authorization", "Bearer rotated"); rec.Code != 200 {
			t.Errorf("new token: %d", rec.Code)
		}
	})
	t.Run("no token configured refuses all", func(t *testing.T) {
		h := s.Authenticated(func() []byte { return nil })
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			if rec := get(t, h, "/v1/status", "Authorization", auth); rec.Code != 401 {
				t.Errorf("%q: %d", auth, rec.Code)
			}
		}
	})
}

func TestSyncRequest(t *testing.T) {
	m := &models{t: t, st: projections.NewState()}
	r := &runner{}
	s := NewServer(r, m, zaptest.NewLogger(t))
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	tests := []struct {
		name, path, body string
		code             int
	}{
		{"no body", "/v1/connectors/demo/sync", "", 202},
		{"options", "/v1/connectors/demo/sync", `{"full":true,"dryRun":true,"tags":["q4"],"tagMode":"replace","updateExisting":false}`, 202},
		{"unknown field", "/v1/connectors/demo/sync", `{"fulll":true}`, 400},
		{"bad tag mode", "/v1/connectors/demo/sync", `{"tagMode":"merge"}`, 400},
		{"empty tag", "/v1/connectors/demo/sync", `{"tags":[" "]}`, 400},
		{"unknown connector", "/v1/connectors/nope/sync", "", 404},
		{"test", "/v1/connectors/demo/test", "", 200},
		{"test unknown", "/v1/connectors/nope/test", "", 404},
		{"cancel unknown", "/v1/jobs/j9/cancel", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := post(tt.path, tt.body); rec.Code != tt.code {
				t.Errorf("%d %s, want %d", rec.Code, rec.Body, tt.code)
			}
		})
	}
	if len(r.requested) != 2 || !r.requested[1].Full || r.requested[1].Options == nil || !r.requested[1].Options.DryRun ||
		r.requested[1].RequestedBy != "api" {
		t.Errorf("requests = %+v", r.requested)
	}
}

func TestStatusAndJobs(t *testing.T) {
	s, m := newTestServer(t)
	m.apply(events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, testTime(),
		events.SyncState{JobID: "j1", Connector: "demo", State: events.StatePending}))
	m.putRecipient(events.Recipient{Connector: "demo", ObjectID: "x", Email: "x@x.com"})
	st := decode[Status](t, get(t, s, "/v1/status"))
	if len(st.Connectors) != 1 || st.Connectors[0].CurrentJob != "j1" || st.Connectors[0].Recipients != 1 {
		t.Errorf("status = %+v", st)
	}
	if js := decode[[]Job](t, get(t, s, "/v1/jobs?connector=demo")); len(js) != 1 || js[0].ID != "j1" {
		t.Errorf("jobs = %+v", js)
	}
	if rec := get(t, s, "/v1/jobs/j1/changes"); rec.Code != 200 {
		t.Errorf("changes: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, s, "/v1/jobs/j2"); rec.Code != 404 || !bytes.Contains(rec.Body.Bytes(), []byte("j2")) {
		t.Errorf("absent job: %d %s", rec.Code, rec.Body)
	}
}

// A list that answers in one go refuses a cursor instead of ignoring it:
// a client that believes it pages would get everything for every cursor.
func TestCursorOnListsThatDoNotPage(t *testing.T) {
	s, m := newTestServer(t)
	fill(m, 3)
	valid := base64.RawURLEncoding.EncodeToString([]byte(`{"e":"a","i":"b"}`))
	for _, path := range []string{"/v1/jobs", "/v1/groups", "/v1/recipients/export"} {
		for _, cursor := range []string{valid, "", "%21"} {
			t.Run(path+"?cursor="+cursor, func(t *testing.T) {
				rec := get(t, s, path+"?cursor="+cursor)
				if rec.Code != http.StatusBadRequest {
					t.Fatalf("status %d %s, want 400", rec.Code, rec.Body)
				}
				if e := decode[Error](t, rec); !strings.HasPrefix(e.Error, "cursor:") || !strings.Contains(e.Error, path) {
					t.Errorf("error %q does not name the cursor and %s", e.Error, path)
				}
			})
		}
	}
	// The paged list still pages.
	p := decode[RecipientPage](t, get(t, s, "/v1/recipients?limit=1"))
	if rec := get(t, s, "/v1/recipients?limit=1&cursor="+url.QueryEscape(p.NextCursor)); rec.Code != http.StatusOK {
		t.Errorf("a nextCursor: %d %s", rec.Code, rec.Body)
	}
}

// post serves one POST with body on h.
func post(t *testing.T, h http.Handler, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// A sync request's options are bounded (events.JobOptions.Validated): a
// bad one is a 400 that names the tag and the rule, with none of the
// request's control characters in it, and queues no job.
func TestSyncRequestBadOptions(t *testing.T) {
	r := &runner{}
	s := NewServer(r, &models{t: t, st: projections.NewState()}, zaptest.NewLogger(t))
	tags := func(n int) string {
		q := make([]string, n)
		for i := range q {
			q[i] = fmt.Sprintf("%q", fmt.Sprintf("t%03d", i))
		}
		return `{"tags":[` + strings.Join(q, ",") + `]}`
	}
	tests := []struct {
		name, body string
		says       []string
	}{
		{"51 tags", tags(51), []string{"51 tags", "at most 50"}},
		{"960 tags", tags(960), []string{"960 tags", "at most 50"}},
		{"bidi override", `{"tags":["q4","x\u202Egpj.exe"]}`, []string{"tag 2 of 2", `\u202e`, "U+202E"}},
		{"zero width space", `{"tags":["q\u200B4"]}`, []string{"tag 1 of 1", "U+200B"}},
		{"line separator", `{"tags":["a\u2028b"]}`, []string{"U+2028"}},
		{"escape sequence", `{"tags":["\u001b[31mred"]}`, []string{"U+001B"}},
		{"too long", `{"tags":["` + strings.Repeat("x", 65) + `"]}`, []string{"tag 1 of 1", "65 characters", "at most 64"}},
		{"only spaces", `{"tags":["   "]}`, []string{"is empty"}},
		{"case twins", `{"tags":["Q4","q4"]}`, []string{"only in case"}},
		{"invalid UTF-8", "{\"tags\":[\"a\xffb\"]}", []string{"U+FFFD"}},
		{"tag mode", `{"tagMode":"merge"}`, []string{"tagMode", "append or replace"}},
		{"trailing object", `{"full":true}{"x":1}`, []string{"more JSON follows"}},
		{"trailing value", `{"full":true} 1`, []string{"more JSON follows"}},
		{"trailing garbage", `{"full":true}}`, []string{"invalid character"}},
		{"two requests", `{"full":true}{"full":true}`, []string{"more JSON follows"}},
		{"unknown field with a bidi override", `{"x\u202Ey":1}`, []string{`unknown field`, `\u202e`}},
		{"too large", `{"tags":["` + strings.Repeat("x", MaxBodyBytes) + `"]}`, []string{"larger than 64 KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, s, "/v1/connectors/demo/sync", tt.body)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
			}
			e := decode[Error](t, rec)
			for _, part := range tt.says {
				if !strings.Contains(e.Error, part) {
					t.Errorf("error %q does not say %q", e.Error, part)
				}
			}
			if i := strings.IndexFunc(e.Error, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
				t.Errorf("error %q carries %U raw", e.Error, []rune(e.Error[i:])[0])
			}
		})
	}
	if len(r.requested) != 0 {
		t.Errorf("bad requests queued %d jobs: %+v", len(r.requested), r.requested)
	}

	// At the limits, the job gets the tags trimmed and without duplicates.
	ok := tags(50)
	ok = strings.Replace(ok, `"t001"`, `" t000 "`, 1)
	if rec := post(t, s, "/v1/connectors/demo/sync", ok); rec.Code != http.StatusAccepted {
		t.Fatalf("50 tags: %d %s", rec.Code, rec.Body)
	}
	if rec := post(t, s, "/v1/connectors/demo/sync", `{"full":true}`+"\n\t "); rec.Code != http.StatusAccepted {
		t.Errorf("white space after the body: %d %s", rec.Code, rec.Body)
	}
	if len(r.requested) != 2 || r.requested[0].Options == nil {
		t.Fatalf("requests = %+v", r.requested)
	}
	got := r.requested[0].Options.Tags
	if len(got) != 49 || got[0] != "t000" || got[1] != "t002" {
		t.Errorf("the job's tags: %d %q…", len(got), got[:min(3, len(got))])
	}
}

// A job's change list can be read in windows: offset and limit pick
// them, total counts all, and a bad window is refused naming the
// parameter.
func TestJobChangeWindow(t *testing.T) {
	s, m := newTestServer(t)
	m.apply(events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, testTime(),
		events.SyncState{JobID: "j1", Connector: "demo", State: events.StatePending}))
	for i := range 5 {
		r := events.Recipient{Connector: "demo", ObjectID: fmt.Sprintf("o%d", i), Email: fmt.Sprintf("u%d@x.com", i)}
		r.ID = projections.RecipientKey(r.Connector, r.ObjectID)
		m.apply(events.New(events.TypeRecipientCreated, events.RecipientSubject(r.Connector, r.ObjectID), "demo", "j1", 0, testTime(),
			events.RecipientChange{Recipient: r, Reason: "test"}))
	}
	tests := []struct {
		query  string
		code   int
		emails string
	}{
		{"", 200, "u0 u1 u2 u3 u4"},
		{"?offset=1&limit=2", 200, "u1 u2"},
		{"?offset=4&limit=10", 200, "u4"},
		{"?offset=9", 200, ""},
		{"?limit=0", 400, ""},
		{"?limit=10001", 400, ""},
		{"?offset=-1", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := get(t, s, "/v1/jobs/j1/changes"+tt.query)
			if rec.Code != tt.code {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if tt.code != 200 {
				if !strings.Contains(rec.Body.String(), "must be a number") {
					t.Errorf("the refusal does not say what is wrong: %s", rec.Body)
				}
				return
			}
			ch := decode[Changes](t, rec)
			var got []string
			for _, c := range ch.Changes {
				got = append(got, strings.TrimSuffix(c.Email, "@x.com"))
			}
			if strings.Join(got, " ") != tt.emails || ch.Total != 5 {
				t.Errorf("changes %v total %d; want %q of 5", got, ch.Total, tt.emails)
			}
		})
	}
}
