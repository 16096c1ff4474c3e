package graphsim

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sim is a running (or ready to run) simulated tenant. Its methods are safe
// for concurrent use.
type Sim struct {
	cfg     Config
	org     string // organization display name, e.g. "Contoso"
	custom  string // vanity mail domain, e.g. contoso.com
	spID    string // object ID of the app's service principal
	signKey []byte // HMAC key for access tokens
	pageKey []byte // HMAC key for $skiptoken values
	logger  *log.Logger
	// restored is set when the tenant came from Config.StateFile.
	restored bool
	// clockOffset shifts the simulated clock (nanoseconds), so tests can
	// expire tokens without waiting.
	clockOffset atomic.Int64

	cur      atomic.Pointer[snapshot]
	mutateMu sync.Mutex

	rolesMu sync.RWMutex
	roles   []string

	requests atomic.Int64
	counters sync.Map // endpoint key -> *counter

	faults        atomic.Pointer[Faults]
	faultSeq      atomic.Uint64
	batchSeq      atomic.Uint64 // sub-requests of batches drawn for BatchItemThrottleRate
	tokenLifetime atomic.Int64  // nanoseconds
	deltaTTL      atomic.Int64  // nanoseconds
	expireMode    atomic.Pointer[ExpiryMode]
	netCache      netCache
	sortCache     sortCache

	srvMu  sync.Mutex
	srv    *http.Server
	ln     net.Listener
	url    string
	caPEM  []byte
	closed bool
}

// New validates cfg and generates the tenant. It does not listen: call
// Start.
func New(cfg Config) (*Sim, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:     cfg,
		org:     orgName(cfg.TenantDomain),
		custom:  customDomain(cfg.TenantDomain),
		spID:    newPRNG(cfg.Seed, "service-principal").guid(),
		signKey: make([]byte, 32),
		pageKey: make([]byte, 32),
		roles:   cfg.Roles,
	}
	s.SetFaults(cfg.Faults)
	s.tokenLifetime.Store(int64(cfg.TokenLifetime))
	s.deltaTTL.Store(int64(cfg.DeltaTokenTTL))
	mode := ExpiryGone
	s.expireMode.Store(&mode)
	if _, err := rand.Read(s.signKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(s.pageKey); err != nil {
		return nil, err
	}
	if cfg.Log != nil {
		s.logger = log.New(cfg.Log, "graphsim: ", log.LstdFlags|log.Lmicroseconds)
	}
	if cfg.StateFile != "" {
		snap, key, err := loadState(cfg.StateFile, cfg)
		switch {
		case err == nil:
			s.pageKey, s.restored = key, true
			s.cur.Store(snap)
			return s, nil
		case !isNotExist(err):
			return nil, err
		}
	}
	snap, err := newSnapshot(generate(cfg), 0)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generated tenant is invalid (a bug): %w", err)
	}
	s.cur.Store(snap)
	if err := s.saveState(snap); err != nil {
		return nil, err
	}
	return s, nil
}

// Restored reports whether New loaded the tenant from Config.StateFile
// rather than generating it.
func (s *Sim) Restored() bool { return s.restored }

// Start listens on addr (for example "127.0.0.1:0") and serves HTTPS with a
// certificate signed by a CA generated for this Sim (see CACertPEM). The
// certificate is valid for 127.0.0.1, ::1 and localhost.
func (s *Sim) Start(addr string) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil || s.closed {
		return errors.New("graphsim: Start called twice or after Close")
	}
	leaf, caPEM, err := newCertificates(s.now(), s.org)
	if err != nil {
		return fmt.Errorf("graphsim: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("graphsim: %w", err)
	}
	tcp := ln.Addr().(*net.TCPAddr)
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.url = "https://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
	s.caPEM = caPEM
	s.ln = ln
	errLog := log.New(io.Discard, "", 0)
	if s.logger != nil {
		errLog = s.logger
	}
	s.srv = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	srv := s.srv
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return nil
}

// now is the simulated clock.
func (s *Sim) now() time.Time { return time.Now().Add(time.Duration(s.clockOffset.Load())) }

// URL is the base URL, "https://127.0.0.1:PORT" without a trailing slash;
// empty before Start.
func (s *Sim) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// AuthorityHost is what azidentity's authority host is set to: URL()+"/".
func (s *Sim) AuthorityHost() string { return s.URL() + "/" }

// GraphURL is the Graph base URL for msgraph-sdk-go: URL()+"/v1.0".
func (s *Sim) GraphURL() string { return s.URL() + "/v1.0" }

// CACertPEM is the PEM of the CA that signed the server certificate; nil
// before Start.
func (s *Sim) CACertPEM() []byte {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return append([]byte(nil), s.caPEM...)
}

// WriteCACert writes CACertPEM to path with mode 0644.
func (s *Sim) WriteCACert(path string) error {
	pem := s.CACertPEM()
	if len(pem) == 0 {
		return errors.New("graphsim: WriteCACert before Start")
	}
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		return fmt.Errorf("graphsim: write CA certificate: %w", err)
	}
	// WriteFile keeps the mode of an existing file; make it 0644 anyway.
	return os.Chmod(path, 0o644)
}

