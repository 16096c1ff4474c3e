package service

import (
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/config"
)

// sameToken reports whether e is the token secret expiring at expires.
func sameToken(e tokenEntry, secret string, expires time.Time) bool {
	hash := e.tok
	hash.Expires = time.Time{}
	return hash == api.NewToken([]byte(secret), time.Time{}) && e.tok.Expires.Equal(expires)
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{name: "good, trailing newline", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4\n", mode: 0o600, want: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"},
		{name: "owner read-only", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o400, want: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"},
		{name: "readable by group", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o640, wantErr: "is accessible by other users (mode 0640): dirsyncd refuses to use it while others can read it; run `chmod 600"},
		{name: "readable by all", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o644, wantErr: "accessible by other users"},
		{name: "writable by group", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o620, wantErr: "accessible by other users"},
		{name: "too short", content: "q7Zx\n", mode: 0o600, wantErr: "line 1 holds a token shorter than 16 characters"},
		{name: "two tokens", content: "c2VjcmV0LXRva2Vu MTIzNDU2Nzg5MA==", mode: 0o600, wantErr: "put each token on its own line"},
		{name: "empty", content: "", mode: 0o600, wantErr: "holds no token"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "token"+string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := readTokens(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("err = %v; want %q naming %s", err, tt.wantErr, p)
				}
				for _, f := range strings.Fields(tt.content) {
					if strings.Contains(err.Error(), f) {
						t.Fatalf("the error quotes the token: %v", err)
					}
				}
				return
			}
			if err != nil || len(got) != 1 || !sameToken(got[0], tt.want, time.Time{}) {
				t.Fatalf("readTokens = %+v, %v; want the one token %q", got, err, tt.want)
			}
		})
	}
	// A systemd credential may look group-readable (ACL mask): allowed.
	cred := t.TempDir()
	p := filepath.Join(cred, "api-token")
	if err := os.WriteFile(p, []byte("c2VjcmV0LXRva2VuLTEyMzQ1Njc4"), 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := readTokens(p); err == nil {
		t.Error("a group-readable token outside $CREDENTIALS_DIRECTORY was accepted")
	}
	t.Setenv("CREDENTIALS_DIRECTORY", cred)
	if _, err := readTokens(p); err != nil {
		t.Errorf("credential: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := readTokens(missing); err == nil || !strings.Contains(err.Error(), "token_file "+missing+" does not exist; create it with") ||
		!errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestParseTokens(t *testing.T) {
	const (
		a = "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"
		b = "bmV3LXRva2VuLWFmdGVyLXJvdGF0aW9u"
	)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	type want struct {
		line    int
		secret  string
		expires time.Time
	}
	tests := []struct {
		name    string
		content string
		want    []want
		wantErr string
	}{
		{name: "original format", content: a + "\n", want: []want{{1, a, time.Time{}}}},
		{name: "CRLF and surrounding blanks", content: "  " + a + " \r\n", want: []want{{1, a, time.Time{}}}},
		{name: "rotation overlap", content: "# old, until the clients moved\n" + a + " expires=2026-07-01T00:00:00Z\n\n" + b + "\n",
			want: []want{{2, a, at("2026-07-01T00:00:00Z")}, {4, b, time.Time{}}}},
		{name: "offset time and trailing comment", content: a + "\texpires=2026-07-01T02:00:00+02:00 # laptop\n",
			want: []want{{1, a, at("2026-07-01T00:00:00Z")}}},
		{name: "comment after the token", content: a + " # never expires\n", want: []want{{1, a, time.Time{}}}},
		{name: "only comments", content: "# nothing yet\n\n", wantErr: "holds no token"},
		{name: "short second token", content: a + "\nshort-token\n", wantErr: "line 2 holds a token shorter than 16"},
		{name: "two tokens on a line", content: a + " " + b + "\n", wantErr: "line 1: after the token only one expires="},
		{name: "unknown attribute", content: a + " expiry=2026-07-01T00:00:00Z\n", wantErr: "line 1: after the token only one expires="},
		{name: "expires twice", content: a + " expires=2026-07-01T00:00:00Z expires=2027-07-01T00:00:00Z\n", wantErr: "only one expires="},
		{name: "date without time", content: a + " expires=2026-07-01\n", wantErr: `line 1: expires="2026-07-01" is not an RFC3339 time`},
		{name: "empty expires", content: a + " expires=\n", wantErr: "is not an RFC3339 time"},
		{name: "repeated token", content: a + "\n" + a + " expires=2026-07-01T00:00:00Z\n", wantErr: "line 2 repeats the token of line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTokens("/etc/dirsync/api-token", []byte(tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "/etc/dirsync/api-token") {
					t.Fatalf("err = %v; want %q naming the file", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), a) || strings.Contains(err.Error(), b) || strings.Contains(err.Error(), "short-token") {
					t.Fatalf("the error quotes a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d tokens; want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				if got[i].line != w.line || !sameToken(got[i], w.secret, w.expires) {
					t.Errorf("token %d: line %d, expires %s; want line %d, %q expiring %s", i, got[i].line, got[i].tok.Expires, w.line, w.secret, w.expires)
				}
			}
		})
	}
}

// Loading warns of expired and soon-expiring tokens by ID, never by value.
func TestTokenExpiryWarnings(t *testing.T) {
	const (
		a = "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"
		b = "bmV3LXRva2VuLWFmdGVyLXJvdGF0aW9u"
	)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		content string
		warns   []string // messages expected, in order
	}{
		{name: "no expiry", content: a + "\n"},
		{name: "far", content: a + " expires=2026-06-09T12:00:01Z\n"},
		{name: "within 7 days", content: a + " expires=2026-06-08T12:00:00Z\n" + b + "\n", warns: []string{"expires soon"}},
		{name: "expired, another current", content: a + " expires=2026-06-01T12:00:00Z\n" + b + "\n", warns: []string{"has expired"}},
		{name: "all expired", content: a + " expires=2026-05-01T00:00:00Z\n" + b + " expires=2026-06-01T11:59:59Z\n",
			warns: []string{"has expired", "has expired", "every API token in token_file has expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "api-token")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			core, logs := observer.New(zap.WarnLevel)
			var c credentials
			if err := c.load(config.API{Listen: "127.0.0.1:0", TokenFile: p}, zap.New(core), now); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range logs.All() {
				got = append(got, e.Message)
				for _, f := range e.Context {
					if strings.Contains(f.String, a) || strings.Contains(f.String, b) {
						t.Errorf("log line %q carries a token in %s", e.Message, f.Key)
					}
				}
				if e.Message != "every API token in token_file has expired: the TCP API refuses every route but /healthz, /readyz, /metrics and /v1/openapi.yaml until you add a current token and reload (SIGHUP)" &&
					!strings.HasPrefix(e.ContextMap()["token_id"].(string), "sha256:") {
					t.Errorf("log line %q names no token_id: %v", e.Message, e.ContextMap())
				}
			}
			if len(got) != len(tt.warns) {
				t.Fatalf("logged %q; want %q", got, tt.warns)
			}
			for i, w := range tt.warns {
				if !strings.Contains(got[i], w) {
					t.Errorf("log %d = %q; want %q", i, got[i], w)
				}
			}
		})
	}
}

