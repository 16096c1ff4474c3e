package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// write puts src into dir/plugins.hcl and returns the file's path.
func write(t *testing.T, dir, src string) string {
	t.Helper()
	path := filepath.Join(dir, "plugins.hcl")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const fullFile = `daemon {
  data_dir  = "./state"
  replica   = "appliance-a"
  lease_ttl = "30s"
  log_level = "debug"
}

nats {
  url        = "nats://n1.example.com:4222,nats://n2.example.com:4222"
  creds_file = "./nats.creds"
  ca_file    = "/etc/ssl/nats-ca.pem"
  replicas   = 3
}

plugin "azuread" {
  path   = "./bin/dirsync-azuread"
  sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
}

plugin "other_1" {
  path = "/opt/dirsync/other"
}

connector "contoso" {
  plugin = "azuread"
  config {
    tenant             = "contoso.onmicrosoft.com"
    client_id          = "11111111-2222-3333-4444-555555555555"
    client_secret_file = "./secret"
  }
}

connector "fabrikam-eu" {
  plugin = "azuread"
}
`

func TestLoadFull(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, fullFile)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Dir != dir {
		t.Errorf("File, Dir = %q, %q; want %q, %q", c.File, c.Dir, path, dir)
	}
	if want := (Daemon{DataDir: filepath.Join(dir, "state"), LogLevel: "debug", LogFormat: "auto", ShutdownGrace: DefaultShutdownGrace, StallTimeout: DefaultStallTimeout,
		CheckpointEvents: DefaultCheckpointEvents, CheckpointInterval: DefaultCheckpointInterval, Replica: "appliance-a", LeaseTTL: 30 * time.Second}); c.Daemon != want {
		t.Errorf("Daemon = %+v; want %+v", c.Daemon, want)
	}
	wantNATS := NATS{
		URL:       "nats://n1.example.com:4222,nats://n2.example.com:4222",
		CredsFile: filepath.Join(dir, "nats.creds"),
		CAFile:    "/etc/ssl/nats-ca.pem",
		Replicas:  3,
	}
	if c.NATS != wantNATS {
		t.Errorf("NATS = %+v; want %+v", c.NATS, wantNATS)
	}
	if c.NATS.Embedded() {
		t.Error("Embedded() = true with a url")
	}
	if len(c.Plugins) != 2 || len(c.Connectors) != 2 {
		t.Fatalf("%d plugins, %d connectors; want 2, 2", len(c.Plugins), len(c.Connectors))
	}
	az := c.Plugin("azuread")
	if az != c.Plugins[0] || az.Path != filepath.Join(dir, "bin", "dirsync-azuread") ||
		az.SHA256 != "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789" {
		t.Errorf("plugin azuread = %+v", az)
	}
	if az.Range.Start.Line != 15 || az.Range.Filename != path {
		t.Errorf("plugin azuread range = %v", az.Range)
	}
	if o := c.Plugin("other_1"); o == nil || o.Path != "/opt/dirsync/other" || o.SHA256 != "" {
		t.Errorf("plugin other_1 = %+v", o)
	}
	if c.Plugin("nope") != nil || c.Connector("nope") != nil {
		t.Error("lookup of an undeclared name returned non-nil")
	}
	con := c.Connector("contoso")
	if con != c.Connectors[0] || con.Plugin != "azuread" || con.Config == nil || con.Range.Start.Line != 24 {
		t.Errorf("connector contoso = %+v", con)
	}
	fab := c.Connector("fabrikam-eu")
	if fab == nil || fab.Config == nil {
		t.Fatalf("connector fabrikam-eu = %+v; want an empty config body", fab)
	}
	if attrs, diags := fab.Config.JustAttributes(); diags.HasErrors() || len(attrs) != 0 {
		t.Errorf("absent config: %d attributes, %v", len(attrs), diags)
	}
	if got, want := c.SocketPath(), filepath.Join(dir, "state", "dirsyncd.sock"); got != want {
		t.Errorf("SocketPath = %q; want %q", got, want)
	}
}

