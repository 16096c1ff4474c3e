package config

import (
	"net"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// API is the api block: the HTTP API on TCP for remote callers and
// monitoring. It is off unless Listen is set; the CLI always uses the
// local socket instead.
type API struct {
	// Listen is host:port, or "" when the TCP API is off.
	Listen string
	// TokenFile holds the bearer tokens every route but health and metrics
	// requires: one per line, each optionally followed by
	// "expires=<RFC3339>". It is read at start and at each reload, so
	// rotating a token needs only SIGHUP, and old and new may overlap.
	TokenFile string
	// TLSCertFile and TLSKeyFile, set together, serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// NoConsole turns the web console off (console = false); it is on
	// wherever the TCP API is, on the same listener.
	NoConsole bool
}

// Enabled reports whether the TCP API is on.
func (a API) Enabled() bool { return a.Listen != "" }

// TLS reports whether the TCP API serves HTTPS.
func (a API) TLS() bool { return a.TLSCertFile != "" }

// DefaultShutdownGrace is how long SIGTERM lets a running job finish.
const DefaultShutdownGrace = 30 * time.Second

func (ps *parser) api(b *hclsyntax.Block) {
	if b == nil {
		return
	}
	const where = "api block"
	a := &ps.cfg.API
	attrs := ps.attrs(b.Body, where, []string{"listen", "token_file", "tls_cert_file", "tls_key_file", "console"}, nil)
	if listen, ok := ps.listen(attrs, where, "127.0.0.1:8470"); ok {
		a.Listen = listen
	}
	a.TokenFile, _ = ps.path(attrs, "token_file", where)
	a.TLSCertFile, _ = ps.path(attrs, "tls_cert_file", where)
	a.TLSKeyFile, _ = ps.path(attrs, "tls_key_file", where)
	console := true
	ps.boolean(attrs, "console", where, &console)
	a.NoConsole = !console
	if attrs["listen"] == nil {
		ps.at(b.TypeRange.Start, "api block needs listen, e.g. listen = \"127.0.0.1:8470\" (remove the block to keep the TCP API off)")
		return
	}
	if attrs["token_file"] == nil {
		ps.at(b.TypeRange.Start, "api block needs token_file: every route but /healthz, /readyz and /metrics requires its bearer token "+
			"(create one with `head -c 32 /dev/urandom | base64 > api-token; chmod 600 api-token`)")
	}
	if (attrs["tls_cert_file"] == nil) != (attrs["tls_key_file"] == nil) {
		ps.at(b.TypeRange.Start, "tls_cert_file and tls_key_file go together in the api block; set both to serve HTTPS, or neither")
	}
	if a.Listen != "" && !a.TLS() && !loopback(a.Listen) {
		ps.at(attrs["listen"].Expr.Range().Start, "listen %q is not a loopback address: without TLS the bearer token would cross the network in clear; "+
			"set tls_cert_file and tls_key_file, or listen on 127.0.0.1", a.Listen)
	}
}

// loopback reports whether host:port can only be reached from this machine.
func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (ps *parser) shutdownGrace(attrs map[string]*hclsyntax.Attribute, where string) {
	d := &ps.cfg.Daemon
	d.ShutdownGrace = DefaultShutdownGrace
	ps.duration(attrs, "shutdown_grace", where, 0, 10*time.Minute, `"0s" (interrupt a running job at once)`, `"30s"`, &d.ShutdownGrace)
}

// DefaultStallTimeout is how long the read models or the job queue may
// stand still with work waiting before the daemon calls itself stalled.
const DefaultStallTimeout = 2 * time.Minute

func (ps *parser) stallTimeout(attrs map[string]*hclsyntax.Attribute, where string) {
	d := &ps.cfg.Daemon
	d.StallTimeout = DefaultStallTimeout
	ps.duration(attrs, "stall_timeout", where, 5*time.Second, time.Hour, `"5s"`, `"2m"`, &d.StallTimeout)
}

// Checkpoint defaults, as projections.CheckpointEvery and
// CheckpointInterval (config does not import projections).
const (
	DefaultCheckpointEvents   = 100_000
	DefaultCheckpointInterval = 10 * time.Minute
)

func (ps *parser) checkpoints(attrs map[string]*hclsyntax.Attribute, where string) {
	d := &ps.cfg.Daemon
	ps.duration(attrs, "checkpoint_interval", where, time.Second, 24*time.Hour, `"1s"`, `"10m"`, &d.CheckpointInterval)
	const key = "checkpoint_events"
	a := attrs[key]
	if a == nil {
		return
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok || v.IsNull() {
		return
	}
	got := typeName(v.Type())
	n, whole := int64(0), false
	if v.Type() == cty.Number {
		n, whole = wholeNumber(v)
		got = v.AsBigFloat().Text('g', -1)
	}
	if !whole || n < 1 || n > 100_000_000 {
		ps.at(a.Expr.Range().Start, "%s in %s must be a whole number of events from 1 to 100000000 (default %d), got %s", key, where, DefaultCheckpointEvents, got)
		return
	}
	d.CheckpointEvents = int(n)
}

// duration sets *dst to the duration attribute key when it lies within
// [lo, hi], and reports it with its place in the file otherwise. loText
// and example describe lo and a good value for the message.
func (ps *parser) duration(attrs map[string]*hclsyntax.Attribute, key, where string, lo, hi time.Duration, loText, example string, dst *time.Duration) {
	v, set, ok := ps.str(attrs, key, where)
	if !ok || !set {
		return
	}
	g, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || g < lo || g > hi {
		ps.at(attrs[key].Expr.Range().Start, "%s %q: want a duration from %s to %q, such as %s", key, v, loText, shortDuration(hi), example)
		return
	}
	*dst = g
}

// shortDuration writes d as plugins.hcl would: "10m", not "10m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}
