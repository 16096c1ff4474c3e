package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// The token of the tests, and a second one in the token file.
const (
	testToken  = "console-test-token-0123456789abcdef"
	otherToken = "another-token-fedcba9876543210"
)

func testTime() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC) }

// models are read models held in memory, folded with the projections'
// own Apply.
type models struct {
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
	out := map[string][]projections.Change{}
	for _, c := range m.changes {
		if strings.EqualFold(c.Email, email) {
			out[c.RecipientID] = append(out[c.RecipientID], c)
		}
	}
	return nil, out, nil
}

func (m *models) apply(tb testing.TB, evs ...events.Event) {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		if _, err := m.st.Apply(e); err != nil {
			tb.Fatalf("applying %s: %v", e.Type, err)
		}
		if c, ok := projections.ChangeOf(e); ok {
			m.changes = append(m.changes, c)
		}
	}
}

// runner records the jobs the console asks for.
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
	return "j1", nil
}
func (r *runner) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requested)
}
func (r *runner) Explain(user, connector string) ([]policy.Explanation, error) {
	return []policy.Explanation{{Connector: "demo", ObjectID: user, DisplayName: "Ada <script>", Included: false, Reason: "disabled",
		Decision: "skipped: account disabled", Rules: []policy.Verdict{{Rule: "enabled", Verdict: policy.VerdictFail, Detail: "accountEnabled is false"}}}}, nil
}
func (r *runner) Cancel(_ context.Context, id string) error {
	return fmt.Errorf("%w %q", jobs.ErrUnknownJob, id)
}
func (r *runner) DryRunChanges(context.Context, string) ([]projections.Change, bool, error) {
	return nil, false, nil
}
func (r *runner) TestConnection(context.Context, string) (*connectorv1.TestConnectionResponse, error) {
	return &connectorv1.TestConnectionResponse{Ok: false, Checks: []*connectorv1.Check{
		{Name: "token", Ok: false, Detail: "the client secret was rejected", Remedy: "Set client_secret to the secret's Value"}}}, nil
}

// world is a console over a real api.Server on in-memory read models
// with n recipients, and the API requests the console made.
type world struct {
	c      *Console
	models *models
	runner *runner
	tokens []api.Token
	now    time.Time
	mu     sync.Mutex
	calls  []string
}

