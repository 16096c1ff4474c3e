package azuread

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// stubTransport answers every request with its response.
type stubTransport struct {
	contentType   string
	contentLength int64 // -1: unknown (streamed)
	body          string
}

func (s *stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	if s.contentType != "" {
		h.Set("Content-Type", s.contentType)
	}
	return &http.Response{StatusCode: 200, Header: h, ContentLength: s.contentLength, Body: io.NopCloser(strings.NewReader(s.body)), Request: req}, nil
}

func TestLimitTransport(t *testing.T) {
	const graphJSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name        string
		contentType string
		body        string
		known       bool // Content-Length sent
		maxBytes    int64
		err         string // part of the error; "" = read whole
	}{
		{name: "within the limit", contentType: graphJSON, body: `{"value":[]}`, maxBytes: 12},
		{name: "one byte over, streamed", contentType: graphJSON, body: `{"value":[] }`, maxBytes: 12, err: "larger than 12 bytes (max_response_mb)"},
		{name: "over, Content-Length", contentType: graphJSON, body: `{"value":[] }`, known: true, maxBytes: 12, err: "larger than 12 bytes"},
		{name: "64 levels", contentType: graphJSON, body: nest(64), maxBytes: 1 << 20},
		{name: "65 levels", contentType: graphJSON, body: nest(65), maxBytes: 1 << 20, err: "nests JSON deeper than 64 levels"},
		{name: "objects count too", contentType: "application/json", body: strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65), maxBytes: 1 << 20, err: "deeper than 64"},
		{name: "brackets in strings do not count", contentType: graphJSON,
			body: `{"a":"` + strings.Repeat("[{", 100) + `","b":"\"` + strings.Repeat("[", 100) + `\\","c":[1]}`, maxBytes: 1 << 20},
		{name: "an escaped quote does not end a string", contentType: graphJSON, body: `["\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]`, maxBytes: 1 << 20},
		{name: "not JSON: not scanned", contentType: "text/html", body: nest(1000), maxBytes: 1 << 20},
		{name: "not JSON: still bounded", contentType: "text/html", body: nest(1000), maxBytes: 100, err: "larger than 100 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := &stubTransport{contentType: tt.contentType, body: tt.body, contentLength: -1}
			if tt.known {
				stub.contentLength = int64(len(tt.body))
			}
			lt := &limitTransport{next: stub, maxBytes: tt.maxBytes, maxDepth: maxJSONDepth}
			req, _ := http.NewRequest(http.MethodGet, "https://graph.example/v1.0/users/delta?$skiptoken=SECRETTOKEN", nil)
			resp, err := lt.RoundTrip(req)
			var body []byte
			if err == nil {
				// Small reads, so that the scan meets the body in pieces.
				body, err = io.ReadAll(io.LimitReader(&chunked{r: resp.Body, n: 7}, 1<<30))
				// The failure sticks.
				if err != nil {
					if _, again := resp.Body.Read(make([]byte, 10)); again == nil {
						t.Error("a Read after the failure succeeded")
					}
				}
				_ = resp.Body.Close()
			}
			if tt.err == "" {
				if err != nil || string(body) != tt.body {
					t.Fatalf("read %d bytes, %v", len(body), err)
				}
				return
			}
			var le *ResponseLimitError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want a ResponseLimitError with %q", err, tt.err)
			}
			if msg := err.Error(); !strings.Contains(msg, "GET https://graph.example/v1.0/users/delta") || strings.Contains(msg, "SECRETTOKEN") || strings.Contains(msg, "?") {
				t.Errorf("error does not name the request without its query: %s", msg)
			}
			if !isPermanentTransportError(err) || retryable(nil, err) || shouldRetryAuth(nil, err) {
				t.Error("a response over a limit would be retried")
			}
			if int64(len(body)) > tt.maxBytes {
				t.Errorf("%d bytes handed on, limit %d", len(body), tt.maxBytes)
			}
		})
	}
}

