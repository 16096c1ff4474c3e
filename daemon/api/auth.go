package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Realm is the bearer token realm named in WWW-Authenticate.
const Realm = "dirsync"

// Token is one accepted API bearer token. It keeps only the token's
// SHA-256, so neither a Token nor anything printed from it carries the
// token itself.
type Token struct {
	hash [sha256.Size]byte
	// Expires is when the token stops being accepted; zero means never.
	Expires time.Time
}

// NewToken returns the Token for secret, accepted until expires (zero:
// for ever). Surrounding white space is not trimmed: parse first.
func NewToken(secret []byte, expires time.Time) Token {
	return Token{hash: sha256.Sum256(secret), Expires: expires}
}

// ID names the token in logs and messages without revealing it: the
// first 8 hex digits of its SHA-256. A token of at least 16 random
// characters cannot be recovered or guessed from 32 bits of its hash.
func (t Token) ID() string {
	return "sha256:" + hex.EncodeToString(t.hash[:4])
}

// Expired reports whether the token is no longer accepted at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// Authenticated returns the handler for a TCP listener with a single
// token that never expires: AuthenticatedBy with token as the only
// entry. Surrounding white space (a trailing newline of the file) is
// ignored, and while token returns nothing every protected route is
// refused.
func (s *Server) Authenticated(token func() []byte) http.Handler {
	return s.AuthenticatedBy(func() []Token {
		want := bytes.TrimSpace(token())
		if len(want) == 0 {
			return nil
		}
		return []Token{NewToken(want, time.Time{})}
	}, time.Now)
}

// expiredLogEvery is how often the use of one expired token is logged.
const expiredLogEvery = 10 * time.Minute

// AuthenticatedBy returns the handler for a TCP listener: the same routes
// as ServeHTTP, but every route that is not Public answers 401 unless the
// request carries "Authorization: Bearer <token>" with one of the tokens
// that has not expired by now(). A request for a path that is no route
// also needs a token, so the API does not tell an unauthenticated caller
// which routes exist.
//
// tokens is called for every request, so a token file read again on
// reload applies at once; several tokens let an old and a new one overlap
// while clients move over. The presented token is hashed and compared
// with every configured hash in constant time, so neither the tokens'
// content, their length nor which entry matched leaks through timing. The
// presented token is never echoed or logged; an expired one is logged by
// its ID, so an admin can find the client that still uses it.
func (s *Server) AuthenticatedBy(tokens func() []Token, now func() time.Time) http.Handler {
	return s.AuthenticatedWith(tokens, now, DefaultLimits)
}

// AuthenticatedWith is AuthenticatedBy with the given limits. The token is
// checked on the headers alone, before any of the body is read: a refused
// request is answered at once and its connection closed, whatever body it
// announced. An accepted one then has lim.BodyTimeout for its body and
// shares lim.PerClient slots with the other requests of its token.
func (s *Server) AuthenticatedWith(tokens func() []Token, now func() time.Time, lim Limits) http.Handler {
	adm := newAdmission(lim)
	// An expired token is logged once per expiredLogEvery, not per
	// request: a client retrying with it must not flood the log. The map
	// holds at most one entry per line of token_file.
	var logMu sync.Mutex
	logged := map[string]time.Time{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); s.public[pattern] {
			s.mux.ServeHTTP(w, r)
			return
		}
		presented, ok := bearer(r.Header.Get("Authorization"))
		// A refused request's body is never read: closing the connection
		// keeps the server from draining it, too.
		refuse := func() { w.Header().Set("Connection", "close") }
		if !ok {
			refuse()
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
			writeErr(w, http.StatusUnauthorized, "this route needs the API token: send the header "+
				"\"Authorization: Bearer <token>\" with a token from the api block's token_file")
			return
		}
		toks := tokens()
		match := matchToken(toks, []byte(presented))
		if match < 0 {
			refuse()
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token"`)
			writeErr(w, http.StatusUnauthorized, "the bearer token is not an API token "+
				"(the tokens are the lines of the api block's token_file, read again on reload)")
			return
		}
		if tok := toks[match]; tok.Expired(now()) {
			logMu.Lock()
			last, seen := logged[tok.ID()]
			report := s.log != nil && (!seen || now().Sub(last) >= expiredLogEvery)
			if report {
				logged[tok.ID()] = now()
			}
			logMu.Unlock()
			if report {
				s.log.Warn("API request refused: its token expired; give the client a current token from token_file",
					zap.String("token_id", tok.ID()), zap.Time("expired_at", tok.Expires), zap.String("remote", r.RemoteAddr),
					zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Duration("logged_at_most_every", expiredLogEvery))
			}
			refuse()
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token", error_description="the token expired"`)
			writeErr(w, http.StatusUnauthorized, "the bearer token expired: use a current token from the api block's token_file "+
				"(a line's expires= says until when its token is accepted)")
			return
		}
		adm.serve(w, r, toks[match].ID(), s.mux)
	})
}

// matchToken returns the index of the entry of toks that presented is,
// or -1. The presented token is hashed and compared with every entry in
// constant time, so neither the tokens' content, their length nor which
// entry matched leaks through timing.
func matchToken(toks []Token, presented []byte) int {
	got := sha256.Sum256(presented)
	match := -1
	for i := range toks {
		// No early exit: every entry costs the same.
		eq := subtle.ConstantTimeCompare(got[:], toks[i].hash[:])
		match = subtle.ConstantTimeSelect(eq&boolInt(match < 0), i, match)
	}
	return match
}

// Match returns the entry of toks that presented is, expired or not, as
// the TCP API compares a bearer token: the web console's login uses it,
// so that both accept the same tokens the same way.
func Match(toks []Token, presented []byte) (Token, bool) {
	if i := matchToken(toks, presented); i >= 0 {
		return toks[i], true
	}
	return Token{}, false
}

// Same reports whether t and o are the same token (their hashes are
// equal), in constant time: a console session stays bound to the token
// it logged in with, and ends when that token leaves the token file.
func (t Token) Same(o Token) bool {
	return subtle.ConstantTimeCompare(t.hash[:], o.hash[:]) == 1
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
