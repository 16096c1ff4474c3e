package api

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestTokenExpired(t *testing.T) {
	at := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		now     time.Time
		expired bool
	}{
		{name: "never", now: at.AddDate(50, 0, 0)},
		{name: "before", expires: at, now: at.Add(-time.Nanosecond)},
		{name: "at the instant", expires: at, now: at, expired: true},
		{name: "after", expires: at, now: at.Add(time.Second), expired: true},
		{name: "other zone, same instant", expires: at, now: at.In(time.FixedZone("CEST", 2*3600)), expired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewToken([]byte("c2VjcmV0LXRva2VuLTEyMzQ1Njc4"), tt.expires).Expired(tt.now); got != tt.expired {
				t.Errorf("Expired = %v; want %v", got, tt.expired)
			}
		})
	}
	a, b := NewToken([]byte("token-a-0123456789"), time.Time{}), NewToken([]byte("token-b-0123456789"), time.Time{})
	if !strings.HasPrefix(a.ID(), "sha256:") || len(a.ID()) != len("sha256:")+8 || a.ID() == b.ID() ||
		strings.Contains(a.ID(), "token") {
		t.Errorf("IDs %q and %q: want distinct sha256:<8 hex digits>", a.ID(), b.ID())
	}
}

// Several tokens, each with its own expiry, on an injected clock.
func TestAuthenticatedByExpiry(t *testing.T) {
	const (
		old     = "old-token-0123456789abcdef"
		current = "new-token-abcdef0123456789"
		wrong   = "WrongTokenValue-1234567890"
	)
	t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0.Add(-time.Hour)
	toks := []Token{NewToken([]byte(old), t0), NewToken([]byte(current), time.Time{})}
	core, logs := observer.New(zap.InfoLevel)
	s, _ := newTestServer(t)
	s.log = zap.New(core)
	h := s.AuthenticatedBy(func() []Token {
		mu.Lock()
		defer mu.Unlock()
		return toks
	}, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	const expiredChallenge = `Bearer realm="dirsync", error="invalid_token", error_description="the token expired"`
	steps := []struct {
		name      string
		at        time.Time
		token     string // "" : no Authorization header
		code      int
		challenge string
		message   string
	}{
		{name: "old token before its expiry", at: t0.Add(-time.Second), token: old, code: 200},
		{name: "new token, overlapping", at: t0.Add(-time.Second), token: current, code: 200},
		{name: "old token at its expiry", at: t0, token: old, code: 401, challenge: expiredChallenge,
			message: "the bearer token expired: use a current token from the api block's token_file"},
		{name: "old token later", at: t0.AddDate(0, 1, 0), token: old, code: 401, challenge: expiredChallenge, message: "expired"},
		// Refused again, but not logged again within expiredLogEvery.
		{name: "old token retried a minute later", at: t0.AddDate(0, 1, 0).Add(time.Minute), token: old, code: 401,
			challenge: expiredChallenge, message: "expired"},
		{name: "new token after the old one expired", at: t0.AddDate(0, 1, 0), token: current, code: 200},
		{name: "wrong token", at: t0, token: wrong, code: 401, challenge: `Bearer realm="dirsync", error="invalid_token"`,
			message: "is not an API token"},
		{name: "no token", at: t0, code: 401, challenge: `Bearer realm="dirsync"`, message: "Authorization: Bearer <token>"},
		{name: "public route with an expired token", at: t0, token: old, code: 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			mu.Lock()
			now = st.at
			mu.Unlock()
			path := "/v1/status"
			if strings.HasPrefix(st.name, "public") {
				path = "/healthz"
			}
			var header []string
			if st.token != "" {
				header = []string{"Authorization", "Bearer " + st.token}
			}
			rec := get(t, h, path, header...)
			if rec.Code != st.code {
				t.Fatalf("%d %s; want %d", rec.Code, rec.Body, st.code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != st.challenge {
				t.Errorf("WWW-Authenticate %q; want %q", got, st.challenge)
			}
			for k, vs := range rec.Header() {
				for _, v := range vs {
					for _, tok := range []string{old, current, wrong} {
						if strings.Contains(v, tok) {
							t.Errorf("header %s echoes a token", k)
						}
					}
				}
			}
			for _, tok := range []string{old, current, wrong} {
				if strings.Contains(rec.Body.String(), tok) {
					t.Errorf("the answer echoes a token: %s", rec.Body)
				}
			}
			if st.code == 401 {
				if e := decode[Error](t, rec); !strings.Contains(e.Error, st.message) {
					t.Errorf("401 message %q; want %q", e.Error, st.message)
				}
			}
		})
	}

	// An expired use is logged by the token's ID, for finding the client,
	// at most once per expiredLogEvery.
	var expiredLogs int
	for _, e := range logs.All() {
		for _, f := range e.Context {
			for _, tok := range []string{old, current, wrong} {
				if strings.Contains(f.String, tok) {
					t.Errorf("log %q carries a token in %s", e.Message, f.Key)
				}
			}
		}
		if strings.Contains(e.Message, "token expired") {
			expiredLogs++
			if e.ContextMap()["token_id"] != toks[0].ID() {
				t.Errorf("expired-token log names %v; want %s", e.ContextMap()["token_id"], toks[0].ID())
			}
		}
	}
	if expiredLogs != 2 {
		t.Errorf("%d expired-token log lines; want 2", expiredLogs)
	}

	t.Run("a token removed by a reload is refused at once", func(t *testing.T) {
		mu.Lock()
		toks, now = toks[1:], t0.Add(-time.Hour)
		mu.Unlock()
		if rec := get(t, h, "/v1/status", "Authorization", "Bearer "+old); rec.Code != 401 ||
			strings.Contains(rec.Header().Get("WWW-Authenticate"), "expired") {
			t.Errorf("removed token: %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
		if rec := get(t, h, "/v1/status", "Authorization", "Bearer "+current); rec.Code != 200 {
			t.Errorf("remaining token: %d", rec.Code)
		}
	})
	t.Run("no token configured refuses all", func(t *testing.T) {
		h := s.AuthenticatedBy(func() []Token { return nil }, time.Now)
		for _, tok := range []string{old, current} {
			if rec := get(t, h, "/v1/status", "Authorization", "Bearer "+tok); rec.Code != 401 {
				t.Errorf("%d", rec.Code)
			}
		}
	})
}