// chunked reads at most n bytes per Read.
type chunked struct {
	r io.Reader
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// An oversized page fails the sync at once: the error names the limit,
// the request and what to do; the page is not retried; a raised
// max_response_mb reads it.
func TestOversizedPageAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 300, Groups: 4, Seed: 5,
		Faults: graphsim.Faults{OversizeBytes: 3 << 20, BodyFaultPath: "/v1.0/users/delta"}})
	log, logs := logBuffer()
	c := New(log)
	c.opts.backoffBase = time.Millisecond
	start := time.Now()
	r, err := runSync(t, c, &connectorv1.SyncRequest{Config: simConfig(t, sim, map[string]any{"max_response_mb": 2})})
	t.Logf("after %v: %v", time.Since(start), err)
	if err == nil || r.last != nil && r.last.GetDone() {
		t.Fatal("the oversized page was accepted")
	}
	var p *Problem
	if !errors.As(err, &p) || p.Code != CodeResponseTooLarge {
		t.Fatalf("want a %s problem, got %v", CodeResponseTooLarge, err)
	}
	msg := err.Error()
	for _, want := range []string{"reading users", "GET " + sim.GraphURL() + "/users/delta", "larger than 2 MiB (max_response_mb); the connector stopped reading it. To fix: Graph's pages are normally about 1 MiB.", "raise max_response_mb"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "$select") || strings.Contains(msg, "token") {
		t.Errorf("error quotes the query: %s", msg)
	}
	assertNoSecrets(t, "error", msg)
	assertNoSecrets(t, "log", logs.String())
	if n := sim.Counters()["GET /v1.0/users/delta 200"]; n != 1 {
		t.Errorf("the oversized page was fetched %d times, want 1 (no retry)", n)
	}

	// The padding alone is harmless: a limit above it reads the tenant.
	sim.ResetCounters()
	ok := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, sim, map[string]any{"max_response_mb": 4})})
	if len(ok.users) != 300 || !ok.last.GetComplete() {
		t.Errorf("with max_response_mb 4: %v", ok.last.GetProgress())
	}
}

