package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Failures of a plugin process, for errors.Is.
var (
	// ErrPluginHung: the plugin sent nothing for its idle_timeout and was
	// stopped.
	ErrPluginHung = errors.New("plugin hung")
	// ErrPluginExited: the plugin process ended on its own (crash, exit,
	// a signal from outside) before the daemon stopped it.
	ErrPluginExited = errors.New("plugin exited")
)

// pluginError is a plugin failure put for the admin: msg says what
// happened and what to do, kind is ErrPluginHung or ErrPluginExited.
type pluginError struct {
	msg  string
	kind error
}

func (e *pluginError) Error() string { return e.msg }
func (e *pluginError) Unwrap() error { return e.kind }

// guarded is the Connector an Instance hands out: the plugin's gRPC
// client, with each call watched for a hung plugin (idle_timeout) and a
// dead process turned into an error that names the plugin.
type guarded struct {
	inst  *Instance
	inner connector.Connector
}

var (
	_ connector.Connector         = (*guarded)(nil)
	_ connector.MailboxClassifier = (*guarded)(nil)
)

// Describe implements connector.Connector.
func (g *guarded) Describe(ctx context.Context) (resp *connectorv1.DescribeResponse, err error) {
	err = g.inst.guard(ctx, "while answering Describe", func(ctx context.Context, _ *watchdog) error {
		resp, err = g.inner.Describe(ctx)
		return err
	})
	return resp, err
}

// ValidateConfig implements connector.Connector.
func (g *guarded) ValidateConfig(ctx context.Context, cfg *connectorv1.Config) (problems []*connectorv1.ConfigProblem, err error) {
	err = g.inst.guard(ctx, "while validating its config", func(ctx context.Context, _ *watchdog) error {
		problems, err = g.inner.ValidateConfig(ctx, cfg)
		return err
	})
	return problems, err
}

// TestConnection implements connector.Connector.
func (g *guarded) TestConnection(ctx context.Context, cfg *connectorv1.Config) (resp *connectorv1.TestConnectionResponse, err error) {
	err = g.inst.guard(ctx, "during the connection test", func(ctx context.Context, _ *watchdog) error {
		resp, err = g.inner.TestConnection(ctx, cfg)
		return err
	})
	return resp, err
}

// ClassifyMailboxes implements connector.MailboxClassifier, which every
// plugin client has: a plugin built without the call answers
// connector.ErrNotSupported.
func (g *guarded) ClassifyMailboxes(ctx context.Context, req *connectorv1.ClassifyMailboxesRequest) (resp *connectorv1.ClassifyMailboxesResponse, err error) {
	mc, ok := g.inner.(connector.MailboxClassifier)
	if !ok {
		return nil, fmt.Errorf("%w: ClassifyMailboxes", connector.ErrNotSupported)
	}
	err = g.inst.guard(ctx, "while classifying mailboxes", func(ctx context.Context, _ *watchdog) error {
		resp, err = mc.ClassifyMailboxes(ctx, req)
		return err
	})
	return resp, err
}

// Sync implements connector.Connector. The idle clock runs while the
// daemon waits for the plugin, not while send (the daemon's own work)
// runs.
func (g *guarded) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	return g.inst.guard(ctx, "during the sync", func(ctx context.Context, w *watchdog) error {
		return g.inner.Sync(ctx, req, func(b *connectorv1.SyncBatch) error {
			w.pause()
			defer w.resume()
			return send(b)
		})
	})
}

// guard runs call under the idle watchdog. A plugin that sends nothing for
// idle_timeout is stopped (its call context canceled, its process killed,
// so even a Recv blocked on a dead connection returns) and the error is
// ErrPluginHung; a call that failed because the process ended on its own
// returns ErrPluginExited with the exit status. Other errors, and any
// error once ctx itself is done, are returned as they are. when completes
// the messages: "plugin "x" exited <when>".
func (i *Instance) guard(ctx context.Context, when string, call func(context.Context, *watchdog) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := newWatchdog(i.idle, func() {
		i.markHung()
		cancel()
		_ = i.proc.Kill(context.Background())
	})
	err := call(cctx, w)
	w.stop()
	switch {
	case err == nil:
		return nil
	case w.fired():
		return &pluginError{kind: ErrPluginHung, msg: fmt.Sprintf(
			"plugin %q sent nothing for %s %s (idle_timeout in plugins.hcl): it looks hung and was stopped; check its log lines above, raise idle_timeout if Graph is slow",
			i.plugin.Name, shortDuration(i.idle), when)}
	case ctx.Err() != nil:
		return err
	}
	// A dead process shows as a broken transport (Unavailable) or a
	// stream that ended early; the process is reaped a moment later.
	var wait time.Duration
	if status.Code(err) == codes.Unavailable || errors.Is(err, connector.ErrIncompleteStream) {
		wait = i.host.exitWait
	}
	if e, ok := i.proc.awaitExit(wait); ok && e.own {
		return &pluginError{kind: ErrPluginExited, msg: fmt.Sprintf(
			"plugin %q exited %s (%s); check its log lines above; the next job starts it again",
			i.plugin.Name, when, e.status)}
	}
	return err
}

// watchdog fires once when its idle time passes with no activity; pause
// and resume bracket time that does not count (the daemon's own work).
type watchdog struct {
	idle time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	paused  bool
	stopped bool
	hasRun  bool
}

// newWatchdog starts the clock; fire runs in its own goroutine.
func newWatchdog(idle time.Duration, fire func()) *watchdog {
	w := &watchdog{idle: idle}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(idle, func() {
		w.mu.Lock()
		if w.paused || w.stopped || w.hasRun {
			w.mu.Unlock()
			return
		}
		w.hasRun = true
		w.mu.Unlock()
		fire()
	})
	return w
}

func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = true
	w.timer.Stop()
}

func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paused = false
	if !w.stopped && !w.hasRun {
		w.timer.Reset(w.idle)
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// fired reports whether the idle time passed.
func (w *watchdog) fired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hasRun
}

// shortDuration prints d without zero units: 10m, not 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
