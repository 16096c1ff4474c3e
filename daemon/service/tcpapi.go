package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/console"
)

// minTokenLen keeps a guessable token out: 16 characters of base64 are
// already 96 bits.
const minTokenLen = 16

// expiryWarning is how long before a token expires each load warns.
const expiryWarning = 7 * 24 * time.Hour

// credentials are the TCP API's tokens and TLS certificate; a reload
// swaps them without dropping the listener.
type credentials struct {
	tokens atomic.Pointer[[]api.Token]
	cert   atomic.Pointer[tls.Certificate]
}

// load reads the token file and the certificate of a, warning of tokens
// that expired or expire within expiryWarning at now; on error nothing
// changes.
func (c *credentials) load(a config.API, log *zap.Logger, now time.Time) error {
	entries, err := readTokens(a.TokenFile)
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if a.TLS() {
		if err := checkPrivate("api tls_key_file", a.TLSKeyFile); err != nil {
			return err
		}
		kp, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("api: loading tls_cert_file %s and tls_key_file %s: %w", a.TLSCertFile, a.TLSKeyFile, err)
		}
		cert = &kp
	}
	warnTokens(log, a.TokenFile, entries, now)
	toks := make([]api.Token, len(entries))
	for i, e := range entries {
		toks[i] = e.tok
	}
	c.tokens.Store(&toks)
	if cert != nil {
		c.cert.Store(cert)
	}
	return nil
}

// tokenEntry is one token of the token file and its line, for messages.
type tokenEntry struct {
	line int
	tok  api.Token
}

// readTokens reads a bearer token file. It refuses a file others can read
// or that belongs to another user (checkPrivate): a token grants every API
// operation. A systemd credential (LoadCredential=, under
// $CREDENTIALS_DIRECTORY) is exempt: systemd restricts it to the
// service's user itself, with an ACL that can make its group bits look
// open.
func readTokens(path string) ([]tokenEntry, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("api: token_file %s does not exist; create it with `(umask 077; head -c 32 /dev/urandom | base64 > %s)` "+
			"(make run writes it), or remove the api block to keep the HTTP API and the web console off: %w", path, path, err)
	}
	if err := checkPrivate("api token_file", path); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: token_file: %w", err)
	}
	return parseTokens(path, b)
}

// parseTokens reads the token file format: one token per line, blank lines
// and lines starting with # ignored, and after the token optionally
// "expires=<RFC3339 time>" and a # comment, separated by white space.
// Two lines let an old and a new token overlap during a rotation; a file
// holding only a token (the original format) is a token that never
// expires. No message quotes a token, nor anything that could be one.
func parseTokens(path string, data []byte) ([]tokenEntry, error) {
	var out []tokenEntry
	seen := map[string]int{}
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		fields := strings.Fields(raw)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		secret := fields[0]
		if len(secret) < minTokenLen {
			return nil, fmt.Errorf("api: token_file %s line %d holds a token shorter than %d characters; create one with `head -c 32 /dev/urandom | base64`",
				path, line, minTokenLen)
		}
		if first, dup := seen[secret]; dup {
			return nil, fmt.Errorf("api: token_file %s line %d repeats the token of line %d; keep one line per token", path, line, first)
		}
		seen[secret] = line
		var expires time.Time
		for _, f := range fields[1:] {
			if strings.HasPrefix(f, "#") {
				break
			}
			v, ok := strings.CutPrefix(f, "expires=")
			if !ok || !expires.IsZero() {
				return nil, fmt.Errorf("api: token_file %s line %d: after the token only one expires=<RFC3339 time> and a # comment may follow, "+
					"e.g. `<token> expires=2026-07-01T00:00:00Z`; put each token on its own line", path, line)
			}
			t, err := time.Parse(time.RFC3339, v)
			if err != nil || t.IsZero() {
				return nil, fmt.Errorf("api: token_file %s line %d: expires=%q is not an RFC3339 time such as 2026-07-01T00:00:00Z", path, line, v)
			}
			expires = t
		}
		out = append(out, tokenEntry{line: line, tok: api.NewToken([]byte(secret), expires)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("api: token_file %s holds no token; create one with `head -c 32 /dev/urandom | base64 > %s`", path, shellQuote(path))
	}
	return out, nil
}

// warnTokens logs, by ID and line, the tokens that have expired or expire
// within expiryWarning, so a rotation is not missed; and an error when no
// token is current, since the TCP API then refuses every caller.
func warnTokens(log *zap.Logger, path string, entries []tokenEntry, now time.Time) {
	current := 0
	for _, e := range entries {
		fields := []zap.Field{zap.String("token_file", path), zap.Int("line", e.line), zap.String("token_id", e.tok.ID())}
		switch {
		case e.tok.Expired(now):
			log.Warn("an API token in token_file has expired and is refused; remove its line once no client uses it",
				append(fields, zap.Time("expired_at", e.tok.Expires))...)
		case !e.tok.Expires.IsZero() && e.tok.Expires.Sub(now) <= expiryWarning:
			current++
			log.Warn("an API token in token_file expires soon: add a line with a new token, reload (SIGHUP), move the clients to it, then remove the old line",
				append(fields, zap.Time("expires_at", e.tok.Expires), zap.Duration("expires_in", e.tok.Expires.Sub(now).Round(time.Minute)))...)
		default:
			current++
		}
	}
	if current == 0 {
		log.Error("every API token in token_file has expired: the TCP API refuses every route but /healthz, /readyz, /metrics and /v1/openapi.yaml "+
			"until you add a current token and reload (SIGHUP)", zap.String("token_file", path))
	}
}

// isCredential reports whether path is inside $CREDENTIALS_DIRECTORY.
func isCredential(path string) bool {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && rel != "."
}

// tcpAPI is the API on TCP: off unless the api block sets listen.
type tcpAPI struct {
	cfg   config.API
	creds credentials
	srv   *http.Server
	addr  string
	done  chan struct{}
	log   *zap.Logger
	now   func() time.Time
}

// startTCPAPI listens on a.Listen and serves h behind the bearer tokens;
// now is the clock tokens expire by (time.Now but in tests).
func startTCPAPI(a config.API, h *api.Server, log *zap.Logger, now func() time.Time) (*tcpAPI, error) {
	t := &tcpAPI{cfg: a, done: make(chan struct{}), log: log, now: now}
	if err := t.creds.load(a, log, now()); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listening on %s: %w (is another process using the port? change listen in the api block)", a.Listen, err)
	}
	t.addr = ln.Addr().String()
	ln = newCapListener(ln, maxAPIConns, log)
	tokens := func() []api.Token { return *t.creds.tokens.Load() }
	handler := h.AuthenticatedWith(tokens, now, api.DefaultLimits)
	if !a.NoConsole {
		c, err := console.New(console.Options{API: h, Tokens: tokens, Now: now, Log: log.Named("console")})
		if err != nil {
			_ = ln.Close()
			return nil, err
		}
		handler = c.Mount(handler)
	}
	t.srv = newHTTPServer(handler, log)
	scheme := "http"
	if a.TLS() {
		scheme = "https"
		t.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return t.creds.cert.Load(), nil }}
		ln = tls.NewListener(ln, t.srv.TLSConfig)
	}
	go func() {
		defer close(t.done)
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api listener stopped", zap.Error(err))
		}
	}()
	log.Info("HTTP API listening", zap.String("url", scheme+"://"+t.addr))
	if !a.NoConsole {
		log.Info("web console listening", zap.String("url", scheme+"://"+t.addr+console.Prefix))
	}
	return t, nil
}