// Deeply nested JSON is refused before any parser sees it, quickly and
// without retries, in the delta reader (encoding/json) and in the SDK's
// typed requests (kiota's parse node).
func TestDeepNestingAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 30, Groups: 3, Seed: 5})
	cfg := simConfig(t, sim, nil)
	for _, depth := range []int{65, 100_000} {
		sim.SetFaults(graphsim.Faults{NestingDepth: depth, BodyFaultPath: "/v1.0/groups/delta"})
		sim.ResetCounters()
		start := time.Now()
		_, err := runSync(t, New(nil), &connectorv1.SyncRequest{Config: cfg, GroupTypes: connector.GroupKinds()})
		took := time.Since(start)
		t.Logf("depth %d, after %v: %v", depth, took, err)
		var p *Problem
		if !errors.As(err, &p) || p.Code != CodeResponseTooDeep || !strings.Contains(err.Error(), "reading groups") ||
			!strings.Contains(err.Error(), "/v1.0/groups/delta nests JSON deeper than 64 levels") {
			t.Fatalf("depth %d: want a %s problem, got %v", depth, CodeResponseTooDeep, err)
		}
		if took > hangGuard {
			t.Errorf("depth %d: took %v", depth, took)
		}
		if n := sim.Counters()["GET /v1.0/groups/delta 200"]; n != 1 {
			t.Errorf("depth %d: fetched %d times, want 1", depth, n)
		}
	}

	// TestConnection reads users through the SDK's typed models.
	sim.SetFaults(graphsim.Faults{NestingDepth: 100_000, BodyFaultPath: "/v1.0/users"})
	resp, err := New(nil).TestConnection(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := resp.GetChecks()[len(resp.GetChecks())-1]
	if resp.GetOk() || last.GetName() != CheckReadUsers || last.GetCode() != CodeResponseTooDeep || last.GetRemedy() == "" {
		t.Errorf("checks %v", resp.GetChecks())
	}

	// Without the check, what the parsers do: encoding/json (delta) and
	// kiota (typed requests, which validates with encoding/json first)
	// refuse nesting past 10,000 levels with a parse error; neither
	// recurses without bound nor crashes.
	for _, tt := range []struct {
		path  string
		depth int
		ok    bool
	}{{"/v1.0/users", 100_000, false}, {"/v1.0/users/delta", 100_000, false}, {"/v1.0/users", 9_000, true}} {
		sim.SetFaults(graphsim.Faults{NestingDepth: tt.depth, BodyFaultPath: tt.path})
		c := New(nil)
		c.opts.jsonDepth = 1 << 30
		start := time.Now()
		var ok bool
		var outcome string
		if tt.path == "/v1.0/users" {
			resp, err := c.TestConnection(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			last := resp.GetChecks()[len(resp.GetChecks())-1]
			ok, outcome = resp.GetOk(), last.GetName()+": "+last.GetDetail()
		} else {
			_, err := runSync(t, c, &connectorv1.SyncRequest{Config: cfg})
			ok, outcome = err == nil, fmt.Sprint(err)
		}
		took := time.Since(start)
		t.Logf("without the check, %s nested %d: %v: %s", tt.path, tt.depth, took, outcome)
		if ok != tt.ok || took > hangGuard {
			t.Errorf("%s nested %d: ok %v after %v, want ok %v", tt.path, tt.depth, ok, took, tt.ok)
		}
	}
}

// Invalid UTF-8 in a string does not crash either parser: it arrives as
// U+FFFD, valid UTF-8 the daemon can sanitise, and each string that held
// it is counted in Progress.sanitized, so that the job summary tells the
// admin that names were altered.
func TestInvalidUTF8AgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 30, Groups: 3, Seed: 6})
	cfg := simConfig(t, sim, nil)

	clean := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: cfg})
	for i, b := range clean.batches {
		if got := b.GetProgress().GetSanitized(); len(got) != 0 {
			t.Errorf("clean tenant, batch %d: sanitized %v, want none", i, got)
		}
	}

	victims := []graphsim.User{sim.Tenant().Users[0], sim.Tenant().Users[17]} // [0]: the one TestConnection reads
	sim.SetFaults(graphsim.Faults{InvalidUTF8Users: victims[0].ID + "," + victims[1].ID})
	r := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: cfg})
	for _, v := range victims {
		u := r.user(t, v.ID)
		if u == nil {
			t.Fatalf("the user %s with invalid UTF-8 was not sent", v.ID)
		}
		if name := u.GetDisplayName(); !utf8.ValidString(name) || !strings.HasPrefix(name, "Bad \ufffd") {
			t.Errorf("displayName %q", name)
		}
	}
	if len(r.users) != 30 {
		t.Errorf("%d users", len(r.users))
	}
	if got := r.last.GetProgress().GetSanitized(); len(got) != 1 || got[SanitizeInvalidUTF8] != 2 {
		t.Errorf("sanitized %v, want {%s: 2}", got, SanitizeInvalidUTF8)
	}
	var prev int64
	for i, b := range r.batches {
		n := b.GetProgress().GetSanitized()[SanitizeInvalidUTF8]
		if n < prev {
			t.Errorf("batch %d: sanitized went down from %d to %d", i, prev, n)
		}
		prev = n
	}

	// An incremental round that reads neither user again counts nothing.
	next := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: cfg, Cursor: r.last.GetCursor()})
	if got := next.last.GetProgress().GetSanitized(); len(got) != 0 {
		t.Errorf("incremental round without the users: sanitized %v, want none", got)
	}

	resp, err := New(nil).TestConnection(context.Background(), cfg)
	if err != nil || !resp.GetOk() {
		t.Errorf("TestConnection: %v %v", resp, err)
	}
}

