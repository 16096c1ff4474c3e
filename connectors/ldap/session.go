package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"slices"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// session is one bound connection to the directory, with its flavor
// known. It counts the requests it makes (each search page is one), which
// Progress.requests reports.
type session struct {
	conn     *goldap.Conn
	cfg      *Config
	flavor   Flavor
	password string
	rootDSE  *goldap.Entry
	requests int64
	// stop ends the watch that closes the connection when the caller's
	// context is canceled.
	stop func() bool
}

// open dials the server, upgrades with StartTLS when configured, binds,
// and reads the rootDSE to learn the flavor (unless configured). Its
// error is a *Failure naming the stage that failed and what to change.
func open(ctx context.Context, cfg *Config) (*session, error) {
	password, err := cfg.Password()
	if err != nil {
		return nil, &Failure{Code: CodeInvalidConfig, Detail: "bind_password_file: " + err.Error(),
			Remedy: "Make bind_password_file readable by dirsyncd and put the bind account's password in it.", err: err}
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, &Failure{Code: CodeInvalidConfig, Detail: "ca_file: " + err.Error(),
			Remedy: "Point ca_file at the PEM file of the CA that signed the server's certificate.", err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, Classify(StageConnect, err, cfg, password)
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	conn, err := goldap.DialURL(cfg.URL, goldap.DialWithDialer(dialer), goldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		return nil, Classify(StageConnect, err, cfg, password)
	}
	conn.SetTimeout(cfg.Timeout)
	s := &session{conn: conn, cfg: cfg, password: password}
	// go-ldap's synchronous calls take no context: closing the connection
	// is what ends a call in flight when the sync is canceled.
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(st Stage, err error) (*session, error) {
		s.close()
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, Classify(st, err, cfg, password)
	}
	if cfg.StartTLS {
		if err := conn.StartTLS(tlsCfg); err != nil {
			return fail(StageStartTLS, err)
		}
	}
	if err := conn.Bind(cfg.BindDN, password); err != nil {
		return fail(StageBind, err)
	}
	s.requests++
	res, err := conn.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, int(cfg.Timeout/time.Second), false,
		"(objectClass=*)", append(slices.Clone(RootDSEAttributes), attrHighestUSN, attrDSServiceName), nil))
	if err != nil {
		return fail(StageRootDSE, err)
	}
	s.requests++
	if len(res.Entries) > 0 {
		s.rootDSE = res.Entries[0]
	}
	s.flavor = cfg.Flavor
	if s.flavor == FlavorUnknown {
		s.flavor = DetectFlavor(s.rootDSE)
	}
	if s.flavor == FlavorUnknown {
		s.close()
		return nil, FlavorUnknownFailure(cfg)
	}
	return s, nil
}

// tlsConfig verifies the server against the system's roots and ca_file,
// by the URL's host name (or IP address).
func tlsConfig(cfg *Config) (*tls.Config, error) {
	pool, err := cfg.CertPool()
	if err != nil {
		return nil, err
	}
	host := ""
	if u, err := url.Parse(cfg.URL); err == nil {
		host = u.Hostname()
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

func (s *session) close() {
	s.stop()
	s.conn.Close()
}

// searchPages runs a paged search (RFC 2696) of filter under base_dn and
// calls each for every entry, page by page, so a large directory is never
// held in memory. Continuation references are skipped: referrals are not
// followed.
func (s *session) searchPages(ctx context.Context, st Stage, filter string, attrs []string, each func(*goldap.Entry) error) error {
	var cookie []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		paging := goldap.NewControlPaging(uint32(s.cfg.PageSize))
		paging.SetCookie(cookie)
		req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, int(s.cfg.Timeout/time.Second), false,
			filter, attrs, []goldap.Control{paging})
		res, err := s.conn.Search(req)
		s.requests++
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return Classify(st, err, s.cfg, s.password)
		}
		for _, e := range res.Entries {
			if err := each(e); err != nil {
				return err
			}
		}
		p, _ := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if p == nil || len(p.Cookie) == 0 {
			return nil
		}
		cookie = p.Cookie
	}
}

// search runs one unpaged search under base with scope and controls, for
// the incremental reads' few entries.
func (s *session) search(st Stage, base string, scope int, filter string, attrs []string, controls []goldap.Control) ([]*goldap.Entry, error) {
	res, err := s.conn.Search(goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, int(s.cfg.Timeout/time.Second), false,
		filter, attrs, controls))
	s.requests++
	if err != nil {
		return nil, Classify(st, err, s.cfg, s.password)
	}
	return res.Entries, nil
}

// readBase reads one entry's attributes by DN (the further ranges of an
// Active Directory group's member attribute).
func (s *session) readBase(st Stage, dn string, attrs []string) (*goldap.Entry, error) {
	res, err := s.conn.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, int(s.cfg.Timeout/time.Second), false,
		"(objectClass=*)", attrs, nil))
	s.requests++
	if err != nil {
		return nil, Classify(st, err, s.cfg, s.password)
	}
	if len(res.Entries) == 0 {
		return nil, Classify(st, goldap.NewError(goldap.LDAPResultNoSuchObject, errors.New("no entry")), s.cfg, s.password)
	}
	return res.Entries[0], nil
}
