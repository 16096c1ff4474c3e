package service

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
)

// minTokenLen keeps a guessable token out: 16 characters of base64 are
// already 96 bits.
const minTokenLen = 16

// credentials are the TCP API's token and TLS certificate; a reload swaps
// them without dropping the listener.
type credentials struct {
	token atomic.Pointer[[]byte]
	cert  atomic.Pointer[tls.Certificate]
}

// load reads the token file and the certificate of a; on error nothing
// changes.
func (c *credentials) load(a config.API) error {
	tok, err := readToken(a.TokenFile)
	if err != nil {
		return err
	}
	var cert *tls.Certificate
	if a.TLS() {
		kp, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("api: loading tls_cert_file %s and tls_key_file %s: %w", a.TLSCertFile, a.TLSKeyFile, err)
		}
		cert = &kp
	}
	c.token.Store(&tok)
	if cert != nil {
		c.cert.Store(cert)
	}
	return nil
}

// readToken reads a bearer token file. It refuses a file others can read:
// the token grants every API operation. A systemd credential
// (LoadCredential=, under $CREDENTIALS_DIRECTORY) is exempt: systemd
// restricts it to the service's user itself, with an ACL that can make
// its group bits look open.
func readToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("api: token_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 && !isCredential(path) {
		return nil, fmt.Errorf("api: token_file %s is readable by other users (mode %04o); run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: token_file: %w", err)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < minTokenLen {
		return nil, fmt.Errorf("api: token_file %s holds a token shorter than %d characters; create one with `head -c 32 /dev/urandom | base64 > %s`", path, minTokenLen, path)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("api: token_file %s must hold a single token on one line", path)
	}
	return tok, nil
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
}

// startTCPAPI listens on a.Listen and serves h behind the bearer token.
func startTCPAPI(a config.API, h *api.Server, log *zap.Logger) (*tcpAPI, error) {
	t := &tcpAPI{cfg: a, done: make(chan struct{})}
	if err := t.creds.load(a); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listening on %s: %w (is another process using the port? change listen in the api block)", a.Listen, err)
	}
	t.addr = ln.Addr().String()
	handler := h.Authenticated(func() []byte { return *t.creds.token.Load() })
	t.srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel)))}
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
	return t, nil
}

// reload re-reads the token and certificate after SIGHUP.
func (t *tcpAPI) reload(a config.API) error {
	if a.Listen != t.cfg.Listen || a.TLS() != t.cfg.TLS() {
		return errors.New("api { listen } and turning TLS on or off take effect only at a restart; restart dirsyncd to change them")
	}
	if err := t.creds.load(a); err != nil {
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

// readiness tracks whether the read models keep up with the stream.
type readiness struct {
	mu       sync.Mutex
	seq      uint64
	movedAt  time.Time
	stallFor time.Duration
}

// check reports why the daemon is not ready, or nil. lag is the events
// not yet folded; a projector that lags but advances is catching up, one
// that has not moved for stallFor is stuck.
func (r *readiness) check(seq, lag uint64, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq != r.seq || r.movedAt.IsZero() {
		r.seq, r.movedAt = seq, now
	}
	if lag == 0 {
		return nil
	}
	if now.Sub(r.movedAt) >= r.stallFor {
		return fmt.Errorf("projections are %d events behind the stream and have not advanced for %s", lag, now.Sub(r.movedAt).Round(time.Second))
	}
	return nil
}
