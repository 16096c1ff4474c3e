package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// The two kinds of directory a test can start; LDAPServer.Flavor holds
// one. They are the connector's own words for the two dialects.
const (
	FlavorOpenLDAP        = "openldap"
	FlavorActiveDirectory = "active_directory"
)

// ldapReadyTimeout is how long a server may take to answer its first
// search. A deadline, not a measurement: slapd answers in 0.15 s and
// Samba in 0.5–2 s on an idle machine, a loaded 2-core one is slower.
const ldapReadyTimeout = 60 * time.Second

// ldapStopTimeout is how long a server may take to exit once asked
// before it is killed (slapd and samba exit in milliseconds).
const ldapStopTimeout = 10 * time.Second

// LDAPServer is a running directory server a test started (StartSlapd,
// StartSambaDC), as a child process with its data in the test's
// temporary directory; it is stopped when the test ends.
type LDAPServer struct {
	Flavor         string // FlavorOpenLDAP or FlavorActiveDirectory
	URL            string // ldap://127.0.0.1:PORT (slapd) or ldap://127.0.0.N (Samba, port 389)
	LDAPSURL       string // the same server over TLS, verified by CAFile
	CAFile         string // PEM of the CA that signed the server certificate (IP SAN)
	BaseDN         string // dc=example,dc=com (slapd) or DC=example,DC=test (Samba)
	AdminDN        string // a bind that may read and write everything
	AdminPassword  string
	ReaderDN       string // a less privileged bind: reads the directory (on Samba as any domain user), writes no entry but its own
	ReaderPassword string

	name  string                     // "slapd" or "samba", for messages
	data  string                     // the folder holding the directory's database, for Backup
	out   *LockedBuffer              // every run's output, for failure messages
	start func() (*ldapChild, error) // one run: starts the process and waits until it answers
	// release gives up what the server holds besides its process (a
	// Samba instance's loopback address), at Close.
	release func()

	mu    sync.Mutex
	child *ldapChild
}

// Close stops the server and gives up what it held, for a server a
// Launch function started (a test's stops when the test ends). Closing
// it again does nothing.
func (s *LDAPServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.child != nil {
		err = s.child.stop()
	}
	if s.release != nil {
		s.release()
		s.release = nil
	}
	return err
}

// DialAdmin returns a connection to URL bound as the admin; the caller
// closes it. Tests use Dial.
func (s *LDAPServer) DialAdmin() (*ldap.Conn, error) { return s.dialAdmin() }

// ApplyLDIF is Apply for a caller without a test: it returns the error
// of the first record the server refuses.
func (s *LDAPServer) ApplyLDIF(ldif string) error { return s.apply(ldif) }

// Dial returns a connection to URL bound as the admin, closed when the
// test ends.
func (s *LDAPServer) Dial(t testing.TB) *ldap.Conn {
	t.Helper()
	conn, err := s.dialAdmin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func (s *LDAPServer) dialAdmin() (*ldap.Conn, error) {
	conn, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("dialing %s %s: %w", s.name, s.URL, err)
	}
	if err := conn.Bind(s.AdminDN, s.AdminPassword); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("binding to %s %s as %s: %w", s.name, s.URL, s.AdminDN, err)
	}
	return conn, nil
}

// TLSConfig returns a client configuration that verifies the server's
// certificate with CAFile, for ldap.DialWithTLSConfig on LDAPSURL or
// for StartTLS on URL. Its ServerName is the server's IP address, which
// the certificate names: StartTLS has no address to take it from.
func (s *LDAPServer) TLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no PEM certificate", s.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
}

// Apply makes the changes of an LDIF (RFC 2849) on the running server
// as the admin: records with changetype add, modify (add:, replace:,
// delete: parts separated by "-"), delete and modrdn, and plain entries,
// which are added. It fails the test at the first record the server
// refuses, naming its line.
func (s *LDAPServer) Apply(t testing.TB, ldif string) {
	t.Helper()
	if err := s.apply(ldif); err != nil {
		t.Fatal(err)
	}
}

func (s *LDAPServer) apply(ldif string) error {
	records, err := parseLDIF(ldif)
	if err != nil {
		return err
	}
	conn, err := s.dialAdmin()
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	for _, r := range records {
		if err := r.apply(conn); err != nil {
			return fmt.Errorf("LDIF line %d (%s %s): %w", r.line, r.changeType, r.dn, err)
		}
	}
	return nil
}