func TestDefaults(t *testing.T) {
	for name, src := range map[string]string{
		"empty file":        "",
		"empty nats block":  "nats {\n}\n",
		"empty daemon":      "daemon {\n}\n",
		"explicit embedded": "nats {\n  listen = \"127.0.0.1:4250\"\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := Load(write(t, dir, src))
			if err != nil {
				t.Fatal(err)
			}
			if want := (NATS{Listen: "127.0.0.1:4250", Replicas: 1}); c.NATS != want {
				t.Errorf("NATS = %+v; want %+v", c.NATS, want)
			}
			if !c.NATS.Embedded() {
				t.Error("Embedded() = false")
			}
			if want := (Daemon{DataDir: filepath.Join(dir, "data"), LogLevel: "info", LogFormat: "auto", ShutdownGrace: DefaultShutdownGrace, StallTimeout: DefaultStallTimeout,
				CheckpointEvents: DefaultCheckpointEvents, CheckpointInterval: DefaultCheckpointInterval, Replica: hostname(t), LeaseTTL: DefaultLeaseTTL}); c.Daemon != want {
				t.Errorf("Daemon = %+v; want %+v", c.Daemon, want)
			}
			if len(c.Plugins) != 0 || len(c.Connectors) != 0 {
				t.Errorf("plugins %v, connectors %v; want none", c.Plugins, c.Connectors)
			}
		})
	}
}

func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "etc", "dirsync")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := write(t, sub, `daemon {
  data_dir = "../../var/lib/dirsync"
}
nats {
  url       = "tls://nats:4222"
  nkey_file = "keys/nkey.seed"
}
plugin "p" {
  path = "bin/p"
}
`)
	// Load from another working directory, with a relative path: paths
	// still resolve against the file's folder, not the working directory.
	t.Chdir(dir)
	c, err := Load(filepath.Join("etc", "dirsync", "plugins.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path {
		t.Errorf("File = %q; want %q", c.File, path)
	}
	for got, want := range map[string]string{
		c.Daemon.DataDir:             filepath.Join(dir, "var", "lib", "dirsync"),
		c.NATS.NkeyFile:              filepath.Join(sub, "keys", "nkey.seed"),
		c.Plugin("p").Path:           filepath.Join(sub, "bin", "p"),
		c.SocketPath():               filepath.Join(dir, "var", "lib", "dirsync", "dirsyncd.sock"),
		c.Dir:                        sub,
		c.Plugin("p").Range.Filename: path,
	} {
		if got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v; want not-exist", err)
	}
}