// The scan counts each JSON string holding bytes that are not UTF-8 once,
// wherever the pieces of the body are cut, and only in answers that are
// passed on: read to their end, with a 2xx status.
func TestInvalidUTF8Count(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int64
	}{
		{"clean", `{"value":[{"displayName":"Zoë Ñandú 日本 😀","id":"1"}]}`, 0},
		{"graphsim's name", `{"value":[{"displayName":"` + graphsim.InvalidUTF8DisplayName + `"}]}`, 1},
		{"two strings", "[\"a\x80\", \"ok\", \"\xff\"]", 2},
		{"a name counts too", "{\"k\xc3\":\"v\"}", 1},
		{"stray continuation byte", "[\"\x80\"]", 1},
		{"overlong", "[\"\xc0\xaf\", \"\xe0\x80\xaf\"]", 2},
		{"surrogate", "[\"\xed\xa0\x80\"]", 1},
		{"above U+10FFFF", "[\"\xf4\x90\x80\x80\"]", 1},
		{"largest rune", "[\"\xf4\x8f\xbf\xbf\"]", 0},
		{"cut by the closing quote", "[\"\xe6\x97\"]", 1},
		{"cut by an escape", "[\"\xc3\\n\"]", 1},
		{"cut by ASCII", "[\"\xc3(\"]", 1},
		{"escapes are not bytes", `["\ud800 \u00e9 \" \\"]`, 0},
		{"outside strings: not counted", "[1,\n2]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for piece := 1; piece <= len(tt.body); piece++ {
				var n atomic.Int64
				lt := &limitTransport{next: &stubTransport{contentType: "application/json", body: tt.body, contentLength: -1},
					maxBytes: 1 << 20, maxDepth: maxJSONDepth, invalidUTF8: &n}
				req, _ := http.NewRequest(http.MethodGet, "https://graph.example/v1.0/users/delta", nil)
				resp, err := lt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadAll(&chunked{r: resp.Body, n: piece}); err != nil {
					t.Fatal(err)
				}
				// A Read after the end does not count again.
				_, _ = resp.Body.Read(make([]byte, 1))
				if n.Load() != tt.want {
					t.Fatalf("pieces of %d: counted %d, want %d", piece, n.Load(), tt.want)
				}
			}
		})
	}

	bad := `{"value":[{"displayName":"` + graphsim.InvalidUTF8DisplayName + `"}]}`
	for _, tt := range []struct {
		name   string
		status int
		cut    int // bytes read before giving up; 0: all
		json   bool
	}{
		{name: "an error answer", status: 503, json: true},
		{name: "a body not read to its end", status: 200, cut: len(bad) - 3, json: true},
		{name: "not JSON", status: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			stub := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				h := http.Header{}
				if tt.json {
					h.Set("Content-Type", "application/json")
				}
				return &http.Response{StatusCode: tt.status, Header: h, ContentLength: -1, Body: io.NopCloser(strings.NewReader(bad)), Request: req}, nil
			})
			lt := &limitTransport{next: stub, maxBytes: 1 << 20, maxDepth: maxJSONDepth, invalidUTF8: &n}
			req, _ := http.NewRequest(http.MethodGet, "https://graph.example/v1.0/users/delta", nil)
			resp, err := lt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			var r io.Reader = resp.Body
			if tt.cut > 0 {
				r = io.LimitReader(r, int64(tt.cut))
			}
			if _, err := io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
			if n.Load() != 0 {
				t.Errorf("counted %d, want 0", n.Load())
			}
		})
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// Hostile text passes through unchanged: the connector sends what Graph
// sent and the daemon sanitises it.
func TestHostileStringsAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 30, Groups: 3, Seed: 6})
	victim := sim.Tenant().Users[3]
	sim.SetFaults(graphsim.Faults{HostileUsers: victim.ID})
	r := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil)})
	u := r.user(t, victim.ID)
	if u.GetDisplayName() != graphsim.HostileDisplayName || u.GetMail() != graphsim.HostileMail || u.GetGivenName() != graphsim.HostileGivenName ||
		u.GetSurname() != graphsim.HostileSurname || u.GetDepartment() != graphsim.HostileDepartment || u.GetJobTitle() != graphsim.HostileJobTitle {
		t.Errorf("hostile user %v", u)
	}
}