// Restart stops the server and starts the same instance again, with
// the same URLs and data. What the server keeps only in memory is lost:
// slapd's syncprov session log, so an old sync cookie then gets the
// present phase instead of the deltas. Open connections (Dial's too)
// break.
func (s *LDAPServer) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.child.stop(); err != nil {
		t.Fatalf("stopping %s for a restart: %v", s.name, err)
	}
	c, err := s.start()
	if err != nil {
		t.Fatalf("restarting %s: %v", s.name, err)
	}
	s.child = c
}

// Backup copies the server's database now (stopping the server for the
// copy) and returns what puts it back: the directory as it was, as a
// domain controller restored from a backup is. The restore stops and
// starts the server again.
func (s *LDAPServer) Backup(t testing.TB) (restore func(t testing.TB)) {
	t.Helper()
	copyDir := filepath.Join(t.TempDir(), "backup")
	s.swap(t, func() error { return copyTree(s.data, copyDir) })
	return func(t testing.TB) {
		t.Helper()
		s.swap(t, func() error {
			if err := os.RemoveAll(s.data); err != nil {
				return err
			}
			return copyTree(copyDir, s.data)
		})
	}
}

// swap runs fn while the server is stopped.
func (s *LDAPServer) swap(t testing.TB, fn func() error) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.child.stop(); err != nil {
		t.Fatalf("stopping %s: %v", s.name, err)
	}
	if err := fn(); err != nil {
		t.Fatalf("%s's database: %v", s.name, err)
	}
	c, err := s.start()
	if err != nil {
		t.Fatalf("starting %s again: %v", s.name, err)
	}
	s.child = c
}

// copyTree copies a folder with its modes (cp -a).
func copyTree(from, to string) error {
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", from, to, err, out)
	}
	return nil
}

// UnicodePwd is an Active Directory password as an LDIF base64 value,
// for a seed line "unicodePwd:: " + UnicodePwd(pw): AD takes the
// password as UTF-16LE of the password in double quotes.
func UnicodePwd(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// ldapChild is one run of a server process.
type ldapChild struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // Samba's: it exits when this is closed; nil for slapd
	out   *LockedBuffer
	done  chan struct{} // closed once the process has exited
	err   error         // cmd.Wait's result, once done is closed
}