// The TCP API over a real listener: the tokens of the file are accepted,
// an expired one is refused with its own challenge, and a reload applies
// a rotation at once.
func TestTCPAPITokensAndReload(t *testing.T) {
	const (
		old   = "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"
		fresh = "bmV3LXRva2VuLWFmdGVyLXJvdGF0aW9u"
	)
	dir := t.TempDir()
	file := filepath.Join(dir, "api-token")
	if err := os.WriteFile(file, []byte(old+" expires=2026-06-02T00:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	log := zaptest.NewLogger(t)
	a := config.API{Listen: "127.0.0.1:0", TokenFile: file}
	tcp, err := startTCPAPI(a, api.NewServer(nil, nil, log), log, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.stop()
	// /v1/nothing is no route: 404 past the token check, 401 before it.
	call := func(token string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+tcp.addr+"/v1/nothing", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
	}
	if code, _, body := call(old); code != http.StatusNotFound {
		t.Fatalf("a current token: %d %s", code, body)
	}
	mu.Lock()
	now = time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)
	mu.Unlock()
	code, challenge, body := call(old)
	if code != http.StatusUnauthorized || !strings.Contains(challenge, `error_description="the token expired"`) || strings.Contains(body, old) {
		t.Fatalf("an expired token: %d %q %s", code, challenge, body)
	}
	// Rotation: a new line, SIGHUP; both work until the old one is removed.
	if err := os.WriteFile(file, []byte(old+" expires=2026-06-09T00:00:00Z\n"+fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tcp.reload(a); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		if code, _, body := call(tok); code != http.StatusNotFound {
			t.Errorf("after adding a token: %d %s", code, body)
		}
	}
	if err := os.WriteFile(file, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tcp.reload(a); err != nil {
		t.Fatal(err)
	}
	if code, challenge, _ := call(old); code != http.StatusUnauthorized || strings.Contains(challenge, "expired") {
		t.Errorf("a removed token: %d %q; want 401 without the expiry description", code, challenge)
	}
	if code, _, _ := call(fresh); code != http.StatusNotFound {
		t.Errorf("the new token after the old one's removal: %d", code)
	}
	// A reload that fails (a loose mode) keeps the tokens in force.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tcp.reload(a); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("reload of a 0644 token file: %v", err)
	}
	if code, _, _ := call(fresh); code != http.StatusNotFound {
		t.Errorf("the token after a refused reload: %d", code)
	}
}

func TestReadiness(t *testing.T) {
	r := &readiness{stallFor: 10 * time.Second}
	t0 := time.Unix(1_790_000_000, 0)
	steps := []struct {
		seq, lag uint64
		at       time.Duration
		ready    bool
	}{
		{seq: 10, lag: 0, at: 0, ready: true},
		{seq: 10, lag: 500, at: 2 * time.Second, ready: true},   // behind, but only just
		{seq: 300, lag: 200, at: 9 * time.Second, ready: true},  // catching up
		{seq: 300, lag: 200, at: 18 * time.Second, ready: true}, // 9 s without moving
		{seq: 300, lag: 200, at: 20 * time.Second, ready: false},
		{seq: 500, lag: 0, at: 21 * time.Second, ready: true},
	}
	for i, s := range steps {
		r.observe(s.seq, s.lag, t0.Add(s.at))
		err := r.stalled(t0.Add(s.at), r.stallFor)
		if (err == nil) != s.ready {
			t.Errorf("step %d (seq %d, lag %d at %s): err = %v; want ready %v", i, s.seq, s.lag, s.at, err, s.ready)
		}
	}
}

// Liveness fails once the read models lag without advancing, or a job
// queue stands still, for the stall limit; time without lag (or without
// NATS, observed as no lag) does not count, and the stall ends when the
// projector moves.
func TestLiveness(t *testing.T) {
	t0 := time.Unix(1_790_000_000, 0)
	var queueErr error
	l := &liveness{ready: &readiness{stallFor: 10 * time.Second}, limit: time.Minute,
		stalled: func(time.Time, time.Duration) error { return queueErr }}
	steps := []struct {
		seq, lag uint64
		at       time.Duration
		queue    error
		alive    bool
	}{
		{seq: 10, lag: 0, at: 0, alive: true},
		{seq: 10, lag: 0, at: 5 * time.Minute, alive: true}, // idle for long: fine
		{seq: 10, lag: 3, at: 6 * time.Minute, alive: true}, // a lag appears: the clock starts
		{seq: 10, lag: 3, at: 6*time.Minute + 59*time.Second, alive: true},
		{seq: 10, lag: 3, at: 7 * time.Minute, alive: false},               // a minute without moving
		{seq: 10, lag: 0, at: 8 * time.Minute, alive: true},                // NATS gone: observed as no lag
		{seq: 10, lag: 3, at: 8*time.Minute + 30*time.Second, alive: true}, // back: a new clock
		{seq: 12, lag: 1, at: 9*time.Minute + 20*time.Second, alive: true}, // moved
		{seq: 13, lag: 0, at: 9*time.Minute + 21*time.Second, queue: errors.New("connector demo: job j1 has waited 2m to start"), alive: false},
	}
	for i, s := range steps {
		queueErr = s.queue
		l.ready.observe(s.seq, s.lag, t0.Add(s.at))
		err := l.check(t0.Add(s.at))
		if (err == nil) != s.alive {
			t.Errorf("step %d (seq %d, lag %d at %s): err = %v; want alive %v", i, s.seq, s.lag, s.at, err, s.alive)
		}
	}
}
