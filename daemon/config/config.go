// Package config reads plugins.hcl, the daemon's configuration: where the
// daemon keeps its data, which NATS it uses, which connector plugins exist
// and which connector instances run.
//
// Every error names the file, line and column (FILE:LINE:COL: message), all
// problems of a file are reported at once, and no error ever quotes a
// sensitive value.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Defaults applied when plugins.hcl does not say.
const (
	// DefaultDataDir is the daemon's data folder, relative to plugins.hcl.
	DefaultDataDir = "./data"
	// DefaultLogLevel is the daemon's log level.
	DefaultLogLevel = "info"
	// DefaultListen is where the embedded NATS server listens.
	DefaultListen = "127.0.0.1:4250"
	// SocketName is the file name of the daemon's control socket in DataDir.
	SocketName = "dirsyncd.sock"
)

// logLevels are the accepted daemon log levels.
func logLevels() []string { return []string{"debug", "info", "warn", "error"} }

// validName reports whether s matches ^[a-z][a-z0-9_-]{0,62}$, the rule
// for plugin and connector names: they become NATS subject tokens and KV
// keys.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// topBlocks are the block types allowed at the top level.
func topBlocks() string { return "daemon, log, nats, api, notify, plugin, connector" }

// Config is a parsed plugins.hcl.
type Config struct {
	// File is the absolute path of the file.
	File string
	// Dir is the file's folder; relative paths resolve against it.
	Dir string
	// Daemon holds the daemon block.
	Daemon Daemon
	// NATS holds the nats block.
	NATS NATS
	// API holds the api block (the TCP API; off when absent).
	API API
	// Notify holds the notify block (no notifications when absent).
	Notify Notify
	// Plugins are the plugin blocks, in file order.
	Plugins []*Plugin
	// Connectors are the connector blocks, in file order.
	Connectors []*Connector
}

// DefaultLeaseTTL is daemon { lease_ttl } when absent, as
// leases.DefaultTTL (config does not import leases).
const DefaultLeaseTTL = 24 * time.Second

// Daemon is the daemon block.
type Daemon struct {
	// DataDir is the absolute path of the data folder.
	DataDir string
	// LogLevel is debug, info, warn or error (daemon { log_level } or
	// log { level }).
	LogLevel string
	// LogFormat is console, json or auto (log { format }): auto is
	// console on a terminal and JSON otherwise (the journal, a pipe).
	LogFormat string
	// ShutdownGrace is how long SIGTERM waits for a running job to finish
	// before it interrupts it (the job then ends FAILED as interrupted).
	ShutdownGrace time.Duration
	// StallTimeout is how long the read models may lag without advancing,
	// or a queued job wait with its connector idle, before /healthz fails
	// and the systemd watchdog is no longer fed (daemon { stall_timeout }).
	StallTimeout time.Duration
	// CheckpointEvents and CheckpointInterval say how often the read
	// models are checkpointed (daemon { checkpoint_events,
	// checkpoint_interval }): once caught up, after that many events or
	// that long with at least one; and always at a clean stop.
	CheckpointEvents   int
	CheckpointInterval time.Duration
	// Replica names this dirsyncd among the replicas sharing one NATS
	// deployment (daemon { replica }; the host name when absent).
	Replica string
	// LeaseTTL is how long a connector's lease outlives its holder's
	// last renewal (daemon { lease_ttl }): how long a failover takes
	// at most after a replica dies.
	LeaseTTL time.Duration
}

// NATS is the nats block: an embedded server (Listen) or an existing
// deployment (URL and its credentials).
type NATS struct {
	// Listen is host:port of the embedded server; empty when URL is set.
	Listen string
	// URL is the existing deployment's URL (several may be given,
	// comma-separated); empty for the embedded server.
	URL string
	// CredsFile, NkeyFile and CAFile are absolute paths, or "".
	CredsFile, NkeyFile, CAFile string
	// Replicas is the stream replica count (default 1).
	Replicas int
	// Sync is the embedded server's sync policy, one of SyncPolicies; ""
	// means the default, "append" (docs/durability.md).
	Sync string
	// MaxStore caps the embedded server's JetStream storage in bytes; 0
	// leaves nats-server's default (three quarters of the free disk).
	MaxStore int64
}

