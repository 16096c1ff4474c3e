// Package pluginhost starts connector plugins as hashicorp/go-plugin
// subprocesses and hands out the connector.Connector they serve.
//
// A plugin runs with automatic mutual TLS over gRPC, with a minimal
// environment (proxy, CA and time-zone settings only: never the daemon's
// own variables), and, when plugins.hcl pins one, only after its sha256
// matched: on Linux it then runs from a sealed in-memory copy of exactly
// the bytes hashed. Its stderr log lines land in the daemon's zap log with
// the plugin's name as a field.
//
// A plugin is not trusted to behave: one that sends nothing for its
// idle_timeout is killed (ErrPluginHung), a process that dies mid-call is
// reported by name with its exit status (ErrPluginExited), and after
// either the next start of that plugin waits a growing backoff.
package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/config"
)

// Time limits for a launch, used when the context sets no deadline.
const (
	// StartTimeout bounds the plugin's start-up handshake.
	StartTimeout = time.Minute
	// DescribeTimeout bounds the Describe call made at launch.
	DescribeTimeout = 30 * time.Second
)

// Host launches connector plugins.
type Host struct {
	log *zap.Logger
	obs Observer

	// Restart backoff and its clock; tests shorten or fake them.
	backoffBase, backoffMax time.Duration
	now                     func() time.Time
	after                   func(time.Duration) <-chan time.Time
	// exitWait bounds how long a call that failed on a broken connection
	// waits to see the process gone, to report the exit status.
	exitWait time.Duration
	// newImage creates the in-memory file a pinned binary runs from.
	newImage func(name string) (*os.File, error)
	// beforeStart, when set, runs right before the process starts, after
	// the binary was verified (tests swap the binary there).
	beforeStart func(*config.Plugin)

	mu       sync.Mutex
	failures map[string]*failures // by plugin name
}

// Observer hears of plugin process starts and crashes (metrics).
type Observer interface {
	// PluginStarted: restart is true when the plugin's previous process
	// had crashed or hung.
	PluginStarted(plugin string, restart bool)
	// PluginCrashed: a process exited before the daemon stopped it, or
	// hung and was stopped for its idle_timeout.
	PluginCrashed(plugin string)
}

// Observe makes o hear of plugin starts and crashes.
func (h *Host) Observe(o Observer) { h.obs = o }

// New returns a Host logging to log (a no-op logger when nil).
func New(log *zap.Logger) *Host {
	if log == nil {
		log = zap.NewNop()
	}
	return &Host{
		log:         log,
		backoffBase: BackoffBase,
		backoffMax:  BackoffMax,
		now:         time.Now,
		after:       time.After,
		exitWait:    2 * time.Second,
		newImage:    newMemfd,
		failures:    map[string]*failures{},
	}
}

// Instance is one running plugin process.
type Instance struct {
	host     *Host
	log      *zap.Logger
	killOnce sync.Once
	plugin   *config.Plugin
	idle     time.Duration
	client   *plugin.Client
	proc     *proc
	conn     connector.Connector
	desc     *connectorv1.DescribeResponse

	mu     sync.Mutex
	hungAt time.Time // when the idle watchdog stopped it; zero if never
}

