package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// startTLSOID is the extended operation after which a connection's
// bytes are TLS, which the proxy forwards without reading.
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// LDAPProxy sits between a client and an LDAP server and forwards the
// bytes both ways unchanged, while it reads the LDAP messages to record
// each search and how many entries the server returned for it: a test
// asserts from the server's side that an incremental sync read only
// what changed. It reads plain LDAP only (ldap://, not ldaps://); after
// StartTLS on a connection it forwards that connection's bytes without
// recording. It is closed when the test ends.
type LDAPProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	searches []*ProxiedSearch
	entries  int
	conns    map[net.Conn]struct{}
	closed   bool

	wg sync.WaitGroup
}

// ProxiedSearch is one search request a client sent through the proxy
// and what the server returned for it so far.
type ProxiedSearch struct {
	BaseDN     string
	Scope      int    // ldap.ScopeBaseObject, ScopeSingleLevel or ScopeWholeSubtree
	Filter     string // as ldap.DecompileFilter writes it
	Attributes []string
	Controls   []string // the OIDs of the request's controls, in order
	Entries    int      // SearchResultEntry messages returned
	Done       bool     // whether the SearchResultDone has come
}

// StartLDAPProxy starts a proxy on a free 127.0.0.1 port to target, an
// ldap:// URL (port 389 if it names none) or a host:port.
func StartLDAPProxy(t testing.TB, target string) *LDAPProxy {
	t.Helper()
	addr, err := ldapHostPort(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &LDAPProxy{ln: ln, target: addr, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func ldapHostPort(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return "", fmt.Errorf("LDAP proxy target %q is neither an ldap:// URL nor host:port", target)
		}
		return target, nil
	}
	if u.Scheme != "ldap" {
		return "", fmt.Errorf("LDAP proxy target %q: only ldap:// (the proxy cannot read TLS)", target)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "389"), nil
	}
	return u.Host, nil
}

// URL is the proxy's ldap:// URL, for the client in place of the
// server's.
func (p *LDAPProxy) URL() string { return "ldap://" + p.ln.Addr().String() }

// Searches returns a copy of the searches recorded since the start or
// the last Reset, in the order the requests came.
func (p *LDAPProxy) Searches() []ProxiedSearch {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProxiedSearch, len(p.searches))
	for i, s := range p.searches {
		out[i] = *s
		out[i].Attributes = slices.Clone(s.Attributes)
		out[i].Controls = slices.Clone(s.Controls)
	}
	return out
}

// Entries is the number of SearchResultEntry messages the server
// returned through the proxy since the start or the last Reset.
func (p *LDAPProxy) Entries() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.entries
}

// Reset forgets the recorded searches and entries; connections stay
// open. Entries of a search still running when Reset is called count
// in Entries but not in Searches.
func (p *LDAPProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.searches = nil
	p.entries = 0
}

func (p *LDAPProxy) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *LDAPProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

// track registers a connection for close; false once the proxy closed.
func (p *LDAPProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *LDAPProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
		_ = c.Close()
	}
}

// proxyConn is one client connection's state: the searches waiting for
// their results, by message ID, and the StartTLS request, if any.
type proxyConn struct {
	p        *LDAPProxy
	pending  map[int64]*ProxiedSearch // guarded by p.mu
	startTLS int64                    // the StartTLS message ID, -1 for none; guarded by p.mu
}

func (p *LDAPProxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		_ = client.Close()
		return // the client sees the closed connection, as it would see the server's refusal
	}
	if !p.track(client, server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	pc := &proxyConn{p: p, pending: map[int64]*ProxiedSearch{}, startTLS: -1}
	done := make(chan struct{}, 2)
	go func() { pc.pump(server, client, pc.request); done <- struct{}{} }()
	go func() { pc.pump(client, server, pc.response); done <- struct{}{} }()
	<-done // either side ending ends the connection
	p.untrack(client, server)
	<-done
}