// Embedded reports whether the daemon runs its own NATS server.
func (n NATS) Embedded() bool { return n.URL == "" }

// Plugin is a plugin block: a connector plugin binary.
type Plugin struct {
	// Name is the block label.
	Name string
	// Path is the absolute path of the binary.
	Path string
	// SHA256 is the expected checksum of the binary in lower-case hex, or
	// "" when not pinned.
	SHA256 string
	// IdleTimeout is how long the plugin may send nothing during a call
	// (the next batch of a sync, the answer to a connection test) before
	// the daemon stops it as hung. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Range is the block's header, for errors.
	Range hcl.Range
}

// Bounds of a plugin's idle_timeout.
const (
	// DefaultIdleTimeout leaves a slow Graph (throttling, retries with
	// long Retry-After waits) room before a plugin counts as hung.
	DefaultIdleTimeout = 10 * time.Minute
	// MinIdleTimeout: below a second a healthy plugin would be stopped
	// between two batches.
	MinIdleTimeout = time.Second
)

// Connector is a connector block: one instance of a plugin.
type Connector struct {
	// Name is the block label.
	Name string
	// Plugin names the plugin block it runs.
	Plugin string
	// Config is the raw config {} body (an empty body when the block is
	// absent), decoded with DecodeConnectorConfig against the plugin's
	// schema.
	Config hcl.Body
	// Schedule is the auto-sync schedule, a cron expression or descriptor
	// as robfig/cron/v3 parses it (five fields, no seconds; @every 30m,
	// @daily, …), or "" for no automatic sync.
	Schedule string
	// Timezone is the IANA zone Schedule runs in, or "" for the daemon's
	// local time. It is only ever set together with Schedule.
	Timezone string
	// FullSyncInterval is how old the last full read may get before a sync
	// reads the whole directory again instead of only changes, repairing
	// any drift; 0 never forces one. Default 24h.
	FullSyncInterval time.Duration
	// Import is the import {} block, with defaults applied.
	Import Import
	// RenamedFrom names the connector this one replaces (renamed_from): a
	// connector no longer declared whose active recipients this one's
	// next sync adopts, by object ID, archiving them under the old name
	// in the same job (see README "Renaming a connector"). "" for none.
	RenamedFrom string
	// renamedFromPos is where renamed_from is set, for errors.
	renamedFromPos hcl.Pos
	// Range is the connector block's header, for errors.
	Range hcl.Range
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(src, abs)
}

