// Package pluginhost starts connector plugins as hashicorp/go-plugin
// subprocesses and hands out the connector.Connector they serve.
//
// A plugin runs with automatic mutual TLS over gRPC, with a minimal
// environment (proxy, CA and time-zone settings only: never the daemon's
// own variables), and, when plugins.hcl pins one, only after its sha256
// matched. Its stderr log lines land in the daemon's zap log with the
// plugin's name as a field.
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
	"os/exec"
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

	mu      sync.Mutex
	crashed map[string]bool // plugin name → its last process exited on its own
}

// Observer hears of plugin process starts and crashes (metrics).
type Observer interface {
	// PluginStarted: restart is true when the plugin's previous process
	// had crashed.
	PluginStarted(plugin string, restart bool)
	// PluginCrashed: a process exited before the daemon stopped it.
	PluginCrashed(plugin string)
}

// Observe makes o hear of plugin starts and crashes.
func (h *Host) Observe(o Observer) { h.obs = o }

// New returns a Host logging to log (a no-op logger when nil).
func New(log *zap.Logger) *Host {
	if log == nil {
		log = zap.NewNop()
	}
	return &Host{log: log, crashed: map[string]bool{}}
}

// Instance is one running plugin process.
type Instance struct {
	host     *Host
	log      *zap.Logger
	killOnce sync.Once
	plugin   *config.Plugin
	client   *plugin.Client
	conn     connector.Connector
	desc     *connectorv1.DescribeResponse
}

// Launch starts the plugin binary at p.Path as a go-plugin subprocess and
// returns a Connector backed by it. It refuses a binary that is missing, not
// executable or, when p.SHA256 is set, has another checksum, before
// starting anything; and it stops the plugin again if it does not answer
// Describe with a usable schema. ctx bounds the launch, not the instance's
// life: stop it with Kill. fields are added to every log line of the
// plugin (e.g. the job it serves).
func (h *Host) Launch(ctx context.Context, p *config.Plugin, fields ...zap.Field) (*Instance, error) {
	if err := checkBinary(p); err != nil {
		return nil, err
	}
	var secure *plugin.SecureConfig
	if p.SHA256 != "" {
		want, err := hex.DecodeString(p.SHA256)
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("plugin %q at %s: sha256 in plugins.hcl is not 64 hex characters", p.Name, p.Path)
		}
		got, err := fileSHA256(p.Path)
		if err != nil {
			return nil, fmt.Errorf("plugin %q at %s: computing sha256: %w", p.Name, p.Path, err)
		}
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("plugin %q at %s: sha256 mismatch: plugins.hcl says %s, the file is %x; rebuild or update sha256", p.Name, p.Path, p.SHA256, got)
		}
		// go-plugin checks again right before it starts the process.
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("plugin %q at %s: not started: %w", p.Name, p.Path, err)
	}

	startTimeout := StartTimeout
	if deadline, ok := ctx.Deadline(); ok {
		startTimeout = min(startTimeout, max(time.Until(deadline), time.Millisecond))
	}
	log := h.log.With(append([]zap.Field{zap.String("plugin", p.Name)}, fields...)...)
	cmd := exec.Command(p.Path)
	cmd.Env = pluginEnv(os.Environ())
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  connector.Handshake,
		Plugins:          connector.PluginSet(nil),
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		StartTimeout:     startTimeout,
		Logger:           NewHCLogger(log, reservedKeys(fields)...),
	})
	inst := &Instance{host: h, log: log, plugin: p, client: client}
	if err := inst.start(ctx); err != nil {
		client.Kill()
		return nil, err
	}
	h.mu.Lock()
	restart := h.crashed[p.Name]
	h.crashed[p.Name] = false
	h.mu.Unlock()
	if h.obs != nil {
		h.obs.PluginStarted(p.Name, restart)
	}
	log.Info("connector plugin ready",
		zap.String("path", p.Path),
		zap.String("implements", inst.desc.GetName()),
		zap.String("version", inst.desc.GetVersion()))
	return inst, nil
}

// reservedKeys are the fields the host sets on a plugin's log lines; the
// plugin's own fields of those names are renamed, never duplicated.
func reservedKeys(fields []zap.Field) []string {
	keys := []string{"plugin"}
	for _, f := range fields {
		keys = append(keys, f.Key)
	}
	return keys
}

// start connects to the started process, dispenses the connector and
// checks it answers Describe.
func (i *Instance) start(ctx context.Context) error {
	p := i.plugin
	rpc, err := i.client.Client()
	if err != nil {
		return fmt.Errorf("plugin %q at %s: starting: %w (is it a dirsync connector plugin built from this version? run `make build`)", p.Name, p.Path, err)
	}
	raw, err := rpc.Dispense(connector.PluginName)
	if err != nil {
		return fmt.Errorf("plugin %q at %s: dispensing %q: %w", p.Name, p.Path, connector.PluginName, err)
	}
	conn, ok := raw.(connector.Connector)
	if !ok {
		return fmt.Errorf("plugin %q at %s: dispensed %T, not a connector.Connector", p.Name, p.Path, raw)
	}
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

// Connector returns the plugin's connector. Its concrete type is
// *connector.Client.
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
// (or was killed), and is counted as such.
func (i *Instance) Kill() {
	i.killOnce.Do(func() {
		if !i.client.Exited() {
			return
		}
		i.host.mu.Lock()
		i.host.crashed[i.plugin.Name] = true
		i.host.mu.Unlock()
		i.log.Warn("connector plugin had exited on its own; it is started again for the next job")
		if i.host.obs != nil {
			i.host.obs.PluginCrashed(i.plugin.Name)
		}
	})
	i.client.Kill()
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