// pump copies src to dst one LDAP message at a time, recording each
// with note before forwarding it, so that a client that has its result
// finds it recorded. note returns false when the bytes that follow are
// not LDAP messages (TLS after StartTLS); a message that does not
// decode also ends the reading. The rest is copied unread.
func (pc *proxyConn) pump(dst io.Writer, src io.Reader, note func(*ber.Packet) bool) {
	in := bufio.NewReader(src)
	var raw bytes.Buffer
	for {
		raw.Reset()
		pkt, err := ber.ReadPacket(io.TeeReader(in, &raw))
		keepReading := err == nil && note(pkt)
		if _, werr := dst.Write(raw.Bytes()); werr != nil {
			return
		}
		if !keepReading { // at EOF or on a closed connection this returns at once
			_, _ = io.Copy(dst, in)
			return
		}
	}
}

// request records a client's search, and notes StartTLS.
func (pc *proxyConn) request(pkt *ber.Packet) bool {
	id, op, ok := ldapEnvelope(pkt)
	if !ok {
		return false
	}
	switch op.Tag {
	case ldap.ApplicationSearchRequest:
		s := decodeSearch(op)
		if len(pkt.Children) > 2 {
			s.Controls = controlOIDs(pkt.Children[2])
		}
		pc.p.mu.Lock()
		pc.p.searches = append(pc.p.searches, s)
		pc.pending[id] = s
		pc.p.mu.Unlock()
	case ldap.ApplicationAbandonRequest:
		pc.p.mu.Lock()
		delete(pc.pending, id)
		pc.p.mu.Unlock()
	case ldap.ApplicationExtendedRequest:
		if len(op.Children) > 0 && op.Children[0].Data.String() == startTLSOID {
			pc.p.mu.Lock()
			pc.startTLS = id
			pc.p.mu.Unlock()
			return false // the client's next bytes are its TLS handshake
		}
	}
	return true
}

// response counts a search's entries and notes its end.
func (pc *proxyConn) response(pkt *ber.Packet) bool {
	id, op, ok := ldapEnvelope(pkt)
	if !ok {
		return false
	}
	pc.p.mu.Lock()
	defer pc.p.mu.Unlock()
	switch op.Tag {
	case ldap.ApplicationSearchResultEntry:
		pc.p.entries++
		if s := pc.pending[id]; s != nil {
			s.Entries++
		}
	case ldap.ApplicationSearchResultDone:
		if s := pc.pending[id]; s != nil {
			s.Done = true
			delete(pc.pending, id)
		}
	case ldap.ApplicationExtendedResponse:
		if id == pc.startTLS {
			return false // TLS follows, whatever the result: a refused StartTLS is rare in tests
		}
	}
	return true
}

// ldapEnvelope splits an LDAPMessage into its ID and operation.
func ldapEnvelope(pkt *ber.Packet) (id int64, op *ber.Packet, ok bool) {
	if len(pkt.Children) < 2 {
		return 0, nil, false
	}
	id, ok = pkt.Children[0].Value.(int64)
	op = pkt.Children[1]
	return id, op, ok && op.ClassType == ber.ClassApplication
}

// decodeSearch reads a SearchRequest: base, scope, deref, size limit,
// time limit, types only, filter, attributes.
func decodeSearch(op *ber.Packet) *ProxiedSearch {
	s := &ProxiedSearch{}
	c := op.Children
	if len(c) < 8 {
		return s
	}
	s.BaseDN = c[0].Data.String()
	if scope, ok := c[1].Value.(int64); ok {
		s.Scope = int(scope)
	}
	if f, err := ldap.DecompileFilter(c[6]); err == nil {
		s.Filter = f
	} else {
		s.Filter = "undecodable filter: " + err.Error()
	}
	for _, a := range c[7].Children {
		s.Attributes = append(s.Attributes, a.Data.String())
	}
	return s
}

// controlOIDs lists the OIDs of a message's [0] Controls.
func controlOIDs(controls *ber.Packet) []string {
	if controls.ClassType != ber.ClassContext || controls.Tag != 0 {
		return nil
	}
	var oids []string
	for _, c := range controls.Children {
		if len(c.Children) > 0 {
			oids = append(oids, c.Children[0].Data.String())
		}
	}
	return oids
}
