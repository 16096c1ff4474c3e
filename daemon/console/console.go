// Package console is the admin's web console: server-rendered pages over
// the HTTP API, served by dirsyncd on the api block's TCP listener (the
// same TLS and the same tokens). An admin logs in with an API token once;
// a session cookie (HttpOnly, SameSite=Strict, Secure on HTTPS) carries a
// random session ID from then on, and every state-changing form carries a
// per-session CSRF token. The pages read and act through the API's own
// handler in this process (api.NewInProcessClient), so they show what
// the API answers and re-implement none of it. Everything the pages need
// is embedded in the binary; they read fine with JavaScript off, and a
// small script (static/console.js) keeps status, job and connector blocks
// current without reloading.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console lives on the api listener.
const Prefix = "/console/"

// Options configure a Console.
type Options struct {
	// API is the API's own handler, without token (api.Server): the
	// console calls it in this process.
	API http.Handler
	// Tokens returns the API tokens in force (the token file as last
	// read); a session ends when its token is no longer among them.
	Tokens func() []api.Token
	// Now is the clock sessions and tokens expire by; time.Now if nil.
	Now func() time.Time
	// IdleTimeout ends unused sessions; DefaultIdleTimeout if zero.
	IdleTimeout time.Duration
	// Log is where the console says who logged in and out (by token ID,
	// never the token).
	Log *zap.Logger
}

// Console serves the web console.
type Console struct {
	api      *api.Client
	apiH     http.Handler
	tokens   func() []api.Token
	now      func() time.Time
	log      *zap.Logger
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	// refusals keeps a client that guesses tokens from flooding the log.
	refusals logLimit
}

// refusalLogEvery is how often a refused login is logged at most.
const refusalLogEvery = time.Minute

// logLimit lets one log line through per refusalLogEvery and counts the
// events it held back.
type logLimit struct {
	mu   sync.Mutex
	last time.Time
	held int
}

// take reports whether to log now, and how many events were held back
// before this one.
func (l *logLimit) take(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogEvery {
		l.held++
		return 0, false
	}
	n := l.held
	l.last, l.held = now, 0
	return n, true
}

// New builds the console; it fails only if its embedded templates do
// not parse, which a test rules out.
func New(o Options) (*Console, error) {
	if o.API == nil || o.Tokens == nil {
		return nil, errors.New("console: Options.API and Options.Tokens are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{api: api.NewInProcessClient(o.API, "console"), apiH: o.API, tokens: o.Tokens, now: o.Now, log: o.Log,
		sessions: newSessions(o.IdleTimeout), pages: pages, mux: http.NewServeMux()}
	c.routes()
	return c, nil
}

// Mount returns the handler of the api listener with the console on it:
// "/" sends a browser to the console, Prefix is the console's, and every
// other path goes to next (the API behind its bearer tokens).
func (c *Console) Mount(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, Prefix, http.StatusFound)
		case r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, Prefix):
			c.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// ServeHTTP serves the console's own paths, with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No inline script or style anywhere: the page's script and style are
	// files of the console's own origin.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

// handler is a console handler that runs for a logged-in session.
type handler func(w http.ResponseWriter, r *http.Request, s *session)

func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(static)))
	c.mux.Handle("GET "+Prefix+"static/", files)
	c.mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix, http.StatusFound) })
	c.mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	c.mux.HandleFunc("POST "+Prefix+"login", c.login)

	page := func(pattern string, h handler) { c.mux.HandleFunc(pattern, c.authed(h, false)) }
	fragment := func(pattern string, h handler) { c.mux.HandleFunc(pattern, c.authed(h, true)) }
	action := func(pattern string, h handler) { c.mux.HandleFunc(pattern, c.authed(c.checked(h), false)) }

	page("GET "+Prefix+"{$}", c.connectorsPage)
	fragment("GET "+Prefix+"fragments/connectors", c.connectorsFragment)
	page("GET "+Prefix+"connectors/{name}", c.connectorPage)
	fragment("GET "+Prefix+"fragments/connectors/{name}", c.connectorFragment)
	action("POST "+Prefix+"connectors/{name}/test", c.testConnection)
	action("POST "+Prefix+"connectors/{name}/sync", c.startSync)
	page("GET "+Prefix+"jobs", c.jobsPage)
	page("GET "+Prefix+"jobs/{id}", c.jobPage)
	fragment("GET "+Prefix+"fragments/jobs/{id}", c.jobFragment)
	action("POST "+Prefix+"jobs/{id}/cancel", c.cancelJob)
	page("GET "+Prefix+"recipients", c.recipientsPage)
	page("GET "+Prefix+"recipients/export", c.exportRecipients)
	page("GET "+Prefix+"recipients/{id}", c.recipientPage)
	page("GET "+Prefix+"explain", c.explainPage)
	action("POST "+Prefix+"logout", c.logout)
}