// Close stops the server, waiting up to five seconds for requests in
// flight. Calling it again, or without Start, does nothing.
func (s *Sim) Close() error {
	s.srvMu.Lock()
	srv := s.srv
	s.closed = true
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// Config returns the configuration in use, with defaults filled in.
func (s *Sim) Config() Config {
	c := s.cfg
	c.Roles = s.Roles()
	return c
}

// Tenant returns the current tenant. It is a snapshot that every change
// replaces and never modifies: do not modify it. Soft-deleted users are
// not in it (see DeletedUsers).
func (s *Sim) Tenant() *Tenant { return s.cur.Load().tenant }

// Mutate changes the tenant: fn receives a deep copy of the current
// tenant, and the copy replaces the tenant when fn returns, atomically for
// requests in flight. If the result is invalid (empty or duplicate IDs or
// UPNs, duplicate members, unknown member types, a changed tenant ID or
// domain) the tenant is left unchanged and the error says why.
//
// The differences are recorded for the delta endpoints: a user or group
// that appears is new, one that disappears is deleted permanently (use
// DeleteUser for a soft delete), changed properties and members are
// updates. Mutate copies and compares the whole tenant; the specific
// methods (AddUser, UpdateUser, AddMembers, Churn, ...) are cheaper.
func (s *Sim) Mutate(fn func(t *Tenant)) error {
	s.mutateMu.Lock()
	defer s.mutateMu.Unlock()
	cur := s.cur.Load()
	t := cur.tenant.clone()
	fn(t)
	if t.ID != cur.tenant.ID || t.Domain != cur.tenant.Domain {
		return errors.New("graphsim: Mutate: the tenant ID and domain cannot change")
	}
	snap, err := newSnapshot(t, cur.ver+1)
	if err != nil {
		return fmt.Errorf("graphsim: Mutate: %w", err)
	}
	changes := s.diffChanges(cur.tenant, t, cur, snap.ver)
	if len(changes) == 0 {
		snap.ver = cur.ver
	}
	snap.deleted = cur.deleted
	copied := false
	for k := range cur.deleted {
		_, user := snap.userIdx[k]
		_, group := snap.grpIdx[k]
		if user || group { // the ID is live again: the deleted user is gone
			if !copied {
				snap.deleted, copied = maps.Clone(cur.deleted), true
			}
			delete(snap.deleted, k)
		}
	}
	snap.epoch = cur.epoch
	snap.log = append(cur.log, changes...)
	s.cur.Store(snap)
	return saveFailed(s.saveState(snap))
}

// SetRoles replaces the application permissions granted to the app. Tokens
// issued before keep the roles they were issued with, as in Entra.
func (s *Sim) SetRoles(roles []string) {
	s.rolesMu.Lock()
	defer s.rolesMu.Unlock()
	s.roles = append([]string{}, roles...)
}

// Roles returns the application permissions currently granted.
func (s *Sim) Roles() []string {
	s.rolesMu.RLock()
	defer s.rolesMu.RUnlock()
	return append([]string{}, s.roles...)
}

// Requests is the number of Graph requests (paths under /v1.0) served,
// whatever their status, since the start or ResetCounters: the sum of the
// Graph entries of Counters. Token and metadata requests are not counted.
func (s *Sim) Requests() int64 { return s.requests.Load() }

// statusRecorder counts a request (Counters, Requests) as soon as its
// status is known, before the client can read the answer, and remembers
// the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	s        *Sim
	method   string
	path     string // endpointPath; "" is not counted
	status   int
	outcome  string
	recorded bool
}

// record counts the request once with outcome (a status code, "reset" or
// "canceled").
func (r *statusRecorder) record(outcome string) {
	if r.recorded {
		return
	}
	r.recorded = true
	r.outcome = outcome
	if r.path == "" {
		return
	}
	if strings.HasPrefix(r.path, "/v1.0") {
		r.s.requests.Add(1)
	}
	r.s.count(r.method, r.path, outcome)
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.record(strconv.Itoa(code))
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ServeHTTP routes a request to the authority, Graph or admin endpoints.
// It makes Sim an http.Handler, so tests may also serve it with
// net/http/httptest.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, s: s, method: r.Method, path: endpointPath(r.URL.Path)}
	defer func() {
		if !rec.recorded {
			rec.record(strconv.Itoa(http.StatusOK))
		}
		if s.logger == nil {
			return
		}
		// The query never holds a secret; form bodies (client secrets) and
		// headers (tokens) are not logged.
		target := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		s.logger.Printf("%s %s %s %s", r.Method, target, rec.outcome, time.Since(start).Round(time.Microsecond))
	}()
	s.route(rec, r)
}

func (s *Sim) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == "/v1.0" || strings.HasPrefix(path, "/v1.0/") {
		if s.injectFault(w, r) {
			return
		}
		s.serveGraph(w, r)
		return
	}
	if path == "/_graphsim" || strings.HasPrefix(path, "/_graphsim/") {
		s.serveAdmin(w, r)
		return
	}
	if path == "/common/discovery/instance" {
		s.serveInstanceDiscovery(w, r)
		return
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	if len(seg) == 4 {
		switch strings.Join(seg[1:], "/") {
		case "v2.0/.well-known/openid-configuration":
			s.serveOpenIDConfig(w, r, seg[0])
			return
		case "oauth2/v2.0/token":
			s.serveToken(w, r, seg[0])
			return
		case "discovery/v2.0/keys":
			s.serveKeys(w, r, seg[0])
			return
		}
	}
	rid := randomGUID()
	writeGraphError(w, r, rid, http.StatusNotFound, "UnknownError",
		fmt.Sprintf("No HTTP resource was found that matches the request URI '%s'.", s.host(r)+r.URL.Path), s.now())
}

// host is the scheme and authority the client used
// ("https://127.0.0.1:PORT"): links and the issuer point back to it.
func (s *Sim) host(r *http.Request) string {
	if r.Host == "" {
		return s.URL()
	}
	if r.TLS == nil { // served by a plain-HTTP test server
		return "http://" + r.Host
	}
	return "https://" + r.Host
}