// newHTTPServer serves h with every timeout set, so that no client holds a
// connection by being slow: 10 s for the headers, 30 s for a whole
// request (the handlers read bodies within 5 s of the headers, see
// api.Limits), 3 minutes from the end of the request to the end of its
// answer (a connection test may take its full 2 minutes; an export of
// 100,000 recipients takes seconds) and 2 minutes of idle keep-alive.
func newHTTPServer(h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 3 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel)))}
}

// reload re-reads the tokens and certificate after SIGHUP.
func (t *tcpAPI) reload(a config.API) error {
	if a.Listen != t.cfg.Listen || a.TLS() != t.cfg.TLS() {
		return errors.New("api { listen } and turning TLS on or off take effect only at a restart; restart dirsyncd to change them")
	}
	if err := t.creds.load(a, t.log, t.now()); err != nil {
		return err
	}
	t.cfg = a
	return nil
}

// stop closes the listener, letting requests in flight finish briefly.
func (t *tcpAPI) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.srv.Shutdown(ctx)
	<-t.done
}

// readiness tracks whether the read models keep up with the stream: lag
// is the events not yet folded; a projector that lags but advances is
// catching up, one that has not moved for stallFor is stuck (not ready).
type readiness struct {
	mu       sync.Mutex
	seq, lag uint64
	movedAt  time.Time
	stallFor time.Duration
}

// observe records the projector's position and lag at now. The stall
// clock starts when the projector moves or when a lag appears, so time
// without lag (or without NATS, observed as no lag) never counts.
func (r *readiness) observe(seq, lag uint64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq != r.seq || r.movedAt.IsZero() || r.lag == 0 {
		r.seq, r.movedAt = seq, now
	}
	r.lag = lag
}

// stalled reports, as of the last observation, a projector that lags and
// has not advanced for limit by now.
func (r *readiness) stalled(now time.Time, limit time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lag == 0 || r.movedAt.IsZero() {
		return nil
	}
	if d := now.Sub(r.movedAt); d >= limit {
		return fmt.Errorf("projections are %d events behind the stream and have not advanced for %s", r.lag, d.Round(time.Second))
	}
	return nil
}

// liveness says whether the daemon still works, for /healthz and the
// systemd watchdog: the read models must not lag without advancing, nor
// a job queue stand still, for longer than limit (daemon {
// stall_timeout }). Unlike readiness, a NATS outage is not a stall: a
// restart would not end it, and the projector and jobs resume on their
// own once NATS is back.
type liveness struct {
	ready   *readiness
	stalled func(now time.Time, limit time.Duration) error // the job runner's
	limit   time.Duration
}

// check reports why the daemon has stalled as of now, or nil.
func (l *liveness) check(now time.Time) error {
	if err := l.ready.stalled(now, l.limit); err != nil {
		return err
	}
	return l.stalled(now, l.limit)
}
