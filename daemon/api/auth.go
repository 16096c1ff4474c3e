package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Realm is the bearer token realm named in WWW-Authenticate.
const Realm = "dirsync"

// Authenticated returns the handler for a TCP listener: the same routes
// as ServeHTTP, but every route that is not Public answers 401 unless the
// request carries "Authorization: Bearer <token>". A request for a path
// that is no route also needs the token, so the API does not tell an
// unauthenticated caller which routes exist.
//
// token is called for every request, so a token file read again on reload
// applies at once; surrounding white space (a trailing newline of the
// file) is ignored, and while token returns nothing every protected route
// is refused. Tokens are compared as SHA-256 hashes in constant time, so
// neither their content nor their length leaks through timing, and the
// presented token is never echoed or logged.
func (s *Server) Authenticated(token func() []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); s.public[pattern] {
			s.mux.ServeHTTP(w, r)
			return
		}
		presented, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
			writeErr(w, http.StatusUnauthorized, "this route needs the API token: send the header "+
				"\"Authorization: Bearer <token>\" with the token from the api block's token_file")
			return
		}
		want := bytes.TrimSpace(token())
		got, expected := sha256.Sum256([]byte(presented)), sha256.Sum256(want)
		if len(want) == 0 || subtle.ConstantTimeCompare(got[:], expected[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token"`)
			writeErr(w, http.StatusUnauthorized, "the bearer token is not the API token "+
				"(it is the content of the api block's token_file, read again on reload)")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
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
