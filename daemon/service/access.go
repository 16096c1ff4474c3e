package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/daemon/config"
)

// PermissionError says that a file or directory the daemon keeps or reads
// its secrets from is open to other users, or belongs to another user, and
// what to run to fix it. The daemon refuses to start (or a job to launch)
// rather than repair it silently: a loose mode means the secret may
// already have been read, and the admin must know.
type PermissionError struct {
	// What names the file's role, e.g. "data directory" or
	// `connector "demo" client_secret_file`.
	What string
	// Path is the file as named in plugins.hcl (absolute).
	Path string
	// Mode is the file's permission bits.
	Mode fs.FileMode
	// Owner is the uid that owns the file; Owner != Self when that is the
	// problem, else the two are equal.
	Owner, Self int
}

// Error names the file, its mode or owner, and the command that fixes it.
func (e *PermissionError) Error() string {
	if e.Owner != e.Self {
		return fmt.Sprintf("%s %s belongs to uid %d, not to the user dirsyncd runs as (uid %d) or root: that user could read or replace it; "+
			"run `chown %d %s` or run dirsyncd as its owner", e.What, e.Path, e.Owner, e.Self, e.Self, shellQuote(e.Path))
	}
	want := "600"
	if e.Mode.IsDir() {
		want = "700"
	}
	return fmt.Sprintf("%s %s is accessible by other users (mode %04o): dirsyncd refuses to use it while others can read it; run `chmod %s %s`",
		e.What, e.Path, e.Mode.Perm(), want, shellQuote(e.Path))
}

// checkPrivate refuses a file or directory that group or others may read,
// write or search (mode & 0o077), or that belongs to a user other than the
// daemon's or root. Root is allowed because root can read everything
// anyway; another user's 0600 file would be readable only by a root
// daemon, and that user could swap the secret under it, as sshd's
// StrictModes reasons. A file under $CREDENTIALS_DIRECTORY is exempt:
// systemd owns those and grants the service user through an ACL, which
// makes group bits look open. Symbolic links are followed: the target
// holds the secret.
func checkPrivate(what, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if isCredential(path) {
		return nil
	}
	self := os.Geteuid()
	e := &PermissionError{What: what, Path: path, Mode: fi.Mode(), Owner: self, Self: self}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != self && st.Uid != 0 {
		e.Owner = int(st.Uid)
		return e
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return e
	}
	return nil
}

// checkPrivateIfExists is checkPrivate for a file the daemon creates
// itself when it is missing (the nkey seed, the JetStream store).
func checkPrivateIfExists(what, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return checkPrivate(what, path)
}

// checkAccess runs before the daemon opens anything: it creates the data
// directory owner-only when missing and refuses a data directory, store or
// credential file that other users can reach. Every problem is reported,
// one per line.
func checkAccess(cfg *config.Config) error {
	dir := cfg.Daemon.DataDir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating data directory %s: %w", dir, err)
		}
	}
	if err := checkPrivate("data directory", dir); err != nil {
		// Nothing inside matters while the directory itself is open.
		return err
	}
	var problems []error
	add := func(err error) {
		if err != nil {
			problems = append(problems, err)
		}
	}
	add(checkPrivateIfExists("JetStream store", filepath.Join(dir, "jetstream")))
	if cfg.NATS.Embedded() {
		add(checkPrivateIfExists("NATS nkey seed", filepath.Join(dir, broker.NkeyFileName)))
		add(checkPrivateIfExists("NATS consumer nkey seed", filepath.Join(dir, broker.ConsumerNkeyFileName)))
	}
	if f := cfg.NATS.CredsFile; f != "" {
		add(checkPrivate("nats creds_file", f))
	}
	if f := cfg.NATS.NkeyFile; f != "" {
		add(checkPrivate("nats nkey_file", f))
	}
	if cfg.API.Enabled() {
		add(checkPrivate("api token_file", cfg.API.TokenFile))
		if cfg.API.TLS() {
			add(checkPrivate("api tls_key_file", cfg.API.TLSKeyFile))
		}
	}
	return errors.Join(problems...)
}

// secretFile is a connector config key naming a file that holds a secret.
type secretFile struct{ key, path string }

// secretFiles lists the keys of a connector's config that name a secret
// file, with their paths resolved as the plugin resolves them (against
// baseDir, the folder of plugins.hcl). A plugin's schema says so by
// convention: a key ending in "_file" that is itself Sensitive, or that
// shares its one_of_group with a Sensitive key (client_secret_file, the
// alternative to client_secret).
func secretFiles(fields []*connectorv1.ConfigField, values map[string]any, baseDir string) []secretFile {
	sensitiveGroup := map[string]bool{}
	for _, f := range fields {
		if f.GetSensitive() && f.GetOneOfGroup() != "" {
			sensitiveGroup[f.GetOneOfGroup()] = true
		}
	}
	var out []secretFile
	for _, f := range fields {
		if !strings.HasSuffix(f.GetName(), "_file") || !(f.GetSensitive() || sensitiveGroup[f.GetOneOfGroup()]) {
			continue
		}
		p, _ := values[f.GetName()].(string)
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(baseDir, p)
		}
		out = append(out, secretFile{key: f.GetName(), path: p})
	}
	return out
}

// shellQuote quotes a path for a command an admin copies into a shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