// Launch starts the plugin binary at p.Path as a go-plugin subprocess and
// returns a Connector backed by it. It refuses a binary that is missing, not
// executable or, when p.SHA256 is set, has another checksum, before
// starting anything. A pinned binary is read once, hashed, and run from a
// sealed in-memory copy of exactly the bytes hashed, so a file swapped
// after the check never runs. It stops the plugin again if it does not
// answer Describe with a usable schema. After the plugin's previous
// process crashed or hung, Launch first waits the restart backoff.
// ctx bounds the launch, not the instance's life: stop it with Kill.
// fields are added to every log line of the plugin (e.g. the job it
// serves).
func (h *Host) Launch(ctx context.Context, p *config.Plugin, fields ...zap.Field) (*Instance, error) {
	if err := checkBinary(p); err != nil {
		return nil, err
	}
	var want []byte
	if p.SHA256 != "" {
		var err error
		want, err = hex.DecodeString(p.SHA256)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("plugin %q at %s: sha256 in plugins.hcl is not 64 hex characters", p.Name, p.Path)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("plugin %q at %s: not started: %w", p.Name, p.Path, err)
	}
	log := h.log.With(append([]zap.Field{zap.String("plugin", p.Name)}, fields...)...)
	if err := h.waitBackoff(ctx, p, log); err != nil {
		return nil, err
	}
	pr := &proc{host: h, plugin: p, log: log, done: make(chan struct{})}
	if want != nil {
		image, err := h.verify(p, want, log)
		if err != nil {
			return nil, err
		}
		pr.image = image
		if image == nil {
			pr.want = want
		}
	}
	defer pr.closeImage()

	startTimeout := StartTimeout
	if deadline, ok := ctx.Deadline(); ok {
		startTimeout = min(startTimeout, max(time.Until(deadline), time.Millisecond))
	}
	idle := p.IdleTimeout
	if idle <= 0 {
		idle = config.DefaultIdleTimeout
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: connector.Handshake,
		Plugins:         connector.PluginSet(nil),
		// proc starts the process itself: it can exec the verified image
		// (go-plugin's SecureConfig would hash the path again, not what
		// runs) and knows how the process ended.
		RunnerFunc:       pr.runnerFunc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		Logger:           NewPluginHCLogger(log, fields),
	})
	inst := &Instance{host: h, log: log, plugin: p, idle: idle, client: client, proc: pr}
	if err := inst.start(ctx); err != nil {
		client.Kill()
		if errors.Is(err, ErrPluginExited) {
			e, _ := pr.awaitExit(0)
			h.failed(p.Name, e.at)
			if h.obs != nil {
				h.obs.PluginCrashed(p.Name)
			}
		}
		return nil, err
	}
	restart := h.started(p.Name)
	if h.obs != nil {
		h.obs.PluginStarted(p.Name, restart)
	}
	// Debug: the caller says what the process was for (a check at start,
	// a job), which reads better than a start and an exit of its own.
	log.Debug("connector plugin ready",
		zap.String("path", p.Path),
		zap.String("implements", inst.desc.GetName()),
		zap.String("version", inst.desc.GetVersion()))
	return inst, nil
}

// verify reads the binary at p.Path once, into a sealed in-memory file as
// it goes, and checks the sha256 of what it read against want. It returns
// the sealed file to run, or nil when none could be made: then the file at
// the path runs, hashed once more right before exec, as go-plugin would.
func (h *Host) verify(p *config.Plugin, want []byte, log *zap.Logger) (*os.File, error) {
	f, err := os.Open(p.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %q at %s: computing sha256: %w", p.Name, p.Path, err)
	}
	defer func() { _ = f.Close() }()
	image, imageErr := h.newImage("dirsync-plugin-" + p.Name)
	sum := sha256.New()
	var w io.Writer = sum
	if image != nil {
		w = io.MultiWriter(sum, image)
	}
	if _, err := io.Copy(w, f); err != nil {
		if image != nil {
			_ = image.Close()
		}
		return nil, fmt.Errorf("plugin %q at %s: computing sha256: %w", p.Name, p.Path, err)
	}
	if got := sum.Sum(nil); !bytes.Equal(got, want) {
		if image != nil {
			_ = image.Close()
		}
		return nil, fmt.Errorf("plugin %q at %s: sha256 mismatch: plugins.hcl says %s, the file is %x; rebuild or update sha256", p.Name, p.Path, p.SHA256, got)
	}
	if image != nil {
		image, imageErr = seal(image)
	}
	if imageErr != nil {
		log.Warn("cannot run the verified binary from a sealed in-memory copy; running the file instead, which is hashed again right before it starts: "+
			"a binary swapped in the instant between that check and exec would run unverified", zap.String("path", p.Path), zap.Error(imageErr))
		return nil, nil
	}
	return image, nil
}

// start connects to the started process, dispenses the connector and
// checks it answers Describe.
func (i *Instance) start(ctx context.Context) error {
	p := i.plugin
	rpc, err := i.client.Client()
	if err != nil {
		// A process that died before the handshake is no plugin problem
		// go-plugin can name; its exit status can.
		if e, ok := i.proc.awaitExit(i.host.exitWait); ok && e.own && e.code != 0 {
			return &pluginError{kind: ErrPluginExited, msg: fmt.Sprintf(
				"plugin %q at %s: exited before the plugin handshake (%s); check its log lines above; is it a dirsync connector plugin built from this version? run `make build`",
				p.Name, p.Path, e.status)}
		}
		return fmt.Errorf("plugin %q at %s: starting: %w (is it a dirsync connector plugin built from this version? run `make build`)", p.Name, p.Path, err)
	}
	raw, err := rpc.Dispense(connector.PluginName)
	if err != nil {
		return fmt.Errorf("plugin %q at %s: dispensing %q: %w", p.Name, p.Path, connector.PluginName, err)
	}
	inner, ok := raw.(connector.Connector)
	if !ok {
		return fmt.Errorf("plugin %q at %s: dispensed %T, not a connector.Connector", p.Name, p.Path, raw)
	}
	conn := &guarded{inst: i, inner: inner}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DescribeTimeout)
		defer cancel()
	}
	desc, err := conn.Describe(ctx)
	if err != nil {
		return fmt.Errorf("plugin %q at %s: did not answer Describe: %w", p.Name, p.Path, err)
	}
	if err := checkDescribe(desc); err != nil {
		return fmt.Errorf("plugin %q at %s: invalid Describe answer: %w", p.Name, p.Path, err)
	}
	i.conn, i.desc = conn, desc
	return nil
}

