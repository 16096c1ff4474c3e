package service

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/daemon/config"
)

// mkfile writes a file and sets its mode exactly (WriteFile is subject to
// the umask).
func mkfile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		mode    os.FileMode
		dir     bool
		wantErr string
	}{
		{name: "file 0600", mode: 0o600},
		{name: "file 0400", mode: 0o400},
		{name: "file 0640", mode: 0o640, wantErr: "(mode 0640): dirsyncd refuses to use it while others can read it; run `chmod 600 "},
		{name: "file 0604", mode: 0o604, wantErr: "(mode 0604)"},
		{name: "file 0610", mode: 0o610, wantErr: "(mode 0610)"},
		{name: "dir 0700", mode: 0o700, dir: true},
		{name: "dir 0755", mode: 0o755, dir: true, wantErr: "(mode 0755): dirsyncd refuses to use it while others can read it; run `chmod 700 "},
		{name: "dir 0701", mode: 0o701, dir: true, wantErr: "run `chmod 700 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.dir {
				mkdir(t, p, tt.mode)
			} else {
				mkfile(t, p, tt.mode)
			}
			err := checkPrivate("the thing", p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *PermissionError
			if !errors.As(err, &pe) || pe.Path != p || !strings.Contains(err.Error(), tt.wantErr) ||
				!strings.HasPrefix(err.Error(), "the thing "+p+" is accessible by other users") || !strings.HasSuffix(err.Error(), p+"`") {
				t.Fatalf("err = %v; want a PermissionError naming %s and %q", err, p, tt.wantErr)
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		err := checkPrivate("api token_file", filepath.Join(dir, "nope"))
		if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "api token_file: ") {
			t.Errorf("err = %v", err)
		}
		if err := checkPrivateIfExists("NATS nkey seed", filepath.Join(dir, "nope")); err != nil {
			t.Errorf("a missing file the daemon creates: %v", err)
		}
	})
	t.Run("a symlink is judged by its target", func(t *testing.T) {
		target := filepath.Join(dir, "loose-target")
		mkfile(t, target, 0o644)
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if err := checkPrivate("secret", link); err == nil {
			t.Error("a 0777 link to a 0644 file was accepted")
		}
	})
	t.Run("quoted fix for an odd path", func(t *testing.T) {
		p := filepath.Join(dir, "it's here")
		mkfile(t, p, 0o644)
		err := checkPrivate("secret", p)
		if err == nil || !strings.Contains(err.Error(), "`chmod 600 '"+strings.ReplaceAll(p, "'", `'\''`)+"'`") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("systemd credentials are exempt", func(t *testing.T) {
		cred := t.TempDir()
		p := filepath.Join(cred, "contoso-secret")
		mkfile(t, p, 0o440)
		if err := checkPrivate("secret", p); err == nil {
			t.Fatal("a 0440 file outside $CREDENTIALS_DIRECTORY was accepted")
		}
		t.Setenv("CREDENTIALS_DIRECTORY", cred)
		if err := checkPrivate("secret", p); err != nil {
			t.Errorf("credential: %v", err)
		}
		// The directory itself is not a credential.
		mkdir(t, cred, 0o755)
		if err := checkPrivate("data directory", cred); err == nil {
			t.Error("$CREDENTIALS_DIRECTORY itself was exempt")
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("only root can give a file to another user")
		}
		p := filepath.Join(dir, "theirs")
		mkfile(t, p, 0o600)
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		err := checkPrivate("connector \"demo\" client_secret_file", p)
		var pe *PermissionError
		if !errors.As(err, &pe) || pe.Owner != 65534 ||
			!strings.Contains(err.Error(), "belongs to uid 65534, not to the user dirsyncd runs as (uid 0) or root") ||
			!strings.Contains(err.Error(), "run `chown 0 "+p+"`") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCheckAccess(t *testing.T) {
	type setup func(t *testing.T, data string, cfg *config.Config)
	tests := []struct {
		name    string
		setup   setup
		wantErr []string // each must appear; none: no error
		notWant string   // must not appear
	}{
		{name: "missing data directory is created 0700"},
		{name: "data directory 0700 with its files", setup: func(t *testing.T, data string, _ *config.Config) {
			mkdir(t, data, 0o700)
			mkdir(t, filepath.Join(data, "jetstream"), 0o700)
			mkfile(t, filepath.Join(data, broker.NkeyFileName), 0o600)
		}},
		{name: "data directory 0755", setup: func(t *testing.T, data string, _ *config.Config) { mkdir(t, data, 0o755) },
			wantErr: []string{"data directory ", "(mode 0755)", "run `chmod 700 "}},
		{name: "data directory 0750", setup: func(t *testing.T, data string, _ *config.Config) { mkdir(t, data, 0o750) },
			wantErr: []string{"data directory ", "(mode 0750)"}},
		{name: "JetStream store 0755", setup: func(t *testing.T, data string, _ *config.Config) {
			mkdir(t, data, 0o700)
			mkdir(t, filepath.Join(data, "jetstream"), 0o755)
		}, wantErr: []string{"JetStream store ", "jetstream is accessible by other users (mode 0755)", "chmod 700"}},
		{name: "nkey seed 0644", setup: func(t *testing.T, data string, _ *config.Config) {
			mkdir(t, data, 0o700)
			mkfile(t, filepath.Join(data, broker.NkeyFileName), 0o644)
		}, wantErr: []string{"NATS nkey seed ", broker.NkeyFileName + " is accessible by other users (mode 0644)", "chmod 600"}},
		{name: "external NATS credentials", setup: func(t *testing.T, data string, cfg *config.Config) {
			cfg.NATS = config.NATS{URL: "nats://nats.example:4222", CredsFile: filepath.Join(data, "..", "nats.creds"), NkeyFile: filepath.Join(data, "..", "nats.nk")}
			mkfile(t, cfg.NATS.CredsFile, 0o644)
			mkfile(t, cfg.NATS.NkeyFile, 0o640)
			// The embedded server's leftover seed is not used then.
			mkdir(t, data, 0o700)
			mkfile(t, filepath.Join(data, broker.NkeyFileName), 0o644)
		}, wantErr: []string{"nats creds_file ", "nats.creds is accessible by other users (mode 0644)", "nats nkey_file ", "(mode 0640)"},
			notWant: "NATS nkey seed"},
		{name: "external NATS credentials missing", setup: func(_ *testing.T, data string, cfg *config.Config) {
			cfg.NATS = config.NATS{URL: "nats://nats.example:4222", CredsFile: filepath.Join(data, "..", "absent.creds")}
		}, wantErr: []string{"nats creds_file: ", "absent.creds"}},
		{name: "api token and TLS key", setup: func(t *testing.T, data string, cfg *config.Config) {
			cfg.API = config.API{Listen: "127.0.0.1:8470", TokenFile: filepath.Join(data, "..", "api-token"),
				TLSCertFile: filepath.Join(data, "..", "api.crt"), TLSKeyFile: filepath.Join(data, "..", "api.key")}
			mkfile(t, cfg.API.TokenFile, 0o604)
			mkfile(t, cfg.API.TLSCertFile, 0o644) // a certificate is public
			mkfile(t, cfg.API.TLSKeyFile, 0o644)
		}, wantErr: []string{"api token_file ", "(mode 0604)", "api tls_key_file ", "api.key is accessible"}},
		{name: "api files private", setup: func(t *testing.T, data string, cfg *config.Config) {
			cfg.API = config.API{Listen: "127.0.0.1:8470", TokenFile: filepath.Join(data, "..", "api-token"),
				TLSCertFile: filepath.Join(data, "..", "api.crt"), TLSKeyFile: filepath.Join(data, "..", "api.key")}
			mkfile(t, cfg.API.TokenFile, 0o600)
			mkfile(t, cfg.API.TLSCertFile, 0o644)
			mkfile(t, cfg.API.TLSKeyFile, 0o400)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			data := filepath.Join(base, "data")
			cfg := &config.Config{File: filepath.Join(base, "plugins.hcl"), Dir: base,
				Daemon: config.Daemon{DataDir: data}, NATS: config.NATS{Listen: "127.0.0.1:0"}}
			if tt.setup != nil {
				tt.setup(t, data, cfg)
			}
			err := checkAccess(cfg)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(data)
				if err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
					t.Fatalf("data directory: %v, %v; want a 0700 directory", fi.Mode(), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nlacks %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("err = %v\nnames %q", err, tt.notWant)
			}
		})
	}
}

func TestSecretFiles(t *testing.T) {
	str := connectorv1.ConfigField_TYPE_STRING
	fields := []*connectorv1.ConfigField{
		{Name: "tenant", Type: str},
		{Name: "client_secret", Type: str, Sensitive: true, OneOfGroup: "secret"},
		{Name: "client_secret_file", Type: str, OneOfGroup: "secret"},
		{Name: "ca_file", Type: str},
		{Name: "key_file", Type: str, Sensitive: true},
		{Name: "log_file", Type: str, OneOfGroup: "logging"},
		{Name: "log_target", Type: str, OneOfGroup: "logging"},
	}
	tests := []struct {
		name   string
		values map[string]any
		want   []secretFile
	}{
		{name: "relative secret file", values: map[string]any{"client_secret_file": "./secret", "ca_file": "./ca.pem"},
			want: []secretFile{{"client_secret_file", "/etc/dirsync/secret"}}},
		{name: "absolute and sensitive", values: map[string]any{"client_secret_file": "/run/credentials/x/secret", "key_file": "k.pem"},
			want: []secretFile{{"client_secret_file", "/run/credentials/x/secret"}, {"key_file", "/etc/dirsync/k.pem"}}},
		{name: "inline secret, no file", values: map[string]any{"client_secret": "v", "log_file": "/var/log/x"}},
		{name: "blank path", values: map[string]any{"client_secret_file": "  "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := secretFiles(fields, tt.values, "/etc/dirsync"); !slices.Equal(got, tt.want) {
				t.Errorf("secretFiles = %v; want %v", got, tt.want)
			}
		})
	}
}

// The control socket is created owner-only in the data directory.
func TestListenUnixOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	mkdir(t, dir, 0o700)
	path := filepath.Join(dir, config.SocketName)
	ln, err := listenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v; want a 0600 socket", fi.Mode())
	}
	if _, err := listenUnix(path); err == nil || !strings.Contains(err.Error(), "another dirsyncd already listens") {
		t.Errorf("a second listener: %v", err)
	}
}