// Objects whose id is not a GUID are dropped and counted in
// Progress.rejected, as are members without an id.
func TestNonGUIDIDsAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 1200, Groups: 8, Seed: 7, DeltaMembersPerPage: 5000})
	tn := sim.Tenant()
	all := tn.Groups[0] // "All Company": every user
	badUser := tn.Users[7]
	var badGroup graphsim.Group
	for _, g := range tn.Groups[1:] {
		if len(g.Members) > 0 {
			badGroup = g
			break
		}
	}
	// badUser's memberships in the groups kept are rejected one by one.
	wantNotGUID := int64(2)
	for _, g := range tn.Groups {
		if g.ID == badGroup.ID {
			continue
		}
		for _, m := range g.Members {
			if m.ID == badUser.ID {
				wantNotGUID++
			}
		}
	}
	sim.SetFaults(graphsim.Faults{NonGUIDIDs: badUser.ID + "," + badGroup.ID, MembersWithoutID: all.ID})
	log, logs := logBuffer()
	r := mustSync(t, New(log), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil), GroupTypes: connector.GroupKinds()})

	bad := graphsim.NonGUIDID(badUser.ID)
	for _, u := range r.users {
		if !isGUID(u.GetId()) {
			t.Errorf("user %q sent", u.GetId())
		}
	}
	for _, g := range r.groups {
		if !isGUID(g.GetId()) {
			t.Errorf("group %q sent", g.GetId())
		}
	}
	for gid, ids := range r.added {
		if !isGUID(gid) {
			t.Errorf("members of group %q sent", gid)
		}
		for _, id := range ids {
			if !isGUID(id) {
				t.Errorf("member %q of %s sent", id, gid)
			}
		}
	}
	if len(r.users) != len(tn.Users)-1 || r.user(t, badUser.ID) != nil {
		t.Errorf("%d users sent, want all but the one with a bad id", len(r.users))
	}
	if len(r.added[all.ID]) != len(all.Members)-1 {
		t.Errorf("All Company: %d members, want %d", len(r.added[all.ID]), len(all.Members)-1)
	}

	want := map[string]int64{RejectIDNotGUID: wantNotGUID, RejectMemberWithoutID: 1}
	var prev map[string]int64
	for i, b := range r.batches {
		got := b.GetProgress().GetRejected()
		for k, n := range prev {
			if got[k] < n {
				t.Errorf("batch %d: rejected[%s] went down from %d to %d", i, k, n, got[k])
			}
		}
		prev = got
	}
	if got := r.last.GetProgress().GetRejected(); len(got) != len(want) || got[RejectIDNotGUID] != want[RejectIDNotGUID] || got[RejectMemberWithoutID] != 1 {
		t.Errorf("rejected %v, want %v", got, want)
	}
	// The log tells of the first ones, the id clipped and quoted safely.
	if !strings.Contains(logs.String(), "whose id is not a GUID") || !strings.Contains(logs.String(), "without an id") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), `"reason":"id_not_guid"`); n > maxRejectLogs {
		t.Errorf("%d warnings logged, at most %d wanted", n, maxRejectLogs)
	}

	// An incremental round: the removal of a user whose id is not a GUID
	// is dropped too.
	if err := sim.DeleteUser(badUser.ID, true); err != nil {
		t.Fatal(err)
	}
	next := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil), Cursor: r.last.GetCursor(), GroupTypes: connector.GroupKinds()})
	for _, u := range next.users {
		if u.GetId() == bad || !isGUID(u.GetId()) {
			t.Errorf("incremental: user %q sent", u.GetId())
		}
	}
	if got := next.last.GetProgress().GetRejected()[RejectIDNotGUID]; got < 1 {
		t.Errorf("incremental: rejected %v", next.last.GetProgress().GetRejected())
	}
}