func newWorld(tb testing.TB, n int) *world {
	tb.Helper()
	w := &world{models: &models{st: projections.NewState()}, runner: &runner{}, now: testTime().Add(time.Hour),
		tokens: []api.Token{api.NewToken([]byte(testToken), time.Time{}), api.NewToken([]byte(otherToken), testTime())}}
	w.models.apply(tb, events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, testTime(),
		events.SyncState{JobID: "j1", Connector: "demo", State: events.StatePending}))
	for i := range n {
		r := events.Recipient{Connector: "demo", ObjectID: fmt.Sprintf("00000000-0000-0000-0000-%012d", i),
			Email: fmt.Sprintf("user%06d@contoso.com", i), DisplayName: fmt.Sprintf("User %d", i), Status: events.RecipientActive,
			Tags: []string{"t"}, UpdatedAt: testTime()}
		r.ID = projections.RecipientKey(r.Connector, r.ObjectID)
		w.models.apply(tb, events.New(events.TypeRecipientCreated, events.RecipientSubject(r.Connector, r.ObjectID), r.Connector, "j1", 0, testTime(),
			events.RecipientChange{Recipient: r, Reason: "user passes the import policy"}))
	}
	w.models.apply(tb, events.New(events.TypeSyncState, events.SyncSubject("demo", "j1"), "demo", "j1", 0, testTime(),
		events.SyncState{JobID: "j1", Connector: "demo", State: events.StateCompleted, Cursor: "c1",
			Summary: &events.Summary{RecipientsCreated: n, Recipients: n}}))
	srv := api.NewServer(w.runner, w.models, zaptest.NewLogger(tb)).WithNotify(func(context.Context) []notify.SinkStatus {
		return []notify.SinkStatus{{Name: "platform", Events: []string{"job.failed"}, Delivered: 3, Failed: 2, Pending: 1,
			LastResult: "failed", LastError: "the receiver answered 503 Service Unavailable", LastAttempt: &w.now}}
	})
	counted := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.calls = append(w.calls, r.URL.RequestURI())
		w.mu.Unlock()
		srv.ServeHTTP(rw, r)
	})
	c, err := New(Options{API: counted, Tokens: func() []api.Token { return w.tokens }, Now: func() time.Time { return w.now },
		Log: zaptest.NewLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	w.c = c
	return w
}

func (w *world) apiCalls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

// browser is an HTTP client with cookies, as a browser keeps them.
type browser struct {
	tb   testing.TB
	srv  *httptest.Server
	hc   *http.Client
	seen strings.Builder // every answer's headers and body, unless quiet
	// quiet keeps nothing of the answers (a benchmark's many requests).
	quiet bool
}

func newBrowser(tb testing.TB, w *world) *browser {
	tb.Helper()
	srv := httptest.NewServer(w.c.Mount(http.NotFoundHandler()))
	tb.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &browser{tb: tb, srv: srv, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request as the console's own page would (Origin set to
// the console for POSTs unless origin overrides it) and returns the
// status, Location and body.
func (b *browser) do(method, path string, form url.Values, origin string) (int, string, string) {
	b.tb.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		b.tb.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin == "" {
			origin = b.srv.URL
		}
	}
	if origin != "-" && origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if !b.quiet {
		fmt.Fprintf(&b.seen, "%s %s\n%v\n%s\n", method, path, resp.Header, out)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the first form of page.
func (b *browser) csrf(page string) string {
	b.tb.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.tb.Fatalf("no csrf field in:\n%s", page)
	}
	return m[1]
}

// login logs in with token and returns the answer.
func (b *browser) login(token string) (int, string, string) {
	b.tb.Helper()
	_, _, page := b.do(http.MethodGet, "/console/login", nil, "")
	return b.do(http.MethodPost, "/console/login", url.Values{"csrf": {b.csrf(page)}, "token": {token}}, "")
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name  string
		token string
		code  int
		want  string
	}{
		{"the token", testToken, http.StatusSeeOther, ""},
		{"the token with a newline pasted", testToken + "\n", http.StatusSeeOther, ""},
		{"no token", "", http.StatusUnauthorized, "Enter an API token"},
		{"a wrong token", "not-a-token-at-all-0000", http.StatusUnauthorized, "That is not an API token"},
		{"an expired token", otherToken, http.StatusUnauthorized, "That token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 3)
			b := newBrowser(t, w)
			code, loc, body := b.login(tt.token)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("login: %d %q\n%s", code, loc, body)
			}
			code, loc, _ = b.do(http.MethodGet, "/console/", nil, "")
			if loggedIn := code == http.StatusOK; loggedIn != (tt.code == http.StatusSeeOther) {
				t.Errorf("after the login the connectors page answers %d (to %q)", code, loc)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	w := newWorld(t, 1)
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			b := newBrowser(t, w)
			_, _, page := b.do(http.MethodGet, "/console/login", nil, "")
			form := url.Values{"csrf": {b.csrf(page)}, "token": {testToken}}
			// httptest.NewRequest marks an https target as TLS, as the
			// api listener's TLS does.
			req := httptest.NewRequest(http.MethodPost, scheme+"://console.test/console/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: LoginCookie, Value: b.csrf(page)})
			rec := httptest.NewRecorder()
			w.c.ServeHTTP(rec, req)
			var session *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == SessionCookie {
					session = c
				}
			}
			if session == nil {
				t.Fatalf("no session cookie: %d %v", rec.Code, rec.Header())
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" || session.Secure != (scheme == "https") {
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, Secure on https", session)
			}
			if strings.Contains(session.Value, testToken) || len(session.Value) < 40 {
				t.Errorf("session cookie value %q is not a random ID", session.Value)
			}
		})
	}
}

// TestCSRF: a state-changing form is refused, and no job requested,
// unless it carries the session's CSRF token and comes from the
// console's own origin; a login form needs its own token too (a forged
// login would put the victim in the attacker's session).
func TestCSRF(t *testing.T) {
	w := newWorld(t, 3)
	b := newBrowser(t, w)
	if code, _, _ := b.login(testToken); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	_, _, page := b.do(http.MethodGet, "/console/connectors/demo", nil, "")
	good := b.csrf(page)
	sync := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "action": {"sync"}, "tags": {"q4"}}
	}
	tests := []struct {
		name   string
		path   string
		form   url.Values
		origin string
		code   int
	}{
		{"sync without a token", "/console/connectors/demo/sync", url.Values{"action": {"sync"}}, "", http.StatusForbidden},
		{"sync with another token", "/console/connectors/demo/sync", sync(randomToken()), "", http.StatusForbidden},
		{"sync from another site", "/console/connectors/demo/sync", sync(good), "https://evil.example", http.StatusForbidden},
		{"test without a token", "/console/connectors/demo/test", url.Values{}, "", http.StatusForbidden},
		{"logout without a token", "/console/logout", url.Values{}, "", http.StatusForbidden},
		{"sync from the console", "/console/connectors/demo/sync", sync(good), "", http.StatusSeeOther},
		{"sync without Origin (an older browser)", "/console/connectors/demo/sync", sync(good), "-", http.StatusSeeOther},
	}
	want := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, loc, body := b.do(http.MethodPost, tt.path, tt.form, tt.origin)
			if code != tt.code {
				t.Fatalf("%d %q\n%s", code, loc, body)
			}
			if code == http.StatusSeeOther {
				want++
				if loc != "/console/jobs/j1" {
					t.Errorf("after the sync the console goes to %q", loc)
				}
			}
			if got := w.runner.requests(); got != want {
				t.Errorf("%d jobs requested; want %d", got, want)
			}
		})
	}
	if r := w.runner.requested[0]; r.RequestedBy != "console" || r.Options == nil || len(r.Options.Tags) != 1 || r.Options.Tags[0] != "q4" {
		t.Errorf("the console asked for %+v", r)
	}

	// Login CSRF: without the login cookie's token, or from another site.
	fresh := newBrowser(t, w)
	for _, f := range []struct {
		form   url.Values
		origin string
	}{{url.Values{"token": {testToken}}, ""}, {url.Values{"token": {testToken}, "csrf": {randomToken()}}, ""}} {
		if code, _, _ := fresh.do(http.MethodPost, "/console/login", f.form, f.origin); code != http.StatusForbidden {
			t.Errorf("a login without the form's token: %d", code)
		}
	}
	_, _, page = fresh.do(http.MethodGet, "/console/login", nil, "")
	if code, _, _ := fresh.do(http.MethodPost, "/console/login", url.Values{"csrf": {fresh.csrf(page)}, "token": {testToken}}, "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("a login from another site: %d", code)
	}
}

