package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Directory servers for callers without a test: the benchmark and the
// demo (connectors/cmd/ldapdemo, make run-ad) start the servers the tests
// start, and stop them with Close. LaunchSambaDC is in samba.go beside
// StartSambaDC; LaunchSlapd is here, and StartSlapd wraps it.

// ErrSlapdUnavailable is LaunchSlapd's error where slapd is not
// installed. Tests skip on it; the demo says how to install it.
var ErrSlapdUnavailable = errors.New("no OpenLDAP slapd can run here")

// SlapdInstall is the command that installs what LaunchSlapd needs on
// Debian and Ubuntu.
const SlapdInstall = "apt-get install slapd"

// LaunchSlapd is StartSlapd for a caller without a test: it loads
// seedLDIF (plain entries, parents first) below the base entries into a
// new instance in dir/slapd, starts slapd on two free 127.0.0.1 ports
// and returns it running; the caller stops it with Close. Where slapd is
// not installed, the error wraps ErrSlapdUnavailable and says what to do.
func LaunchSlapd(dir, seedLDIF string) (*LDAPServer, error) {
	bins, err := lookPaths("slapd", "slapadd")
	if err != nil {
		return nil, fmt.Errorf("%w: slapd is not installed (%v): %s (scripts/test.sh does it where apt works)", ErrSlapdUnavailable, err, SlapdInstall)
	}
	dir = filepath.Join(dir, "slapd")
	caFile, err := prepareSlapd(bins["slapadd"], dir, seedLDIF)
	if err != nil {
		return nil, err
	}
	s := &LDAPServer{
		Flavor: FlavorOpenLDAP, CAFile: caFile, BaseDN: slapdBaseDN,
		AdminDN: slapdAdminDN, AdminPassword: slapdAdminPassword,
		ReaderDN: slapdReaderDN, ReaderPassword: slapdReaderPassword,
		name: "slapd", out: &LockedBuffer{}, data: filepath.Join(dir, "data"),
	}
	s.start = func() (*ldapChild, error) {
		if s.URL != "" { // a restart: the URLs stay what the caller knows
			return startSlapd(bins["slapd"], dir, s.URL, s.LDAPSURL, s.out)
		}
		for attempt := 1; ; attempt++ {
			ldapAddr, err1 := FreeLoopbackAddr()
			ldapsAddr, err2 := FreeLoopbackAddr()
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			url, ldapsURL := "ldap://"+ldapAddr, "ldaps://"+ldapsAddr
			c, err := startSlapd(bins["slapd"], dir, url, ldapsURL, s.out)
			if errors.Is(err, errPortBusy) && attempt < 5 {
				continue
			}
			if err == nil {
				s.URL, s.LDAPSURL = url, ldapsURL
			}
			return c, err
		}
	}
	if s.child, err = s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Exited is closed once the server's process has exited, whether Close
// stopped it or it died: a caller that keeps a server running (the demo)
// waits on it to notice a crash.
func (s *LDAPServer) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.child.done
}

// OutputTail is the end of the server's output, where the reason it
// exited is.
func (s *LDAPServer) OutputTail() string { return outputTail(s.out) }

// grantDeletedObjectsScript adds to the DACL of the domain's Deleted
// Objects container an ACE letting one account list it and read its
// tombstones' properties (LCRP), unless it has one: what
//
//	dsacls "CN=Deleted Objects,<domain DN>" /takeownership
//	dsacls "CN=Deleted Objects,<domain DN>" /G <account>:LCRP
//
// do on Windows. Over LDAP even the Administrator may not read that
// container's security descriptor (its owner is SYSTEM, and only SYSTEM
// and BUILTIN\Administrators may list it), and samba-tool dsacl cannot
// find the container (it searches without the Show Deleted control), so
// this edits the domain's database directly, as SYSTEM, with Samba's own
// Python bindings. Arguments: smb.conf, sam.ldb, the account's DN.
const grantDeletedObjectsScript = `
import sys
import ldb
from samba.auth import system_session
from samba.dcerpc import security
from samba.ndr import ndr_pack, ndr_unpack
from samba.param import LoadParm
from samba.samdb import SamDB

conf, url, account = sys.argv[1:4]
lp = LoadParm()
lp.load(conf)
db = SamDB(url=url, session_info=system_session(), lp=lp)
sid = ndr_unpack(security.dom_sid, db.search(base=account, scope=ldb.SCOPE_BASE, attrs=["objectSid"])[0]["objectSid"][0])
dn = "CN=Deleted Objects," + str(db.get_default_basedn())
res = db.search(base=dn, scope=ldb.SCOPE_BASE, attrs=["nTSecurityDescriptor"], controls=["show_deleted:1"])
sd = ndr_unpack(security.descriptor, res[0]["nTSecurityDescriptor"][0])
if ("(A;;RPLC;;;%s)" % sid) in sd.as_sddl():
    sys.exit(0)  # granted already
ace = security.ace()
ace.type = security.SEC_ACE_TYPE_ACCESS_ALLOWED
ace.access_mask = security.SEC_ADS_LIST | security.SEC_ADS_READ_PROP
ace.trustee = sid
sd.dacl_add(ace)
m = ldb.Message()
m.dn = ldb.Dn(db, dn)
m["nTSecurityDescriptor"] = ldb.MessageElement(ndr_pack(sd), ldb.FLAG_MOD_REPLACE, "nTSecurityDescriptor")
db.modify(m, controls=["show_deleted:1"])
`

// GrantDeletedObjects lets account (a DN) read the Deleted Objects
// container of a running Samba domain controller, as the dsacls
// commands in grantDeletedObjectsScript's comment do on Windows: then a
// read account sees deletions, and the LDAP connector's incremental
// reads need no full read. The change is live: Samba need not restart.
func (s *LDAPServer) GrantDeletedObjects(account string) error {
	if s.Flavor != FlavorActiveDirectory {
		return fmt.Errorf("GrantDeletedObjects: %s has no Deleted Objects container", s.name)
	}
	python, err := sambaPython()
	if err != nil {
		return err
	}
	instance := filepath.Dir(s.data) // s.data is the instance's private dir
	cmd := exec.Command(python, "-c", grantDeletedObjectsScript,
		filepath.Join(instance, "etc", "smb.conf"), filepath.Join(s.data, "sam.ldb"), account)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("granting %s read access to CN=Deleted Objects (%s with Samba's bindings): %w\n%s", account, python, err, tail(string(out), 20))
	}
	return nil
}

// sambaPython is the Python interpreter that has Samba's bindings: the
// one samba-tool's first line names.
func sambaPython() (string, error) {
	bins, err := lookPaths("samba-tool")
	if err != nil {
		return "", err
	}
	f, err := os.Open(bins["samba-tool"])
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	first, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(first, "#!"))
	switch {
	case !strings.HasPrefix(first, "#!") || len(fields) == 0:
		return "", fmt.Errorf("%s does not start with #!python: cannot tell which Python has Samba's bindings", bins["samba-tool"])
	case filepath.Base(fields[0]) == "env" && len(fields) > 1:
		return exec.LookPath(fields[1])
	}
	return fields[0], nil
}