// startLDAPChild starts a server process in its own process group (so
// that a kill reaches anything it forks) that the kernel kills should
// the test process die first. With stdinPipe its standard input is a
// pipe that stop closes: Samba exits on that EOF, and also when the
// test process dies and the pipe closes with it.
func startLDAPChild(out *LockedBuffer, stdinPipe bool, name string, args ...string) (*ldapChild, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c := &ldapChild{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	if stdinPipe {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c.stdin = w
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the process has exited.
func (c *ldapChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the process to exit (stdin EOF, or SIGTERM) and kills its
// process group if it has not within ldapStopTimeout. An exit status
// after the request is not an error: the server was asked to go.
func (c *ldapChild) stop() error {
	if c.exited() {
		return nil
	}
	if c.stdin != nil {
		_ = c.stdin.Close()
	} else {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
	}
	timer := time.NewTimer(ldapStopTimeout)
	defer timer.Stop()
	select {
	case <-c.done:
		return nil
	case <-timer.C:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("%s did not exit within %s of being asked, killed it; its output ends:\n%s",
		c.name, ldapStopTimeout, outputTail(c.out))
}

// waitLDAPReady polls a rootDSE search on url until it answers, and
// gives up early if the process exits: an error then carries the exit
// status and the end of the server's output.
func waitLDAPReady(c *ldapChild, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ldapReadyTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := Poll(ctx, 50*time.Millisecond, func() error { return searchRootDSE(url) })
	if err == nil {
		return nil
	}
	if c.exited() {
		return fmt.Errorf("%s exited before it answered on %s (%v); its output ends:\n%s", c.name, url, c.err, outputTail(c.out))
	}
	_ = c.stop()
	return fmt.Errorf("%s did not answer on %s within %s (last: %w); its output ends:\n%s", c.name, url, ldapReadyTimeout, err, outputTail(c.out))
}

func searchRootDSE(url string) error {
	conn, err := ldap.DialURL(url, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	conn.SetTimeout(5 * time.Second)
	_, err = conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

// outputTail is the last lines of a server's output: the reason it
// failed is at the end, and the whole log of a Samba start is long.
func outputTail(out *LockedBuffer) string { return tail(out.String(), 40) }

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// lookPaths finds each program on PATH or in /usr/sbin, where Debian
// puts the servers and which a non-login root shell may lack on PATH.
func lookPaths(names ...string) (map[string]string, error) {
	found := make(map[string]string, len(names))
	for _, name := range names {
		p, err := exec.LookPath(name)
		if err != nil {
			alt := filepath.Join("/usr/sbin", name)
			if st, serr := os.Stat(alt); serr != nil || st.IsDir() {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			p = alt
		}
		found[name] = p
	}
	return found, nil
}

// writeTestTLS writes into dir a new CA (ca.crt) and a server
// certificate it signed for the given IP addresses and host names
// (server.crt, server.key with mode 0600, which Samba insists on). The
// certificate is made here rather than left to the server because Go
// rejects Samba's own (negative serial number, no SAN).
func writeTestTLS(dir string, ips []net.IP, hosts []string) (caFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("TLS directory: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "dirsync test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           ips,
		DNSNames:              hosts,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", fmt.Errorf("server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("server key: %w", err)
	}
	caFile = filepath.Join(dir, "ca.crt")
	files := []struct {
		name, pemType string
		der           []byte
		mode          os.FileMode
	}{
		{caFile, "CERTIFICATE", caDER, 0o644},
		{filepath.Join(dir, "server.crt"), "CERTIFICATE", srvDER, 0o644},
		{filepath.Join(dir, "server.key"), "PRIVATE KEY", keyDER, 0o600},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.pemType, Bytes: f.der})
		if err := os.WriteFile(f.name, data, f.mode); err != nil {
			return "", fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	return caFile, nil
}

// randomSerial is a positive 128-bit serial number.
func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// ldifRecord is one record of an LDIF: an entry to add or a change.
type ldifRecord struct {
	line       int // where the record starts, for messages
	dn         string
	changeType string           // add, modify, delete or modrdn
	attrs      []ldap.Attribute // add: in the order written
	mods       []ldap.Change    // modify
	newRDN     string           // modrdn
	deleteOld  bool             // modrdn
	newSup     string           // modrdn, optional
}

func (r *ldifRecord) apply(conn *ldap.Conn) error {
	switch r.changeType {
	case "add":
		req := ldap.NewAddRequest(r.dn, nil)
		req.Attributes = r.attrs
		return conn.Add(req)
	case "modify":
		req := ldap.NewModifyRequest(r.dn, nil)
		req.Changes = r.mods
		return conn.Modify(req)
	case "delete":
		return conn.Del(ldap.NewDelRequest(r.dn, nil))
	default: // modrdn
		return conn.ModifyDN(ldap.NewModifyDNRequest(r.dn, r.newRDN, r.deleteOld, r.newSup))
	}
}

// ldifLine is one logical line (continuations joined) and where it
// started.
type ldifLine struct {
	n    int
	text string
}

// parseLDIF reads the subset of RFC 2849 tests write: records separated
// by blank lines, "#" comments, continuation lines starting with a
// space, "attr: value" and "attr:: base64", and changetype add, modify,
// delete and modrdn (moddn). URL values (attr:<) and controls are not
// supported. A record without changetype is an entry to add.
func parseLDIF(text string) ([]ldifRecord, error) {
	var records []ldifRecord
	for _, block := range ldifBlocks(text) {
		r, err := parseLDIFRecord(block)
		if err != nil {
			return nil, err
		}
		if r != nil {
			records = append(records, *r)
		}
	}
	return records, nil
}

// ldifBlocks splits an LDIF into records of logical lines, dropping
// comments and joining continuation lines.
func ldifBlocks(text string) [][]ldifLine {
	var blocks [][]ldifLine
	var cur []ldifLine
	inComment := false
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimSuffix(raw, "\r")
		switch {
		case strings.TrimSpace(raw) == "" && !strings.HasPrefix(raw, " "):
			if len(cur) > 0 {
				blocks = append(blocks, cur)
				cur = nil
			}
			inComment = false
		case strings.HasPrefix(raw, "#"):
			inComment = true
		case strings.HasPrefix(raw, " "):
			if inComment {
				continue // a folded comment
			}
			if len(cur) > 0 {
				cur[len(cur)-1].text += raw[1:]
			}
		default:
			inComment = false
			cur = append(cur, ldifLine{n: i + 1, text: raw})
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
}

func parseLDIFRecord(lines []ldifLine) (*ldifRecord, error) {
	attr, val, err := parseLDIFLine(lines[0])
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(attr, "version") {
		if len(lines) == 1 {
			return nil, nil
		}
		lines = lines[1:]
		if attr, val, err = parseLDIFLine(lines[0]); err != nil {
			return nil, err
		}
	}
	if !strings.EqualFold(attr, "dn") {
		return nil, fmt.Errorf("LDIF line %d: a record starts with dn:, not %q", lines[0].n, attr)
	}
	r := &ldifRecord{line: lines[0].n, dn: val, changeType: "add"}
	rest := lines[1:]
	if len(rest) > 0 {
		a, v, err := parseLDIFLine(rest[0])
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(a, "changetype") {
			r.changeType = strings.ToLower(v)
			rest = rest[1:]
		}
	}
	switch r.changeType {
	case "add":
		err = r.parseAdd(rest)
	case "modify":
		err = r.parseModify(rest)
	case "delete":
		if len(rest) > 0 {
			err = fmt.Errorf("LDIF line %d: changetype delete takes no attributes", rest[0].n)
		}
	case "modrdn", "moddn":
		r.changeType = "modrdn"
		err = r.parseModRDN(rest)
	default:
		err = fmt.Errorf("LDIF line %d: changetype %q is none of add, modify, delete, modrdn", r.line+1, r.changeType)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ldifRecord) parseAdd(lines []ldifLine) error {
	if len(lines) == 0 {
		return fmt.Errorf("LDIF line %d: entry %s has no attributes", r.line, r.dn)
	}
	index := map[string]int{}
	for _, l := range lines {
		a, v, err := parseLDIFLine(l)
		if err != nil {
			return err
		}
		key := strings.ToLower(a)
		i, ok := index[key]
		if !ok {
			i = len(r.attrs)
			index[key] = i
			r.attrs = append(r.attrs, ldap.Attribute{Type: a})
		}
		r.attrs[i].Vals = append(r.attrs[i].Vals, v)
	}
	return nil
}

func (r *ldifRecord) parseModify(lines []ldifLine) error {
	ops := map[string]uint{"add": ldap.AddAttribute, "delete": ldap.DeleteAttribute, "replace": ldap.ReplaceAttribute}
	var cur *ldap.Change
	for _, l := range lines {
		if l.text == "-" {
			if cur == nil {
				return fmt.Errorf("LDIF line %d: \"-\" without an add:, replace: or delete: before it", l.n)
			}
			r.mods = append(r.mods, *cur)
			cur = nil
			continue
		}
		a, v, err := parseLDIFLine(l)
		if err != nil {
			return err
		}
		if cur == nil {
			op, ok := ops[strings.ToLower(a)]
			if !ok {
				return fmt.Errorf("LDIF line %d: expected add:, replace: or delete:, got %q", l.n, a)
			}
			cur = &ldap.Change{Operation: op, Modification: ldap.PartialAttribute{Type: v}}
			continue
		}
		if !strings.EqualFold(a, cur.Modification.Type) {
			return fmt.Errorf("LDIF line %d: value of %q inside the change of %q (missing \"-\"?)", l.n, a, cur.Modification.Type)
		}
		cur.Modification.Vals = append(cur.Modification.Vals, v)
	}
	if cur != nil { // the last "-" is optional
		r.mods = append(r.mods, *cur)
	}
	if len(r.mods) == 0 {
		return fmt.Errorf("LDIF line %d: changetype modify without changes", r.line)
	}
	return nil
}

func (r *ldifRecord) parseModRDN(lines []ldifLine) error {
	r.deleteOld = true
	for _, l := range lines {
		a, v, err := parseLDIFLine(l)
		if err != nil {
			return err
		}
		switch strings.ToLower(a) {
		case "newrdn":
			r.newRDN = v
		case "deleteoldrdn":
			r.deleteOld = v == "1"
		case "newsuperior":
			r.newSup = v
		default:
			return fmt.Errorf("LDIF line %d: %q in a modrdn (newrdn, deleteoldrdn, newsuperior)", l.n, a)
		}
	}
	if r.newRDN == "" {
		return fmt.Errorf("LDIF line %d: modrdn without newrdn", r.line)
	}
	return nil
}

// parseLDIFLine splits "attr: value" or "attr:: base64".
func parseLDIFLine(l ldifLine) (attr, value string, err error) {
	attr, value, ok := strings.Cut(l.text, ":")
	if !ok || attr == "" {
		return "", "", fmt.Errorf("LDIF line %d: %q is not \"attribute: value\"", l.n, l.text)
	}
	switch {
	case strings.HasPrefix(value, ":"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value[1:]))
		if err != nil {
			return "", "", fmt.Errorf("LDIF line %d: base64 value of %s: %w", l.n, attr, err)
		}
		return attr, string(b), nil
	case strings.HasPrefix(value, "<"):
		return "", "", fmt.Errorf("LDIF line %d: URL values (%s:<) are not supported", l.n, attr)
	default:
		return attr, strings.TrimLeft(value, " "), nil
	}
}