// authed runs h for a request with a valid session. Without one, a page
// sends the browser to the login page; a fragment (fetched by script)
// answers 401, and the script then goes to the login page itself.
func (c *Console) authed(h handler, fragment bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if ck, err := r.Cookie(SessionCookie); err == nil {
			if s, ok := c.sessions.lookup(ck.Value, c.tokens(), c.now()); ok {
				h(w, r, s)
				return
			}
		}
		if fragment || r.Method != http.MethodGet {
			http.Error(w, "log in to the console again: the session ended", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	}
}

// checked guards a state-changing request: it must come from the
// console's own origin and carry the session's CSRF token.
func (c *Console) checked(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		r.Body = http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
		if !sameOrigin(r) {
			c.forbidden(w, "this form was sent from another site; use the console's own pages")
			return
		}
		if !sameToken(r.PostFormValue("csrf"), s.csrf) {
			c.forbidden(w, "this form is stale or was not sent by the console (its CSRF token does not match); reload the page and try again")
			return
		}
		h(w, r, s)
	}
}

func (c *Console) forbidden(w http.ResponseWriter, msg string) {
	http.Error(w, msg, http.StatusForbidden)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, r, http.StatusOK, "")
}

// renderLogin shows the login form with a fresh login CSRF token, in a
// cookie and in the form (a forged login from another site has neither).
func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, code int, problem string) {
	w.Header().Set("Cache-Control", "no-store")
	tok := randomToken()
	http.SetCookie(w, cookie(r, LoginCookie, tok, 3600))
	c.render(w, code, "login", pageData{Title: "Log in", CSRF: tok, Error: problem})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, err := r.Cookie(LoginCookie)
	if !sameOrigin(r) || err != nil || !sameToken(r.PostFormValue("csrf"), ck.Value) {
		c.renderLogin(w, r, http.StatusForbidden, "The login form expired or was not sent by the console. Enter the token again.")
		return
	}
	presented := strings.TrimSpace(r.PostFormValue("token"))
	tok, ok := api.Match(c.tokens(), []byte(presented))
	switch {
	case presented == "":
		c.renderLogin(w, r, http.StatusUnauthorized, "Enter an API token: a line of the api block's token_file (make run writes data/api-token).")
		return
	case !ok:
		if n, ok := c.refusals.take(c.now()); ok {
			c.log.Warn("console login refused: not an API token", zap.String("remote", r.RemoteAddr), zap.Int("refused_since_last_line", n))
		}
		c.renderLogin(w, r, http.StatusUnauthorized, "That is not an API token. Use a line of the api block's token_file (make run writes data/api-token).")
		return
	case tok.Expired(c.now()):
		c.log.Warn("console login refused: the token expired", zap.String("token_id", tok.ID()), zap.String("remote", r.RemoteAddr))
		c.renderLogin(w, r, http.StatusUnauthorized, "That token expired. Use a current token from the api block's token_file.")
		return
	}
	s := c.sessions.create(tok, c.now())
	c.log.Info("console login", zap.String("token_id", tok.ID()), zap.String("remote", r.RemoteAddr))
	http.SetCookie(w, cookie(r, LoginCookie, "", -1))
	http.SetCookie(w, cookie(r, SessionCookie, s.id, 0))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s.id)
	c.log.Info("console logout", zap.String("token_id", s.token.ID()), zap.String("remote", r.RemoteAddr))
	http.SetCookie(w, cookie(r, SessionCookie, "", -1))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// apiContext bounds one page's calls to the API.
func apiContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