// Parse parses src as plugins.hcl. filename is used in error messages and,
// made absolute, as the base of relative paths. The error, if any, is an
// Errors listing every problem found.
func Parse(src []byte, filename string) (*Config, error) {
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	p := &problems{file: filename}
	f, ds := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if ds.HasErrors() {
		p.diags(ds, "")
		return nil, p.err()
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, fmt.Errorf("config: %s: unexpected body type %T", filename, f.Body)
	}
	c := &Config{File: abs, Dir: filepath.Dir(abs)}
	ps := &parser{problems: p, cfg: c}
	ps.top(body)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Plugin returns the plugin named name, or nil.
func (c *Config) Plugin(name string) *Plugin {
	for _, p := range c.Plugins {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Connector returns the connector named name, or nil.
func (c *Config) Connector(name string) *Connector {
	for _, cn := range c.Connectors {
		if cn.Name == name {
			return cn
		}
	}
	return nil
}

// SocketPath is the daemon's local control socket.
func (c *Config) SocketPath() string {
	return filepath.Join(c.Daemon.DataDir, SocketName)
}

// parser walks one file.
type parser struct {
	*problems
	cfg *Config
}

func (ps *parser) top(body *hclsyntax.Body) {
	for _, a := range sortedAttrs(body) {
		ps.at(a.NameRange.Start, "unexpected attribute %q at top level; plugins.hcl holds only blocks: %s", a.Name, topBlocks())
	}
	var daemonBlock, natsBlock, apiBlock, logBlock, notifyBlock *hclsyntax.Block
	plugins := map[string]*Plugin{}
	connectors := map[string]*Connector{}
	var pluginRefs []*hclsyntax.Attribute // connector → plugin references, checked at the end
	var refOwners []*Connector
	for _, b := range body.Blocks {
		switch b.Type {
		case "daemon", "nats", "api", "log", "notify":
			if !ps.labels(b, 0, "") {
				continue
			}
			first := &daemonBlock
			switch b.Type {
			case "nats":
				first = &natsBlock
			case "api":
				first = &apiBlock
			case "log":
				first = &logBlock
			case "notify":
				first = &notifyBlock
			}
			if *first != nil {
				ps.at(b.TypeRange.Start, "duplicate %s block; the first is at %s", b.Type, ps.where((*first).TypeRange.Start))
				continue
			}
			*first = b
		case "plugin":
			if !ps.labels(b, 1, "its name, e.g. plugin \"azuread\" { path = \"./bin/dirsync-azuread\" }") || !ps.name(b, "plugin") {
				continue
			}
			pl := ps.plugin(b)
			if prev, dup := plugins[pl.Name]; dup {
				ps.at(b.LabelRanges[0].Start, "duplicate plugin %q; it is first declared at %s", pl.Name, ps.where(prev.Range.Start))
				continue
			}
			plugins[pl.Name] = pl
			ps.cfg.Plugins = append(ps.cfg.Plugins, pl)
		case "connector":
			if !ps.labels(b, 1, "its name, e.g. connector \"contoso\" { plugin = \"azuread\" … }") || !ps.name(b, "connector") {
				continue
			}
			cn, ref := ps.connector(b)
			if prev, dup := connectors[cn.Name]; dup {
				ps.at(b.LabelRanges[0].Start, "duplicate connector %q; it is first declared at %s", cn.Name, ps.where(prev.Range.Start))
				continue
			}
			connectors[cn.Name] = cn
			ps.cfg.Connectors = append(ps.cfg.Connectors, cn)
			if ref != nil {
				pluginRefs = append(pluginRefs, ref)
				refOwners = append(refOwners, cn)
			}
		default:
			ps.at(b.TypeRange.Start, "unknown block %q; allowed at top level: %s", b.Type, topBlocks())
		}
	}
	ps.daemon(daemonBlock)
	ps.log(logBlock)
	ps.notify(notifyBlock)
	ps.nats(natsBlock)
	ps.api(apiBlock)

	declared := make([]string, 0, len(plugins))
	for name := range plugins {
		declared = append(declared, name)
	}
	sort.Strings(declared)
	for i, cn := range refOwners {
		if cn.Plugin == "" || plugins[cn.Plugin] != nil {
			continue
		}
		hint := "no plugin is declared in this file"
		if len(declared) > 0 {
			hint = "declared plugins: " + strings.Join(declared, ", ")
		}
		ps.at(pluginRefs[i].Expr.Range().Start, "connector %q uses plugin %q, which is not declared; add a plugin %q { path = … } block or fix the name (%s)", cn.Name, cn.Plugin, cn.Plugin, hint)
	}
	ps.checkRenames(connectors)
}

// renamedFrom parses renamed_from: the name of the connector this one
// replaces, under the rule of connector names.
func (ps *parser) renamedFrom(cn *Connector, attrs map[string]*hclsyntax.Attribute) {
	v, set, ok := ps.str(attrs, "renamed_from", fmt.Sprintf("connector %q", cn.Name))
	if !ok || !set {
		return
	}
	cn.renamedFromPos = attrs["renamed_from"].Expr.Range().Start
	if !validName(v) {
		ps.at(cn.renamedFromPos, "connector %q: renamed_from %q is no connector name (^[a-z][a-z0-9_-]{0,62}$); give the old connector's name as it was in plugins.hcl", cn.Name, v)
		return
	}
	cn.RenamedFrom = v
}

// checkRenames refuses a renamed_from that cannot mean a rename: the
// connector's own name, a connector still declared (both would sync, and
// the new one would take the other's recipients), or an old name two
// connectors claim.
func (ps *parser) checkRenames(connectors map[string]*Connector) {
	claimed := map[string]*Connector{}
	for _, cn := range ps.cfg.Connectors {
		if cn.RenamedFrom == "" {
			continue
		}
		switch old, still := connectors[cn.RenamedFrom]; {
		case cn.RenamedFrom == cn.Name:
			ps.at(cn.renamedFromPos, "connector %q: renamed_from names the connector itself; give the old name, or remove renamed_from", cn.Name)
		case still:
			ps.at(cn.renamedFromPos, "connector %q: renamed_from = %q, but connector %q is still declared at %s; a rename replaces the old block: remove it",
				cn.Name, cn.RenamedFrom, cn.RenamedFrom, ps.where(old.Range.Start))
		case claimed[cn.RenamedFrom] != nil:
			ps.at(cn.renamedFromPos, "connector %q: renamed_from = %q, which connector %q at %s already claims; one connector takes over another's recipients",
				cn.Name, cn.RenamedFrom, claimed[cn.RenamedFrom].Name, ps.where(claimed[cn.RenamedFrom].Range.Start))
		default:
			claimed[cn.RenamedFrom] = cn
		}
	}
}

// labels checks a block has n labels; usage describes the label.
func (ps *parser) labels(b *hclsyntax.Block, n int, usage string) bool {
	switch {
	case len(b.Labels) == n:
		return true
	case n == 0:
		ps.at(b.LabelRanges[0].Start, "%s block takes no label", b.Type)
	case len(b.Labels) < n:
		ps.at(b.TypeRange.Start, "%s block needs a label, %s", b.Type, usage)
	default:
		ps.at(b.LabelRanges[n].Start, "%s block takes one label, %s", b.Type, usage)
	}
	return false
}

// name checks a plugin or connector name.
func (ps *parser) name(b *hclsyntax.Block, kind string) bool {
	if validName(b.Labels[0]) {
		return true
	}
	ps.at(b.LabelRanges[0].Start, "invalid %s name %q: names must match ^[a-z][a-z0-9_-]{0,62}$ (lower-case letter first, then lower-case letters, digits, _ or -; at most 63) because they become NATS subject tokens and KV keys", kind, b.Labels[0])
	return false
}

// attrs checks a block's body has only the allowed attributes and blocks
// and returns the attributes by name.
func (ps *parser) attrs(body *hclsyntax.Body, where string, allowed []string, blocks []string) map[string]*hclsyntax.Attribute {
	out := map[string]*hclsyntax.Attribute{}
	for _, a := range sortedAttrs(body) {
		if !contains(allowed, a.Name) {
			ps.at(a.NameRange.Start, "unknown key %q in %s; allowed: %s", a.Name, where, strings.Join(allowed, ", "))
			continue
		}
		out[a.Name] = a
	}
	for _, b := range body.Blocks {
		if contains(blocks, b.Type) {
			continue
		}
		if len(blocks) == 0 {
			ps.at(b.TypeRange.Start, "unexpected block %q in %s; it takes no blocks, only keys: %s", b.Type, where, strings.Join(allowed, ", "))
		} else {
			ps.at(b.TypeRange.Start, "unexpected block %q in %s; allowed blocks: %s", b.Type, where, strings.Join(blocks, ", "))
		}
	}
	return out
}

// listen evaluates an optional host:port attribute named listen; ok is
// true when it is set and valid.
func (ps *parser) listen(attrs map[string]*hclsyntax.Attribute, where, example string) (string, bool) {
	listen, set, ok := ps.str(attrs, "listen", where)
	if !ok || !set {
		return "", false
	}
	if err := checkHostPort(listen); err != "" {
		ps.at(attrs["listen"].Expr.Range().Start, "listen must be host:port, e.g. %q: %s", example, err)
		return "", false
	}
	return listen, true
}

// str evaluates an optional string attribute; ok is false after a problem.
func (ps *parser) str(attrs map[string]*hclsyntax.Attribute, key, where string) (s string, set, ok bool) {
	a := attrs[key]
	if a == nil {
		return "", false, true
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok {
		return "", false, false
	}
	if v.IsNull() {
		return "", false, true
	}
	if v.Type() != cty.String {
		ps.at(a.Expr.Range().Start, "%s in %s must be a string, got %s", key, where, typeName(v.Type()))
		return "", false, false
	}
	return v.AsString(), true, true
}

// path evaluates an optional path attribute and resolves it against the
// file's folder.
func (ps *parser) path(attrs map[string]*hclsyntax.Attribute, key, where string) (string, bool) {
	s, set, ok := ps.str(attrs, key, where)
	if !ok || !set {
		return "", ok
	}
	if s == "" {
		ps.at(attrs[key].Expr.Range().Start, "%s in %s is empty; give a path or remove the line", key, where)
		return "", false
	}
	return ps.resolve(s), true
}

// resolve makes p absolute against the file's folder.
func (ps *parser) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(ps.cfg.Dir, p)
}

func (ps *parser) daemon(b *hclsyntax.Block) {
	d := &ps.cfg.Daemon
	d.DataDir = ps.resolve(DefaultDataDir)
	d.LogLevel = DefaultLogLevel
	d.ShutdownGrace = DefaultShutdownGrace
	d.StallTimeout = DefaultStallTimeout
	d.CheckpointEvents, d.CheckpointInterval = DefaultCheckpointEvents, DefaultCheckpointInterval
	d.LeaseTTL = DefaultLeaseTTL
	if host, err := os.Hostname(); err == nil && host != "" {
		d.Replica = host
	} else {
		d.Replica = "dirsyncd"
	}
	if b == nil {
		return
	}
	const where = "daemon block"
	attrs := ps.attrs(b.Body, where, []string{"data_dir", "log_level", "shutdown_grace", "stall_timeout", "checkpoint_events", "checkpoint_interval",
		"replica", "lease_ttl"}, nil)
	ps.duration(attrs, "lease_ttl", where, 3*time.Second, 5*time.Minute, `"3s"`, `"24s"`, &d.LeaseTTL)
	if v, set, ok := ps.str(attrs, "replica", where); ok && set {
		if strings.TrimSpace(v) == "" || len(v) > 64 {
			ps.at(attrs["replica"].Expr.Range().Start, "replica must be a name of 1 to 64 characters, e.g. %q", "appliance-a")
		} else {
			d.Replica = v
		}
	}
	ps.shutdownGrace(attrs, where)
	ps.stallTimeout(attrs, where)
	ps.checkpoints(attrs, where)
	if dir, ok := ps.path(attrs, "data_dir", where); ok && dir != "" {
		d.DataDir = dir
	}
	ps.oneOf(attrs, "log_level", where, logLevels(), &d.LogLevel)
}

// oneOf sets *dst to the string attribute key when it is one of allowed,
// and reports it with its place in the file otherwise.
func (ps *parser) oneOf(attrs map[string]*hclsyntax.Attribute, key, where string, allowed []string, dst *string) {
	v, set, ok := ps.str(attrs, key, where)
	switch {
	case !ok || !set:
	case !contains(allowed, v):
		ps.at(attrs[key].Expr.Range().Start, "%s must be one of %s (got %q)", key, strings.Join(allowed, ", "), v)
	default:
		*dst = v
	}
}

// LogFormats are the values of log { format }.
func LogFormats() []string { return []string{"auto", "console", "json"} }

// log reads the log block: format, and level (the same as the daemon
// block's log_level, which it overrides).
func (ps *parser) log(b *hclsyntax.Block) {
	d := &ps.cfg.Daemon
	d.LogFormat = "auto"
	if b == nil {
		return
	}
	const where = "log block"
	attrs := ps.attrs(b.Body, where, []string{"format", "level"}, nil)
	ps.oneOf(attrs, "format", where, LogFormats(), &d.LogFormat)
	ps.oneOf(attrs, "level", where, logLevels(), &d.LogLevel)
}

func (ps *parser) nats(b *hclsyntax.Block) {
	n := &ps.cfg.NATS
	n.Replicas = 1
	if b == nil {
		n.Listen = DefaultListen
		return
	}
	const where = "nats block"
	attrs := ps.attrs(b.Body, where, append([]string{"listen", "url", "creds_file", "nkey_file", "ca_file", "replicas"}, storageKeys()...), nil)
	if listen, ok := ps.listen(attrs, where, DefaultListen); ok {
		n.Listen = listen
	}
	// The URL may carry a password: no message quotes it.
	if u, set, ok := ps.str(attrs, "url", where); ok && set {
		if err := checkURLs(u); err != "" {
			ps.at(attrs["url"].Expr.Range().Start, "url %s", err)
		} else {
			n.URL = u
		}
	}
	n.CredsFile, _ = ps.path(attrs, "creds_file", where)
	n.NkeyFile, _ = ps.path(attrs, "nkey_file", where)
	n.CAFile, _ = ps.path(attrs, "ca_file", where)
	if a := attrs["replicas"]; a != nil {
		if v, ok := ps.literal(a.Expr, "", ""); ok && !v.IsNull() {
			r, isInt := wholeNumber(v)
			switch {
			case !isInt:
				ps.at(a.Expr.Range().Start, "replicas must be a whole number from 1 to 5, got %s", typeName(v.Type()))
			case r < 1 || r > 5:
				ps.at(a.Expr.Range().Start, "replicas must be from 1 to 5 (JetStream's limit), got %d", r)
			default:
				n.Replicas = int(r)
			}
		}
	}

	ps.storage(attrs, where, n)

	_, hasListen := attrs["listen"]
	_, hasURL := attrs["url"]
	if hasListen && hasURL {
		ps.at(attrs["url"].NameRange.Start, "listen and url are alternatives in the nats block: listen runs the embedded NATS server, url connects to an existing one; remove one")
		return
	}
	if hasURL {
		for _, key := range storageKeys() {
			if a := attrs[key]; a != nil {
				ps.at(a.NameRange.Start, "%s applies only to the embedded server; an existing NATS deployment has its own (jetstream { sync_interval, max_file_store } in its configuration): remove it", key)
			}
		}
		if n.CredsFile != "" && n.NkeyFile != "" {
			ps.at(attrs["nkey_file"].NameRange.Start, "creds_file and nkey_file are alternatives in the nats block; remove one")
		}
		return
	}
	// Embedded server: the remote-only keys would be silently ignored.
	for _, key := range []string{"creds_file", "nkey_file", "ca_file"} {
		if a := attrs[key]; a != nil {
			ps.at(a.NameRange.Start, "%s applies only with url (an existing NATS deployment); the embedded server needs none: remove it or set url", key)
		}
	}
	if a := attrs["replicas"]; a != nil && n.Replicas > 1 {
		ps.at(a.NameRange.Start, "replicas > 1 needs a NATS cluster (set url); the embedded server is a single node")
	}
	if n.Listen == "" {
		n.Listen = DefaultListen
	}
}

// checkHostPort returns why s is not host:port, or "".
func checkHostPort(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	return ""
}

// checkURLs returns what is wrong with a comma-separated list of NATS URLs,
// or "". It never quotes the URL, which may hold a password.
func checkURLs(s string) string {
	parts := strings.Split(s, ",")
	for i, part := range parts {
		which := ""
		if len(parts) > 1 {
			which = fmt.Sprintf(" (entry %d of %d)", i+1, len(parts))
		}
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return "is not a valid URL" + which
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Sprintf("must start with nats://, tls://, ws:// or wss://%s, e.g. \"nats://nats.example.com:4222\"", which)
		}
		if u.Host == "" {
			return "has no host" + which + ", e.g. \"nats://nats.example.com:4222\""
		}
	}
	return ""
}

// wholeNumber returns v as an int64 when it is a whole number.
func wholeNumber(v cty.Value) (int64, bool) {
	if v.Type() != cty.Number {
		return 0, false
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() {
		return 0, false
	}
	i, acc := bf.Int64()
	return i, acc == 0
}

func (ps *parser) plugin(b *hclsyntax.Block) *Plugin {
	pl := &Plugin{Name: b.Labels[0], Range: b.DefRange()}
	where := fmt.Sprintf("plugin %q", pl.Name)
	attrs := ps.attrs(b.Body, where, []string{"path", "sha256", "idle_timeout"}, nil)
	if attrs["path"] == nil {
		ps.at(b.TypeRange.Start, "plugin %q needs path, the plugin binary, e.g. path = \"./bin/dirsync-%s\"", pl.Name, pl.Name)
	} else {
		pl.Path, _ = ps.path(attrs, "path", where)
	}
	if sum, set, ok := ps.str(attrs, "sha256", where); ok && set {
		if !isHex64(sum) {
			ps.at(attrs["sha256"].Expr.Range().Start, "sha256 of plugin %q must be 64 hex characters (the output of sha256sum), got %d characters", pl.Name, len(sum))
		} else {
			pl.SHA256 = strings.ToLower(sum)
		}
	}
	pl.IdleTimeout = DefaultIdleTimeout
	if v, set, ok := ps.str(attrs, "idle_timeout", where); ok && set {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < MinIdleTimeout {
			ps.at(attrs["idle_timeout"].Expr.Range().Start, "idle_timeout of plugin %q: %q: want a duration of at least 1s such as \"10m\" or \"30m\": how long the plugin may send nothing before it is stopped as hung", pl.Name, v)
		} else {
			pl.IdleTimeout = d
		}
	}
	return pl
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

// connector parses a connector block; ref is its plugin attribute, checked
// against the declared plugins once the whole file is read.
func (ps *parser) connector(b *hclsyntax.Block) (cn *Connector, ref *hclsyntax.Attribute) {
	cn = &Connector{Name: b.Labels[0], Range: b.DefRange()}
	where := fmt.Sprintf("connector %q", cn.Name)
	attrs := ps.attrs(b.Body, where, []string{"plugin", "schedule", "timezone", "full_sync_interval", "renamed_from"}, []string{"config", "import"})
	if attrs["plugin"] == nil {
		ps.at(b.TypeRange.Start, "connector %q needs plugin, the name of a plugin block, e.g. plugin = \"azuread\"", cn.Name)
	} else if name, set, ok := ps.str(attrs, "plugin", where); ok && set {
		cn.Plugin = name
		ref = attrs["plugin"]
	}
	ps.schedule(cn, attrs)
	ps.fullSyncInterval(cn, attrs)
	ps.renamedFrom(cn, attrs)
	var cfg, imp *hclsyntax.Block
	for _, sub := range b.Body.Blocks {
		first := &cfg
		switch sub.Type {
		case "config":
		case "import":
			first = &imp
		default:
			continue
		}
		if !ps.labels(sub, 0, "") {
			continue
		}
		if *first != nil {
			ps.at(sub.TypeRange.Start, "duplicate %s block in connector %q; the first is at %s", sub.Type, cn.Name, ps.where((*first).TypeRange.Start))
			continue
		}
		*first = sub
	}
	ps.importBlock(cn, imp)
	if cfg == nil {
		cn.Config = &hclsyntax.Body{Attributes: hclsyntax.Attributes{}, SrcRange: cn.Range, EndRange: cn.Range}
		return cn, ref
	}
	cn.Config = cfg.Body
	// The values are typed later against the plugin's schema; shape and
	// literal-ness are checked now, so a broken file fails before any plugin
	// starts.
	for _, a := range sortedAttrs(cfg.Body) {
		ps.checkLiteral(a.Expr, a.Name)
	}
	for _, sub := range cfg.Body.Blocks {
		ps.at(sub.TypeRange.Start, "unexpected block %q in config of connector %q; config takes keys only (key = value)", sub.Type, cn.Name)
	}
	return cn, ref
}

// DefaultFullSyncInterval is full_sync_interval when a connector does not set it.
const DefaultFullSyncInterval = 24 * time.Hour

// fullSyncInterval parses full_sync_interval: a Go duration of at least a
// minute, or "0" for never.
func (ps *parser) fullSyncInterval(cn *Connector, attrs map[string]*hclsyntax.Attribute) {
	cn.FullSyncInterval = DefaultFullSyncInterval
	where := fmt.Sprintf("connector %q", cn.Name)
	v, set, ok := ps.str(attrs, "full_sync_interval", where)
	if !ok || !set {
		return
	}
	pos := attrs["full_sync_interval"].Expr.Range().Start
	if strings.TrimSpace(v) == "0" {
		cn.FullSyncInterval = 0
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < time.Minute {
		ps.at(pos, "connector %q: full_sync_interval %q: want a duration of at least 1m such as \"24h\" or \"12h\", or \"0\" to never force a full read", cn.Name, v)
		return
	}
	cn.FullSyncInterval = d
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