// TestErrors checks every rule's message, with its exact position. FILE
// stands for the absolute path of the file.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			name: "syntax",
			src:  "plugin \"a\" {\n  path = \"x\"\n",
			want: `FILE:1:12: Unclosed configuration block: There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file.`,
		},
		{
			name: "unknown top-level block",
			src:  "daemon {\n}\nplugins \"a\" {\n}\n",
			want: `FILE:3:1: unknown block "plugins"; allowed at top level: daemon, log, nats, api, notify, plugin, connector`,
		},
		{
			name: "top-level attribute",
			src:  "\n  log_level = \"info\"\n",
			want: `FILE:2:3: unexpected attribute "log_level" at top level; plugins.hcl holds only blocks: daemon, log, nats, api, notify, plugin, connector`,
		},
		{
			name: "unknown daemon key",
			src:  "daemon {\n  datadir = \"x\"\n}\n",
			want: `FILE:2:3: unknown key "datadir" in daemon block; allowed: data_dir, log_level, shutdown_grace, stall_timeout, checkpoint_events, checkpoint_interval, replica, lease_ttl`,
		},
		{
			name: "unknown plugin key",
			src:  "plugin \"a\" {\n  path = \"x\"\n  sha = \"y\"\n}\n",
			want: `FILE:3:3: unknown key "sha" in plugin "a"; allowed: path, sha256, idle_timeout`,
		},
		{
			name: "unknown connector key and block",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n  interval = \"1h\"\n  settings {\n  }\n}\n",
			want: `FILE:6:3: unknown key "interval" in connector "c"; allowed: plugin, schedule, timezone, full_sync_interval, renamed_from` + "\n" +
				`FILE:7:3: unexpected block "settings" in connector "c"; allowed blocks: config, import`,
		},
		{
			name: "block inside daemon",
			src:  "daemon {\n  log {\n  }\n}\n",
			want: `FILE:2:3: unexpected block "log" in daemon block; it takes no blocks, only keys: data_dir, log_level, shutdown_grace, stall_timeout, checkpoint_events, checkpoint_interval, replica, lease_ttl`,
		},
		{
			name: "block inside config",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n  config {\n    nested {\n    }\n  }\n}\n",
			want: `FILE:7:5: unexpected block "nested" in config of connector "c"; config takes keys only (key = value)`,
		},
		{
			name: "duplicate plugin",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\n\nplugin \"a\" {\n  path = \"y\"\n}\n",
			want: `FILE:5:8: duplicate plugin "a"; it is first declared at FILE:1:1`,
		},
		{
			name: "duplicate connector",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n}\n",
			want: `FILE:7:11: duplicate connector "c"; it is first declared at FILE:4:1`,
		},
		{
			name: "duplicate nats block",
			src:  "nats {\n}\nnats {\n}\n",
			want: `FILE:3:1: duplicate nats block; the first is at FILE:1:1`,
		},
		{
			name: "duplicate config block",
			src:  "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n  config {\n  }\n  config {\n  }\n}\n",
			want: `FILE:8:3: duplicate config block in connector "c"; the first is at FILE:6:3`,
		},
		{
			name: "undeclared plugin",
			src:  "plugin \"azuread\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"azure\"\n}\n",
			want: `FILE:5:12: connector "c" uses plugin "azure", which is not declared; add a plugin "azure" { path = … } block or fix the name (declared plugins: azuread)`,
		},
		{
			name: "undeclared plugin, none declared",
			src:  "connector \"c\" {\n  plugin = \"azuread\"\n}\n",
			want: `FILE:2:12: connector "c" uses plugin "azuread", which is not declared; add a plugin "azuread" { path = … } block or fix the name (no plugin is declared in this file)`,
		},
		{
			name: "connector without plugin",
			src:  "connector \"c\" {\n}\n",
			want: `FILE:1:1: connector "c" needs plugin, the name of a plugin block, e.g. plugin = "azuread"`,
		},
		{
			name: "plugin without path",
			src:  "plugin \"azuread\" {\n}\n",
			want: `FILE:1:1: plugin "azuread" needs path, the plugin binary, e.g. path = "./bin/dirsync-azuread"`,
		},
		{
			name: "invalid names",
			src:  "plugin \"Azure AD\" {\n  path = \"x\"\n}\nconnector \"contoso.eu\" {\n  plugin = \"x\"\n}\n",
			want: `FILE:1:8: invalid plugin name "Azure AD": names must match ^[a-z][a-z0-9_-]{0,62}$ (lower-case letter first, then lower-case letters, digits, _ or -; at most 63) because they become NATS subject tokens and KV keys` + "\n" +
				`FILE:4:11: invalid connector name "contoso.eu": names must match ^[a-z][a-z0-9_-]{0,62}$ (lower-case letter first, then lower-case letters, digits, _ or -; at most 63) because they become NATS subject tokens and KV keys`,
		},
		{
			name: "name too long",
			src:  "plugin \"a" + strings.Repeat("b", 63) + "\" {\n  path = \"x\"\n}\n",
			want: `FILE:1:8: invalid plugin name "a` + strings.Repeat("b", 63) + `": names must match ^[a-z][a-z0-9_-]{0,62}$ (lower-case letter first, then lower-case letters, digits, _ or -; at most 63) because they become NATS subject tokens and KV keys`,
		},
		{
			name: "labels",
			src:  "plugin {\n  path = \"x\"\n}\ndaemon \"main\" {\n}\nconnector \"a\" \"b\" {\n}\n",
			want: `FILE:1:1: plugin block needs a label, its name, e.g. plugin "azuread" { path = "./bin/dirsync-azuread" }` + "\n" +
				`FILE:4:8: daemon block takes no label` + "\n" +
				`FILE:6:15: connector block takes one label, its name, e.g. connector "contoso" { plugin = "azuread" … }`,
		},
		{
			name: "sha256",
			src:  "plugin \"a\" {\n  path   = \"x\"\n  sha256 = \"abc123\"\n}\nplugin \"b\" {\n  path   = \"x\"\n  sha256 = \"" + strings.Repeat("g", 64) + "\"\n}\n",
			want: `FILE:3:12: sha256 of plugin "a" must be 64 hex characters (the output of sha256sum), got 6 characters` + "\n" +
				`FILE:7:12: sha256 of plugin "b" must be 64 hex characters (the output of sha256sum), got 64 characters`,
		},
		{
			name: "log level",
			src:  "daemon {\n  log_level = \"verbose\"\n}\n",
			want: `FILE:2:15: log_level must be one of debug, info, warn, error (got "verbose")`,
		},
		{
			name: "listen",
			src:  "nats {\n  listen = \"4250\"\n}\n",
			want: `FILE:2:12: listen must be host:port, e.g. "127.0.0.1:4250": got "4250"`,
		},
		{
			name: "listen port",
			src:  "nats {\n  listen = \"localhost:nats\"\n}\n",
			want: `FILE:2:12: listen must be host:port, e.g. "127.0.0.1:4250": port "nats" is not a number from 0 to 65535`,
		},
		{
			name: "url scheme, password not echoed",
			src:  "nats {\n  url = \"https://admin:hunter2@nats:4222\"\n}\n",
			want: `FILE:2:9: url must start with nats://, tls://, ws:// or wss://, e.g. "nats://nats.example.com:4222"`,
		},
		{
			name: "url list",
			src:  "nats {\n  url = \"nats://a:4222,b:4222\"\n}\n",
			want: `FILE:2:9: url must start with nats://, tls://, ws:// or wss:// (entry 2 of 2), e.g. "nats://nats.example.com:4222"`,
		},
		{
			name: "listen and url",
			src:  "nats {\n  listen = \"127.0.0.1:4250\"\n  url    = \"nats://x:4222\"\n}\n",
			want: `FILE:3:3: listen and url are alternatives in the nats block: listen runs the embedded NATS server, url connects to an existing one; remove one`,
		},
		{
			name: "remote-only keys on the embedded server",
			src:  "nats {\n  creds_file = \"x.creds\"\n  replicas   = 3\n}\n",
			want: `FILE:2:3: creds_file applies only with url (an existing NATS deployment); the embedded server needs none: remove it or set url` + "\n" +
				`FILE:3:3: replicas > 1 needs a NATS cluster (set url); the embedded server is a single node`,
		},
		{
			name: "creds and nkey",
			src:  "nats {\n  url        = \"nats://x:4222\"\n  creds_file = \"a\"\n  nkey_file  = \"b\"\n}\n",
			want: `FILE:4:3: creds_file and nkey_file are alternatives in the nats block; remove one`,
		},
		{
			name: "replicas",
			src:  "nats {\n  url      = \"nats://x:4222\"\n  replicas = 7\n}\nnats {\n}\n",
			want: `FILE:3:14: replicas must be from 1 to 5 (JetStream's limit), got 7` + "\n" +
				`FILE:5:1: duplicate nats block; the first is at FILE:1:1`,
		},
		{
			name: "replicas type",
			src:  "nats {\n  url      = \"nats://x:4222\"\n  replicas = \"3\"\n}\n",
			want: `FILE:3:14: replicas must be a whole number from 1 to 5, got a string`,
		},
		{
			name: "wrong types",
			src:  "daemon {\n  data_dir = 42\n}\nplugin \"a\" {\n  path = [\"x\"]\n}\n",
			want: `FILE:2:14: data_dir in daemon block must be a string, got a number` + "\n" +
				`FILE:5:10: path in plugin "a" must be a string, got a list`,
		},
		{
			name: "empty path",
			src:  "plugin \"a\" {\n  path = \"\"\n}\n",
			want: `FILE:2:10: path in plugin "a" is empty; give a path or remove the line`,
		},
		{
			name: "variables and functions",
			src:  "daemon {\n  data_dir = var.data_dir\n  log_level = lower(\"INFO\")\n}\nplugin \"a\" {\n  path = \"${path.module}/bin/a\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n  config {\n    tenant = env.TENANT\n  }\n}\n",
			want: `FILE:2:14: variables are not supported in plugins.hcl (found var.data_dir); write the value itself, as a quoted string, number, bool or list` + "\n" +
				`FILE:3:15: function calls are not supported in plugins.hcl (found lower()); write the value itself` + "\n" +
				`FILE:6:13: variables are not supported in plugins.hcl (found path.module); write the value itself, as a quoted string, number, bool or list` + "\n" +
				`FILE:11:14: tenant: variables are not supported in plugins.hcl; write the value itself (strings go in double quotes)`,
		},
		{
			name: "several problems, in file order",
			src:  "connector \"c\" {\n  plugin = \"nope\"\n}\nfoo \"x\" {\n}\ndaemon {\n  log_level = \"loud\"\n}\n",
			want: `FILE:2:12: connector "c" uses plugin "nope", which is not declared; add a plugin "nope" { path = … } block or fix the name (no plugin is declared in this file)` + "\n" +
				`FILE:4:1: unknown block "foo"; allowed at top level: daemon, log, nats, api, notify, plugin, connector` + "\n" +
				`FILE:7:15: log_level must be one of debug, info, warn, error (got "loud")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, t.TempDir(), tt.src)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
			var cfgErr *Error
			if !errors.As(err, &cfgErr) || cfgErr.File != path || cfgErr.Pos.Line < 1 {
				t.Errorf("errors.As(*Error) = %+v", cfgErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes the NATS password: %s", err)
			}
		})
	}
}

// TestParseFilename checks that Parse reports the file name as given.
func TestParseFilename(t *testing.T) {
	_, err := Parse([]byte("bogus {\n}\n"), "plugins.hcl")
	want := `plugins.hcl:1:1: unknown block "bogus"; allowed at top level: daemon, log, nats, api, notify, plugin, connector`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v; want %s", err, want)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Pos.Line != 1 || errs[0].Pos.Column != 1 {
		t.Errorf("errors.As(Errors) = %v", errs)
	}
}

// TestParseNeverEchoesSecrets checks that a secret mistyped in config {}
// (unquoted, half-quoted) is not quoted back by any message.
func TestParseNeverEchoesSecrets(t *testing.T) {
	for name, value := range map[string]string{
		"unquoted":        "Xy9s3cr3tXy9",
		"unquoted call":   "Xy9s3cr3tXy9(1)",
		"unterminated":    `"Xy9s3cr3tXy9`,
		"digits first":    "9Xy9s3cr3tXy9",
		"dashes":          "Xy9-s3cr3t-Xy9",
		"bad interpolate": `"${Xy9s3cr3tXy9}"`,
	} {
		t.Run(name, func(t *testing.T) {
			src := "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"c\" {\n  plugin = \"a\"\n  config {\n    client_secret = " + value + "\n  }\n}\n"
			_, err := Parse([]byte(src), "plugins.hcl")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes the secret: %s", err)
			}
			if !strings.HasPrefix(err.Error(), "plugins.hcl:7:") {
				t.Errorf("error %q is not positioned on the secret's line", err)
			}
			t.Log(err)
		})
	}
}

func TestFullSyncInterval(t *testing.T) {
	base := `plugin "p" { path = "/bin/true" }
connector "c" {
  plugin = "p"
%s
}
`
	tests := []struct {
		line string
		want time.Duration
		err  string
	}{
		{"", DefaultFullSyncInterval, ""},
		{`  full_sync_interval = "12h"`, 12 * time.Hour, ""},
		{`  full_sync_interval = "0"`, 0, ""},
		{`  full_sync_interval = "30s"`, 0, `plugins.hcl:4:24: connector "c": full_sync_interval "30s": want a duration of at least 1m`},
		{`  full_sync_interval = "daily"`, 0, `plugins.hcl:4:24: connector "c": full_sync_interval "daily"`},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte(fmt.Sprintf(base, tt.line)), "plugins.hcl")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.line, err)
		}
		if got := cfg.Connectors[0].FullSyncInterval; got != tt.want {
			t.Errorf("%q: %v, want %v", tt.line, got, tt.want)
		}
	}
}

// hostname is the default daemon { replica }.
func hostname(t *testing.T) string {
	t.Helper()
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
