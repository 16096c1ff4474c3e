package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// The domain StartSambaDC provisions. The passwords meet AD's default
// complexity rules, which a seed's passwords must meet too.
const (
	sambaBaseDN         = "DC=example,DC=test"
	sambaAdminDN        = "CN=Administrator,CN=Users,DC=example,DC=test"
	sambaAdminPassword  = "Passw0rd!Admin"
	sambaReaderDN       = "CN=reader,CN=Users,DC=example,DC=test"
	sambaReaderPassword = "Passw0rd!reader"
)

// sambaConfig is each instance's smb.conf (@DIR@ its directory, @IP@
// its loopback address). Samba's LDAP port is fixed at 389, so every
// instance gets its own 127.0.0.N: "IP/8" is accepted as an interface
// although only 127.0.0.1 is configured on lo (a bare IP binds nothing).
// Only the LDAP service runs (the others need winbind, DNS or more
// ports); simple binds over plain LDAP are allowed, as tests bind so;
// every path is the instance's, or a second instance would find the
// first one's pid file; the certificate is the test CA's, because Go
// rejects the one Samba would generate. ldb:nosync skips the fsync of
// every write, as Samba's own test environments do: a test server's
// data need not survive a machine crash, and the syncs made seeding
// four times slower.
const sambaConfig = `[global]
	netbios name = DC1
	workgroup = EXAMPLE
	realm = EXAMPLE.TEST
	server role = active directory domain controller
	idmap_ldb:use rfc2307 = yes
	interfaces = @IP@/8
	bind interfaces only = yes
	server services = ldap
	disable netbios = yes
	ldap server require strong auth = no
	private dir = @DIR@/private
	lock directory = @DIR@
	state directory = @DIR@/state
	cache directory = @DIR@/cache
	binddns dir = @DIR@/bind-dns
	pid directory = @DIR@/run
	ncalrpc dir = @DIR@/ncalrpc
	log level = 1
	ldb:nosync = true
	tls enabled = yes
	tls keyfile = @DIR@/tls/server.key
	tls certfile = @DIR@/tls/server.crt
	tls cafile = @DIR@/tls/ca.crt

[sysvol]
	path = @DIR@/state/sysvol
	read only = No

[netlogon]
	path = @DIR@/state/sysvol/example.test/scripts
	read only = No
`

// StartSambaDC starts a Samba Active Directory domain controller for
// EXAMPLE.TEST (base DN DC=example,DC=test) on its own loopback address
// 127.0.0.N, port 389 (LDAPS on 636), and stops it when the test ends.
// The domain is provisioned once per machine and Samba version and
// copied for each instance. After the start it adds, as the admin, the
// reader (a normal domain user) and then seedLDIF ("" for none; entries
// and changes, as Apply takes them; passwords as unicodePwd:: with
// UnicodePwd). The test is skipped where Samba is not installed or the
// test does not run as root (port 389).
func StartSambaDC(t testing.TB, seedLDIF string) *LDAPServer {
	t.Helper()
	dir := shortTempDir(t)
	s, err := LaunchSambaDC(dir, seedLDIF)
	if errors.Is(err, ErrSambaUnavailable) {
		t.Skip(err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	// Registered after shortTempDir's removal, so it runs first: Samba
	// must have exited before its folder goes.
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping %s: %v", s.name, err)
		}
	})
	return s
}

// ErrSambaUnavailable is LaunchSambaDC's error where no domain
// controller can run here: Samba is not installed, or the process is not
// root. Tests skip on it; the benchmark says how to install Samba.
var ErrSambaUnavailable = errors.New("no Samba AD DC can run here")

// SambaInstall is the command that installs what LaunchSambaDC needs on
// Debian and Ubuntu.
const SambaInstall = "apt-get install --no-install-recommends samba samba-dsdb-modules samba-vfs-modules samba-ad-provision"

// LaunchSambaDC is StartSambaDC for a caller without a test (the
// benchmark): it starts the domain controller with its files in
// dir/dc, seeds it, and returns it running; the caller stops it with
// Close. Where Samba is not installed or the process is not root, the
// error wraps ErrSambaUnavailable and says what to do.
func LaunchSambaDC(dir, seedLDIF string) (*LDAPServer, error) {
	return LaunchSambaDCWith(dir, seedLDIF, SambaOptions{})
}

// SambaOptions change how LaunchSambaDCWith provisions the domain.
type SambaOptions struct {
	// LMDB stores the domain in LMDB (provision --backend-store=mdb)
	// instead of TDB, Samba's default, which the tests use. Samba
	// recommends LMDB for large domains, and a large seed needs it: with
	// TDB every add rewrites index records as long as the domain
	// (objectClass=user lists every user), so adding users slows down as
	// they grow (8,000 users took 139 s offline with TDB, 21 s with LMDB,
	// on a 2-core machine).
	LMDB bool
	// BulkLDIF is entries (plain entries to add, parents first) added
	// before the first start, through Samba's Python bindings straight
	// into the domain's database as SYSTEM, one process and no LDAP: for
	// a seed of many thousand entries, which over LDAP slows down as the
	// domain grows even with LMDB (20,000 users took 7.5 minutes over
	// LDAP, 70-90 s this way, on a 2-core machine). The entries' USNs are
	// older than anything the running server writes, as a domain's
	// existing objects are.
	BulkLDIF string
	// Logf, if set, receives BulkLDIF's progress: a line every few
	// seconds.
	Logf func(format string, args ...any)
}

