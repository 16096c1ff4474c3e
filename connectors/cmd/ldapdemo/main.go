// Command ldapdemo starts a directory server holding the demo directory,
// for trying the LDAP connector by hand: a Samba Active Directory domain
// controller on a loopback address 127.0.0.N (-flavor active_directory,
// the default; needs Samba and root, for port 389) or an OpenLDAP slapd on
// two free 127.0.0.1 ports (-flavor openldap). make run-ad runs it beside
// graphsim and dirsyncd.
//
// The server is the one the tests start (internal/testenv), made anew in
// -dir at each start, with its own CA. Once it answers, ldapdemo writes
// beside it what a connector block needs: ca.pem, bind-password (mode
// 0600) and ldap.env (the same as shell variables, for scripts), prints
// the URL, the bind DN and a connector block, and serves until
// interrupted (Ctrl-C, SIGTERM), when it stops the server.
//
//	go run ./connectors/cmd/ldapdemo -dir data/ldapdemo
//	go run ./connectors/cmd/ldapdemo -flavor openldap -users 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
	"github.com/dirsync/dirsync/internal/testenv"
)

func main() {
	flavor := flag.String("flavor", testenv.FlavorActiveDirectory, "the server: active_directory (a Samba AD DC; root) or openldap (slapd)")
	dir := flag.String("dir", "data/ldapdemo", "the folder for the server and the files it writes (its server is made anew at each start)")
	users := flag.Int("users", 40, fmt.Sprintf("generated colleagues besides the test directory's people (0 to %d)", maxUsers))
	env := flag.String("env", "", "where to write the connection as shell variables (default: <dir>/ldap.env)")
	grant := flag.Bool("grant-deleted-objects", true, "Active Directory: let the read account read CN=Deleted Objects, so that syncs read deletions as changes (false: every sync is a full read, and says why)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: ldapdemo [flags]\n\nStarts a directory server holding the LDAP connector's demo directory, until interrupted.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || (*flavor != testenv.FlavorActiveDirectory && *flavor != testenv.FlavorOpenLDAP) || *users < 0 || *users > maxUsers {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, options{flavor: *flavor, dir: *dir, users: *users, env: *env, grant: *grant}); err != nil {
		fmt.Fprintf(os.Stderr, "ldapdemo: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	flavor, dir, env string
	users            int
	grant            bool
}

// progress prints a line about what ldapdemo is doing.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ldapdemo: "+format+"\n", args...)
}

func run(ctx context.Context, o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if o.env == "" {
		o.env = filepath.Join(dir, "ldap.env")
	}
	d := ldaptest.Directory{Flavor: o.flavor, Base: "ou=corp,dc=example,dc=com"}
	if d.AD() {
		d.Base = "OU=Corp,DC=example,DC=test"
	}
	// The last start's server and files go: a launch makes a new one.
	for _, old := range []string{filepath.Join(dir, "dc"), filepath.Join(dir, "slapd"), filepath.Join(dir, "ca.pem"),
		filepath.Join(dir, "bind-password"), o.env} {
		if err := os.RemoveAll(old); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	seed, groups := demoSeed(d, o.users)

	srv, err := launch(d, dir, seed)
	if err != nil {
		return err
	}
	defer func() {
		if err := srv.Close(); err != nil {
			progress("%v", err)
		}
	}()
	if ctx.Err() != nil {
		progress("stopping")
		return nil
	}
	deletions := ""
	if d.AD() && o.grant {
		progress("letting %s read CN=Deleted Objects (dsacls /G account:LCRP, done with Samba's bindings)", srv.ReaderDN)
		if err := srv.GrantDeletedObjects(srv.ReaderDN); err != nil {
			progress("%v\n  every sync of the directory will be a full read, saying why", err)
		} else {
			deletions = "; it may read CN=Deleted Objects, so syncs read deletions as changes"
		}
	}
	files, err := writeFiles(dir, o.env, srv, d)
	if err != nil {
		return err
	}
	fmt.Print(describe(srv, d, files, summary(d, o.users, groups), deletions))

	select {
	case <-ctx.Done():
		progress("stopping the server")
		return nil
	case <-srv.Exited():
		return fmt.Errorf("the server exited on its own; its output ends:\n%s", srv.OutputTail())
	}
}

// launch starts the server with the seed, printing a line every few
// seconds while it starts: provisioning a Samba domain for the first
// time on a machine takes 5-10 s, seeding it online about as long again.
func launch(d ldaptest.Directory, dir, seed string) (*testenv.LDAPServer, error) {
	what := "an OpenLDAP slapd"
	if d.AD() {
		what = "a Samba AD domain controller for EXAMPLE.TEST (the first start on this machine provisions the domain: 5-10 s)"
	}
	progress("starting %s with the demo directory under %s", what, d.Base)
	start := time.Now()
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(3 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				progress("... still starting (%.0f s)", time.Since(start).Seconds())
			}
		}
	}()
	var srv *testenv.LDAPServer
	var err error
	if d.AD() {
		srv, err = testenv.LaunchSambaDC(dir, seed)
	} else {
		srv, err = testenv.LaunchSlapd(dir, seed)
	}
	switch {
	case errors.Is(err, testenv.ErrSambaUnavailable), errors.Is(err, testenv.ErrSlapdUnavailable):
		return nil, fmt.Errorf("%w\n  (-flavor openldap runs an OpenLDAP slapd instead, without root: %s)", err, testenv.SlapdInstall)
	case err != nil:
		return nil, err
	}
	progress("%s answers on %s after %.1f s", srv.Flavor, srv.LDAPSURL, time.Since(start).Seconds())
	return srv, nil
}