// TestTokenNeverInPage renders every page and block after a login and
// looks for the token in every answer's headers, cookies and body.
func TestTokenNeverInPage(t *testing.T) {
	w := newWorld(t, 3)
	b := newBrowser(t, w)
	b.login(testToken)
	id := "demo.00000000-0000-0000-0000-000000000001"
	for _, p := range []string{"/console/", "/console/fragments/connectors", "/console/connectors/demo", "/console/fragments/connectors/demo",
		"/console/jobs", "/console/jobs/j1", "/console/fragments/jobs/j1", "/console/recipients", "/console/recipients/" + id,
		"/console/recipients/export", "/console/login", "/console/static/console.js"} {
		if code, _, body := b.do(http.MethodGet, p, nil, ""); code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, code, body)
		}
	}
	_, _, page := b.do(http.MethodGet, "/console/connectors/demo", nil, "")
	b.do(http.MethodPost, "/console/connectors/demo/test", url.Values{"csrf": {b.csrf(page)}}, "")
	b.do(http.MethodPost, "/console/logout", url.Values{"csrf": {b.csrf(page)}}, "")
	u, _ := url.Parse(b.srv.URL + "/console/")
	for _, c := range b.hc.Jar.Cookies(u) {
		fmt.Fprintf(&b.seen, "cookie %s=%s\n", c.Name, c.Value)
	}
	if strings.Contains(b.seen.String(), testToken) {
		t.Errorf("an answer holds the API token:\n%s", b.seen.String())
	}
}