// LaunchSambaDCWith is LaunchSambaDC on a domain provisioned as o says.
func LaunchSambaDCWith(dir, seedLDIF string, o SambaOptions) (*LDAPServer, error) {
	bins, err := lookPaths("samba", "samba-tool")
	if err != nil {
		return nil, fmt.Errorf("%w: Samba is not installed (%v): %s (scripts/test.sh does it where apt works)", ErrSambaUnavailable, err, SambaInstall)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: a Samba AD DC listens on port 389, which takes root: run as root (CI does)", ErrSambaUnavailable)
	}
	store := "tdb"
	if o.LMDB {
		store = "mdb"
	}
	template, err := sambaTemplate(bins["samba"], bins["samba-tool"], store)
	if err != nil {
		return nil, err
	}
	ip, release, err := claimLoopbackIP()
	if err != nil {
		return nil, err
	}
	s, err := newSambaDC(bins["samba"], template, filepath.Join(dir, "dc"), ip)
	if err != nil {
		release()
		return nil, err
	}
	s.release = release
	if o.BulkLDIF != "" {
		if err := s.bulkAdd(o.BulkLDIF, o.Logf); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if s.child, err = s.start(); err != nil {
		_ = s.Close()
		return nil, err
	}
	for _, ldif := range []string{sambaReader(), seedLDIF} {
		if err := s.apply(ldif); err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("seeding Samba on %s: %w", s.URL, err)
		}
	}
	return s, nil
}

// bulkAddScript adds an LDIF file's entries to a stopped domain's
// database as SYSTEM, each in its own transaction (one transaction of
// thousands of adds is slower: ldb copies every index list it changes
// once per add inside a transaction), and prints how far it got every
// five seconds. Arguments: smb.conf, sam.ldb, the LDIF file.
const bulkAddScript = `
import sys, time
import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

conf, url, path = sys.argv[1:4]
lp = LoadParm()
lp.load(conf)
db = SamDB(url=url, session_info=system_session(), lp=lp, flags=ldb.FLG_NOSYNC)
with open(path) as f:
    text = f.read()
total = text.count("\ndn:") + text.startswith("dn:")
n, last = 0, time.time()
for _, msg in db.parse_ldif(text):
    try:
        db.add(msg)
    except ldb.LdbError as e:
        sys.exit("adding %s: %s" % (msg.dn, e.args[1]))
    n += 1
    if time.time() - last >= 5:
        print("added %d of %d entries" % (n, total), flush=True)
        last = time.time()
print("added %d of %d entries" % (n, total), flush=True)
`

// bulkAdd adds ldif's entries to the stopped domain with
// bulkAddScript, passing its progress lines to logf.
func (s *LDAPServer) bulkAdd(ldif string, logf func(format string, args ...any)) error {
	python, err := sambaPython()
	if err != nil {
		return err
	}
	instance := filepath.Dir(s.data) // s.data is the instance's private dir
	path := filepath.Join(instance, "bulk.ldif")
	if err := os.WriteFile(path, []byte(ldif), 0o600); err != nil {
		return err
	}
	defer func() { _ = os.Remove(path) }()
	cmd := exec.Command(python, "-c", bulkAddScript, filepath.Join(instance, "etc", "smb.conf"), filepath.Join(s.data, "sam.ldb"), path)
	var stderr LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("bulk add (%s with Samba's bindings): %w", python, err)
	}
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if logf != nil {
			logf("samba: %s", lines.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("bulk add (%s with Samba's bindings): %w\n%s", python, err, tail(stderr.String(), 20))
	}
	return nil
}

// newSambaDC copies the template to dir and configures an instance on
// ip there, not yet started.
func newSambaDC(samba, template, dir, ip string) (*LDAPServer, error) {
	if out, err := exec.Command("cp", "-a", template, dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copying the Samba template %s: %w: %s", template, err, out)
	}
	conf := filepath.Join(dir, "etc", "smb.conf")
	if err := os.WriteFile(conf, []byte(strings.NewReplacer("@DIR@", dir, "@IP@", ip).Replace(sambaConfig)), 0o600); err != nil {
		return nil, err
	}
	caFile, err := writeTestTLS(filepath.Join(dir, "tls"), []net.IP{net.ParseIP(ip)}, []string{"dc1.example.test"})
	if err != nil {
		return nil, err
	}
	s := &LDAPServer{
		Flavor: FlavorActiveDirectory, URL: "ldap://" + ip, LDAPSURL: "ldaps://" + ip, CAFile: caFile,
		BaseDN: sambaBaseDN, AdminDN: sambaAdminDN, AdminPassword: sambaAdminPassword,
		ReaderDN: sambaReaderDN, ReaderPassword: sambaReaderPassword,
		name: "samba", out: &LockedBuffer{}, data: filepath.Join(dir, "private"),
	}
	s.start = func() (*ldapChild, error) {
		// -i: foreground, logging to stdout, and exiting on EOF on stdin;
		// -M single: one process.
		c, err := startLDAPChild(s.out, true, samba, "-i", "-M", "single", "-s", conf)
		if err != nil {
			return nil, err
		}
		if err := waitLDAPReady(c, s.URL); err != nil {
			return nil, err
		}
		return c, nil
	}
	return s, nil
}