// connFiles are the files a connector block names.
type connFiles struct {
	ca, password string
}

// writeFiles writes the CA, the read account's password (0600) and the
// shell variables, the last, so that a script waiting for it finds the
// others.
func writeFiles(dir, env string, srv *testenv.LDAPServer, d ldaptest.Directory) (connFiles, error) {
	f := connFiles{ca: filepath.Join(dir, "ca.pem"), password: filepath.Join(dir, "bind-password")}
	ca, err := os.ReadFile(srv.CAFile)
	if err != nil {
		return f, err
	}
	if err := os.WriteFile(f.ca, ca, 0o644); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.password, []byte(srv.ReaderPassword+"\n"), 0o600); err != nil {
		return f, err
	}
	vars := []struct{ name, value string }{
		{"LDAP_FLAVOR", srv.Flavor},
		{"LDAP_URL", srv.LDAPSURL},
		{"LDAP_PLAIN_URL", srv.URL},
		{"LDAP_CA_FILE", f.ca},
		{"LDAP_BIND_DN", srv.ReaderDN},
		{"LDAP_BIND_PASSWORD_FILE", f.password},
		{"LDAP_BASE_DN", d.Base},
		{"LDAP_ADMIN_DN", srv.AdminDN},
		{"LDAP_ADMIN_PASSWORD", srv.AdminPassword},
	}
	var b strings.Builder
	b.WriteString("# written by ldapdemo for the server it runs; sourced by scripts/run-ad.sh\n")
	for _, v := range vars {
		fmt.Fprintf(&b, "%s=%s\n", v.name, shellQuote(v.value))
	}
	tmp := env + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return f, err
	}
	return f, os.Rename(tmp, env)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// describe is what ldapdemo prints once the server runs.
func describe(srv *testenv.LDAPServer, d ldaptest.Directory, f connFiles, holds, deletions string) string {
	name := "OpenLDAP (slapd)"
	if d.AD() {
		name = "Active Directory (Samba)"
	}
	return fmt.Sprintf(`%s with the demo directory: %s.
  url       %s (or %s)
  ca_file   %s
  bind_dn   %s (a read account%s)
  password  %s
  base_dn   %s
  admin     %s, password %s (to change the directory)
A connector block for plugins.hcl:
  connector "corp" {
    plugin = "ldap"
    config {
      url                = %q
      ca_file            = %q
      bind_dn            = %q
      bind_password_file = %q
      base_dn            = %q
    }
  }
Ctrl-C stops the server.
`, name, holds, srv.LDAPSURL, srv.URL, f.ca, srv.ReaderDN, deletions, f.password, d.Base, srv.AdminDN, srv.AdminPassword,
		srv.LDAPSURL, f.ca, srv.ReaderDN, f.password, d.Base)
}