// TestSessionEnds: a session ends at logout, when its token leaves the
// token file, and after the idle timeout.
func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(w *world, b *browser)
	}{
		{"logout", func(w *world, b *browser) {
			_, _, page := b.do(http.MethodGet, "/console/", nil, "")
			if code, loc, _ := b.do(http.MethodPost, "/console/logout", url.Values{"csrf": {b.csrf(page)}}, ""); code != http.StatusSeeOther || loc != "/console/login" {
				t.Errorf("logout: %d %q", code, loc)
			}
		}},
		{"token removed from the file", func(w *world, _ *browser) { w.tokens = w.tokens[1:] }},
		{"idle", func(w *world, _ *browser) { w.now = w.now.Add(DefaultIdleTimeout) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, 1)
			b := newBrowser(t, w)
			b.login(testToken)
			if code, _, _ := b.do(http.MethodGet, "/console/", nil, ""); code != http.StatusOK {
				t.Fatalf("logged in: %d", code)
			}
			tt.end(w, b)
			if code, loc, _ := b.do(http.MethodGet, "/console/recipients", nil, ""); code != http.StatusSeeOther || loc != "/console/login" {
				t.Errorf("a page after the session ended: %d %q", code, loc)
			}
			if code, _, _ := b.do(http.MethodGet, "/console/fragments/connectors", nil, ""); code != http.StatusUnauthorized {
				t.Errorf("a live block after the session ended: %d", code)
			}
		})
	}
}

// TestRecipientPaging: a page shows RecipientPageSize recipients and a
// Next link, and asks the API for that one page only; with JavaScript
// off the page holds its data.
func TestRecipientPaging(t *testing.T) {
	w := newWorld(t, 120)
	b := newBrowser(t, w)
	b.login(testToken)
	rows := regexp.MustCompile(`data-recipient="([^"]+)"`)
	next := regexp.MustCompile(`href="(/console/recipients\?[^"]*cursor=[^"]+)" rel="next"`)
	path := "/console/recipients?tag=t"
	var seen []string
	for page := 1; path != ""; page++ {
		before := len(w.apiCalls())
		code, _, body := b.do(http.MethodGet, strings.ReplaceAll(path, "&amp;", "&"), nil, "")
		if code != http.StatusOK {
			t.Fatalf("page %d: %d\n%s", page, code, body)
		}
		got := rows.FindAllStringSubmatch(body, -1)
		if want := min(RecipientPageSize, 120-len(seen)); len(got) != want {
			t.Fatalf("page %d shows %d recipients; want %d", page, len(got), want)
		}
		for _, g := range got {
			seen = append(seen, g[1])
		}
		for _, call := range w.apiCalls()[before:] {
			if strings.HasPrefix(call, "/v1/recipients") && !strings.Contains(call, fmt.Sprintf("limit=%d", RecipientPageSize)) {
				t.Errorf("page %d asked the API for %s", page, call)
			}
		}
		path = ""
		if m := next.FindStringSubmatch(body); m != nil {
			path = m[1]
		}
	}
	if len(seen) != 120 || seen[0] != "demo.00000000-0000-0000-0000-000000000000" || seen[119] != "demo.00000000-0000-0000-0000-000000000119" {
		t.Errorf("the pages showed %d recipients, from %v", len(seen), seen[:min(3, len(seen))])
	}
}

func TestConnectionTestShowsTheFix(t *testing.T) {
	w := newWorld(t, 1)
	b := newBrowser(t, w)
	b.login(testToken)
	_, _, page := b.do(http.MethodGet, "/console/connectors/demo", nil, "")
	_, _, body := b.do(http.MethodPost, "/console/connectors/demo/test", url.Values{"csrf": {b.csrf(page)}}, "")
	for _, want := range []string{`data-check="token"`, "FAIL", "the client secret was rejected", "What to do:", "Set client_secret to the secret&#39;s Value"} {
		if !strings.Contains(body, want) {
			t.Errorf("the connection test's page lacks %q:\n%s", want, body)
		}
	}
}

// BenchmarkConsolePages renders the pages an admin opens most, over
// read models with 100,000 recipients (the console must answer within
// 200 ms there): the connectors page, the first and a later page of
// recipients, and one recipient's page.
func BenchmarkConsolePages(b *testing.B) {
	w := newWorld(b, 100_000)
	br := newBrowser(b, w)
	br.quiet = true
	br.login(testToken)
	_, _, first := br.do(http.MethodGet, "/console/recipients", nil, "")
	later := regexp.MustCompile(`href="(/console/recipients\?[^"]*cursor=[^"]+)" rel="next"`).FindStringSubmatch(first)
	if later == nil {
		b.Fatal("no Next link")
	}
	for _, p := range []struct{ name, path string }{
		{"connectors", "/console/"},
		{"recipients-first", "/console/recipients"},
		{"recipients-later", strings.ReplaceAll(later[1], "&amp;", "&")},
		{"recipient", "/console/recipients/demo.00000000-0000-0000-0000-000000050000"},
		{"job-with-every-recipient-created", "/console/jobs/j1"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				if code, _, body := br.do(http.MethodGet, p.path, nil, ""); code != http.StatusOK {
					b.Fatalf("%d\n%s", code, body)
				}
			}
		})
	}
}