// checkDescribe checks what a plugin says about itself is usable: a name
// and a config schema whose keys have names and types.
func checkDescribe(d *connectorv1.DescribeResponse) error {
	if d == nil || d.GetName() == "" {
		return errors.New("no connector name")
	}
	seen := map[string]bool{}
	var problems []string
	for i, f := range d.GetConfigFields() {
		switch {
		case f.GetName() == "":
			problems = append(problems, fmt.Sprintf("config field %d has no name", i+1))
		case seen[f.GetName()]:
			problems = append(problems, fmt.Sprintf("config field %q is declared twice", f.GetName()))
		case f.GetType() == connectorv1.ConfigField_TYPE_UNSPECIFIED || connectorv1.ConfigField_Type_name[int32(f.GetType())] == "":
			problems = append(problems, fmt.Sprintf("config field %q has no known type", f.GetName()))
		}
		seen[f.GetName()] = true
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Connector returns the plugin's connector. Its calls fail with
// ErrPluginHung when the plugin sends nothing for its idle_timeout (the
// process is then killed) and with ErrPluginExited when the process ends
// on its own during the call.
func (i *Instance) Connector() connector.Connector { return i.conn }

// Describe returns the plugin's answer to Describe at launch: its name,
// version and config schema (for config.DecodeConnectorConfig).
func (i *Instance) Describe() *connectorv1.DescribeResponse { return i.desc }

// Plugin returns the plugins.hcl entry the instance runs.
func (i *Instance) Plugin() *config.Plugin { return i.plugin }

// Kill stops the plugin process: gracefully (the gRPC connection closes and
// the plugin exits), or forcibly after two seconds. It returns once the
// process has exited; calling it again does nothing.
// A process found already gone was not stopped by the daemon: it crashed
// (or was killed from outside), and is counted as such, like one stopped
// as hung; either makes the plugin's next Launch wait its backoff. A
// process stopped here while running normally ends the backoff.
func (i *Instance) Kill() {
	i.killOnce.Do(func() {
		failedAt, why := i.failure()
		i.client.Kill()
		if failedAt.IsZero() {
			i.host.stopped(i.plugin.Name)
			return
		}
		i.host.failed(i.plugin.Name, failedAt)
		i.log.Warn("connector plugin "+why+"; it is started again for the next job", zap.String("path", i.plugin.Path))
		if i.host.obs != nil {
			i.host.obs.PluginCrashed(i.plugin.Name)
		}
	})
	i.client.Kill()
}

// failure says when and how the process failed: hung, or ended on its
// own; a zero time when it did not.
func (i *Instance) failure() (time.Time, string) {
	i.mu.Lock()
	hungAt := i.hungAt
	i.mu.Unlock()
	if !hungAt.IsZero() {
		return hungAt, fmt.Sprintf("sent nothing for %s (idle_timeout) and was stopped as hung", shortDuration(i.idle))
	}
	if e, ok := i.proc.awaitExit(0); ok && e.own {
		return e.at, "had exited on its own (" + e.status + ")"
	}
	return time.Time{}, ""
}

// markHung records that the idle watchdog stopped the process.
func (i *Instance) markHung() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.hungAt.IsZero() {
		i.hungAt = i.host.now()
	}
}

// Exited reports whether the plugin process has exited.
func (i *Instance) Exited() bool { return i.client.Exited() }

// checkBinary checks p.Path is an executable regular file.
func checkBinary(p *config.Plugin) error {
	fi, err := os.Stat(p.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("plugin %q at %s: no such file; run `make build` to build the plugins, or fix path in plugins.hcl: %w", p.Name, p.Path, err)
	case err != nil:
		return fmt.Errorf("plugin %q at %s: %w", p.Name, p.Path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("plugin %q at %s: not a regular file; path in plugins.hcl must name the plugin binary (run `make build` to build it)", p.Name, p.Path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("plugin %q at %s: not executable; run `make build` to rebuild it, or chmod +x it", p.Name, p.Path)
	}
	return nil
}

// fileSHA256 returns the sha256 of the file at path.
func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// pluginEnv picks from environ (KEY=value entries) what a connector
// legitimately needs: proxy settings, CA locations, the time zone and
// GODEBUG. Nothing else of the daemon's environment reaches a plugin.
func pluginEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		switch key {
		case "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
			"SSL_CERT_FILE", "SSL_CERT_DIR", "TZ", "GODEBUG":
			out = append(out, kv)
		}
	}
	return out
}
