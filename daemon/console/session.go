package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dirsync/dirsync/daemon/api"
)

// Cookie names. The session cookie holds a random session ID, never the
// API token; the login cookie holds the login form's CSRF token.
const (
	SessionCookie = "dirsync_session"
	LoginCookie   = "dirsync_login"
)

// DefaultIdleTimeout ends a session nobody used for this long.
const DefaultIdleTimeout = 12 * time.Hour

// maxSessions bounds the sessions held in memory: a client that logs in
// again and again (it holds a token, so it is no stranger) cannot grow
// the daemon's memory; the least recently used session goes first.
const maxSessions = 1000

// session is one logged-in browser. It keeps the token it logged in
// with only as an api.Token (a hash), to end when that token leaves the
// token file or expires.
type session struct {
	id       string
	csrf     string
	token    api.Token
	lastSeen time.Time
}

// sessions is the in-memory session store. A restart of the daemon logs
// everyone out, which is the safe side for an appliance's console.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	idle time.Duration
}

func newSessions(idle time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for tok at now.
func (s *sessions) create(tok api.Token, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.byID) >= maxSessions {
		var oldest *session
		for _, x := range s.byID {
			if oldest == nil || x.lastSeen.Before(oldest.lastSeen) {
				oldest = x
			}
		}
		delete(s.byID, oldest.id)
	}
	x := &session{id: randomToken(), csrf: randomToken(), token: tok, lastSeen: now}
	s.byID[x.id] = x
	return x
}

// lookup returns the session with id if it is still valid at now: not
// idle for longer than the idle timeout, and its token still one of
// toks and not expired. A session that is no longer valid is dropped.
func (s *sessions) lookup(id string, toks []api.Token, now time.Time) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	valid := now.Sub(x.lastSeen) < s.idle
	if valid {
		held := false
		for _, t := range toks {
			if t.Same(x.token) && !t.Expired(now) {
				held = true
			}
		}
		valid = held
	}
	if !valid {
		delete(s.byID, id)
		return nil, false
	}
	x.lastSeen = now
	cp := *x
	return &cp, true
}

// end deletes the session with id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// sameToken compares two CSRF tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin reports whether a state-changing request comes from the
// console's own pages: its Origin header, or else its Referer, when the
// browser sends one, names this host and scheme. Browsers send Origin
// on every cross-site POST, so a forged form from another site fails
// here even before the CSRF token is compared.
func sameOrigin(r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	want := scheme + "://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == want
	}
	return true
}

// cookie returns a console cookie: HttpOnly, SameSite=Strict, limited to
// the console's paths, and Secure whenever the listener serves HTTPS.
func cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/console", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode}
}