// A client guessing tokens gets one log line a minute, with a count.
func TestRefusedLoginsLogSparingly(t *testing.T) {
	var l logLimit
	now := testTime()
	var logged []int
	for i := range 10 {
		if n, ok := l.take(now.Add(time.Duration(i) * 10 * time.Second)); ok {
			logged = append(logged, n)
		}
	}
	// At 0 s, 60 s (5 held: 10..50 s) and nothing else up to 90 s.
	if fmt.Sprint(logged) != "[0 5]" {
		t.Errorf("logged %v; want [0 5]", logged)
	}
}

// The explain page answers for any directory user, with every rule's
// verdict, and escapes what the directory says.
func TestExplainPage(t *testing.T) {
	w := newWorld(t, 1)
	b := newBrowser(t, w)
	b.login(testToken)
	code, _, body := b.do(http.MethodGet, "/console/explain?user=u-1&connector=demo", nil, "")
	if code != http.StatusOK {
		t.Fatalf("%d\n%s", code, body)
	}
	for _, want := range []string{"skipped: account disabled", `<th scope="row">enabled</th><td>fail</td><td>accountEnabled is false</td>`, "Ada &lt;script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("the explain page lacks %q:\n%s", want, body)
		}
	}
}

// The connectors page shows the webhooks' deliveries.
func TestConnectorsPageShowsWebhooks(t *testing.T) {
	w := newWorld(t, 1)
	b := newBrowser(t, w)
	b.login(testToken)
	_, _, body := b.do(http.MethodGet, "/console/", nil, "")
	for _, want := range []string{`data-webhook="platform"`, "<td>3</td><td>2</td><td>0</td><td>1</td>", "failed (the receiver answered 503 Service Unavailable)"} {
		if !strings.Contains(body, want) {
			t.Errorf("the connectors page lacks %q:\n%s", want, body)
		}
	}
}

// A sync the mass-removal guard stopped offers "Approve and sync", which
// asks for the same job again with the removals allowed.
func TestApproveAGuardedSync(t *testing.T) {
	w := newWorld(t, 1)
	tags := []string{"q4"}
	w.models.apply(t, events.New(events.TypeSyncState, events.SyncSubject("demo", "j2"), "demo", "j2", 0, testTime(),
		events.SyncState{JobID: "j2", Connector: "demo", State: events.StatePending, Options: &events.JobOptions{Tags: tags}}),
		events.New(events.TypeSyncState, events.SyncSubject("demo", "j2"), "demo", "j2", 1, testTime(),
			events.SyncState{JobID: "j2", Connector: "demo", State: events.StateFailed,
				Reason: "this sync would remove 90 of 100 recipients, more than max_removals allows (10%); nothing was changed."}))
	b := newBrowser(t, w)
	b.login(testToken)
	_, _, page := b.do(http.MethodGet, "/console/jobs/j2", nil, "")
	form := regexp.MustCompile(`(?s)<form method="post" action="/console/connectors/demo/sync">(.*?)Approve and sync</button></form>`).FindStringSubmatch(page)
	if form == nil {
		t.Fatalf("no Approve and sync form:\n%s", page)
	}
	values := url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(form[1], -1) {
		values.Set(m[1], m[2])
	}
	if code, loc, body := b.do(http.MethodPost, "/console/connectors/demo/sync", values, ""); code != http.StatusSeeOther {
		t.Fatalf("approving: %d %q\n%s", code, loc, body)
	}
	r := w.runner.requested[0]
	if r.Options == nil || !r.Options.AllowMassRemoval || r.Options.DryRun || fmt.Sprint(r.Options.Tags) != "[q4]" {
		t.Errorf("the approval asked for %+v; want the job's options with the removals allowed", r.Options)
	}
}