// sambaReader is the LDIF of the reader: a plain domain user, who may
// read what Authenticated Users may (nearly everything but secrets).
func sambaReader() string {
	return fmt.Sprintf(`dn: %s
objectClass: user
sAMAccountName: reader
userPrincipalName: reader@example.test
description: a plain domain user, the tests' less privileged bind
unicodePwd:: %s
userAccountControl: 512
`, sambaReaderDN, UnicodePwd(sambaReaderPassword))
}

// sambaTemplate returns the directory of a provisioned, never started
// domain, provisioning it first if no test on this machine has. It is
// shared by the test processes go test runs in parallel: an flock makes
// one of them provision (5–8 s) while the others wait for it, and the
// template appears only complete, renamed from the directory it was
// built in. Its name carries Samba's version, so an upgrade provisions
// anew, and the backend store (tdb or mdb) when it is not TDB.
func sambaTemplate(samba, sambaTool, store string) (string, error) {
	out, err := exec.Command(samba, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("samba --version: %w", err)
	}
	version := strings.TrimPrefix(strings.TrimSpace(string(out)), "Version ")
	version = regexp.MustCompile(`[^A-Za-z0-9.+-]`).ReplaceAllString(version, "_")
	dir := filepath.Join(os.TempDir(), "dirsync-samba-template-"+version)
	if store != "tdb" {
		dir += "-" + store
	}

	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("the Samba template lock: %w", err)
	}
	defer func() { _ = lock.Close() }() // releases the flock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "private", "sam.ldb")); err == nil {
		return dir, nil
	}
	// Builds that a killed test process left behind; none is running, as
	// this process holds the lock.
	stale, _ := filepath.Glob(dir + ".build-*")
	for _, d := range append(stale, dir) {
		_ = os.RemoveAll(d)
	}
	build, err := os.MkdirTemp(os.TempDir(), filepath.Base(dir)+".build-")
	if err != nil {
		return "", fmt.Errorf("the Samba template: %w", err)
	}
	// -s /dev/null: without it samba-tool copies Debian's smb.conf
	// (homes, printers, log files in /var/log) into the domain.
	cmd := exec.Command(sambaTool, "domain", "provision", "-s", "/dev/null", "--use-rfc2307",
		"--realm=EXAMPLE.TEST", "--domain=EXAMPLE", "--server-role=dc", "--dns-backend=NONE",
		"--host-name=dc1", "--adminpass="+sambaAdminPassword, "--backend-store="+store, "--targetdir="+build)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(build)
		return "", fmt.Errorf("provisioning the Samba template in %s: %w\n%s", build, err, tail(string(out), 40))
	}
	if err := os.Rename(build, dir); err != nil {
		_ = os.RemoveAll(build)
		return "", fmt.Errorf("the Samba template: %w", err)
	}
	return dir, nil
}

// claimLoopbackIP finds an address 127.0.0.N (N from 2 to 254) that no
// other test process uses and on which Samba's ports are free, and
// holds an flock on its lock file until release: go test runs
// packages in parallel processes, each of which may start instances.
func claimLoopbackIP() (ip string, release func(), err error) {
	for n := 2; n <= 254; n++ {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("dirsync-samba-ip-%d.lock", n))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("loopback address lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue // another instance has it
			}
			return "", nil, fmt.Errorf("locking %s: %w", path, err)
		}
		ip := fmt.Sprintf("127.0.0.%d", n)
		// Samba's LDAP service binds LDAP, LDAPS and the global catalog's two.
		if portsFree(ip, []int{389, 636, 3268, 3269}) {
			return ip, func() { _ = f.Close() }, nil
		}
		_ = f.Close() // something outside these tests listens there
	}
	return "", nil, errors.New("no address 127.0.0.2–254 with ports 389, 636, 3268 and 3269 free for a Samba instance " +
		"(does a system LDAP server listen on *:389? systemctl disable --now slapd samba-ad-dc)")
}

// portsFree reports whether ip's ports can be listened on now.
func portsFree(ip string, ports []int) bool {
	for _, p := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, p))
		if err != nil {
			return false
		}
		_ = ln.Close()
	}
	return true
}

// shortTempDir is t.TempDir() unless its path is so long (a long test
// name) that Samba's unix sockets below it would pass the 108-byte
// limit of a socket path; then a shorter directory removed at cleanup.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) <= 60 {
		return dir
	}
	dir, err := os.MkdirTemp("", "dirsync-samba-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