// An oversized token response fails the token check at once (azidentity
// retries it neither), with the limit named.
func TestOversizedTokenResponse(t *testing.T) {
	sim, err := graphsim.New(graphsim.Config{Users: 5, Groups: 2, Seed: 1, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	var tokens atomic.Int64
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			sim.ServeHTTP(w, r)
			return
		}
		tokens.Add(1)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		var tok map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil {
			t.Error(err)
		}
		tok["padding"] = strings.Repeat("x", 2<<20)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(tok)
	}))
	t.Cleanup(front.Close)
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"tenant": sim.Tenant().Domain, "client_id": sim.Config().ClientID, "client_secret": testSecret,
		"authority_host": front.URL + "/", "graph_url": front.URL + "/v1.0", "ca_file": "ca.pem", "max_response_mb": 1,
	})
	resp, err := New(nil).TestConnection(context.Background(), &connectorv1.Config{Json: b, BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	last := resp.GetChecks()[len(resp.GetChecks())-1]
	t.Logf("token check: %s | %s | %s", last.GetCode(), last.GetDetail(), last.GetRemedy())
	if resp.GetOk() || last.GetName() != CheckToken || last.GetCode() != CodeResponseTooLarge ||
		!strings.Contains(last.GetDetail(), "/oauth2/v2.0/token is larger than 1 MiB") ||
		!strings.Contains(last.GetRemedy(), "raise max_response_mb") || !strings.Contains(last.GetRemedy(), "authority_host") {
		t.Errorf("checks %v", resp.GetChecks())
	}
	assertNoSecrets(t, "detail", last.GetDetail()+last.GetRemedy())
	if n := tokens.Load(); n != 1 {
		t.Errorf("the token request was sent %d times, want 1", n)
	}
}

// FuzzJSONDepth checks the streaming depth scan against encoding/json on
// valid JSON fed in pieces of any size: it refuses exactly the texts
// nested deeper than its limit, whatever strings and escapes they hold.
func FuzzJSONDepth(f *testing.F) {
	for _, seed := range []string{`[[[]]]`, `{"a":{"b":[1,{"c":"]]]"}]}}`, `["\"[[[[", "\\", "[{"]`, `"{{{{"`, `[[],[[]],{"x":[[[]]]}]`} {
		f.Add([]byte(seed), uint8(1))
	}
	const limit = 3
	f.Fuzz(func(t *testing.T, body []byte, piece uint8) {
		if !json.Valid(body) {
			return
		}
		depth, maxDepth := 0, 0
		dec := json.NewDecoder(strings.NewReader(string(body)))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('['), json.Delim('{'):
				depth++
				maxDepth = max(maxDepth, depth)
			case json.Delim(']'), json.Delim('}'):
				depth--
			}
		}
		s := &depthScanner{max: limit}
		ok := true
		for p := body; len(p) > 0 && ok; {
			n := min(len(p), int(piece)+1)
			ok = s.feed(p[:n])
			p = p[n:]
		}
		if ok != (maxDepth <= limit) {
			t.Errorf("%q nests %d deep; scan in pieces of %d says within %d: %v", body, maxDepth, int(piece)+1, limit, ok)
		}
	})
}

// FuzzInvalidUTF8Count checks the scan's count against encoding/json's
// tokens: on valid JSON fed in pieces of any size, it counts exactly the
// strings whose raw bytes are not valid UTF-8, which the decoders replace
// with U+FFFD.
func FuzzInvalidUTF8Count(f *testing.F) {
	for _, seed := range []string{`["a"]`, "[\"\xc3\xa9\", \"\xc3\"]", "{\"\xff\":\"\xe2\x82\xac\\n\xed\xa0\x80\"}", `"\\ud800"`} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, piece uint8) {
		if !json.Valid(body) {
			return
		}
		var want int64
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			start := dec.InputOffset()
			tok, err := dec.Token()
			if err != nil {
				break
			}
			// The raw text from the last token holds the string and
			// ASCII separators, which do not change its validity.
			if _, ok := tok.(string); ok && !utf8.Valid(body[start:dec.InputOffset()]) {
				want++
			}
		}
		s := &depthScanner{max: 1 << 30}
		for p := body; len(p) > 0; {
			n := min(len(p), int(piece)+1)
			s.feed(p[:n])
			p = p[n:]
		}
		if s.invalidUTF8 != want {
			t.Errorf("%q in pieces of %d: counted %d strings with invalid UTF-8, want %d", body, int(piece)+1, s.invalidUTF8, want)
		}
	})
}
