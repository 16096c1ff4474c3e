package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
)

// proc runs one plugin process for go-plugin (it is the client's
// runner.Runner). Owning the process rather than leaving it to go-plugin
// lets the host exec a verified in-memory copy of the binary, see at once
// when and how the process ended, and tell an exit on its own from a
// stop by the daemon.
type proc struct {
	host   *Host
	plugin *config.Plugin
	log    *zap.Logger
	env    []string
	// want is the pinned sha256, checked again right before exec when no
	// image could be made; nil when not pinned.
	want []byte
	done chan struct{} // closed once the process has been waited for

	mu       sync.Mutex
	image    *os.File // sealed memfd holding the verified binary, or nil
	cmd      *exec.Cmd
	stdout   io.ReadCloser
	stderr   io.ReadCloser
	state    *os.ProcessState
	exitedAt time.Time
	killed   bool // the daemon sent SIGKILL while the process ran
}

var _ runner.Runner = (*proc)(nil)

// runnerFunc is the client's RunnerFunc: cmd carries go-plugin's
// handshake variables, added to the plugin's minimal environment.
func (r *proc) runnerFunc(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
	r.env = append(pluginEnv(os.Environ()), cmd.Env...)
	return r, nil
}

// Start starts the process: from the sealed image when there is one, else
// from the path (checking a pinned sha256 once more first).
func (r *proc) Start(context.Context) error {
	r.mu.Lock()
	image := r.image
	r.image = nil
	r.mu.Unlock()
	if image != nil {
		err := r.exec(execImagePath, image)
		_ = image.Close() // the child holds its own copy
		if err == nil {
			return nil
		}
		r.log.Warn("cannot exec the verified in-memory copy of the plugin binary; running the file instead, which is hashed again right before it starts: "+
			"a binary swapped in the instant between that check and exec would run unverified", zap.String("path", r.plugin.Path), zap.Error(err))
	}
	if r.want != nil {
		got, err := fileSHA256(r.plugin.Path)
		if err != nil {
			return fmt.Errorf("plugin %q at %s: computing sha256: %w", r.plugin.Name, r.plugin.Path, err)
		}
		if !bytes.Equal(got, r.want) {
			return fmt.Errorf("plugin %q at %s: sha256 mismatch: plugins.hcl says %s, the file is %x; rebuild or update sha256", r.plugin.Name, r.plugin.Path, r.plugin.SHA256, got)
		}
	}
	return r.exec(r.plugin.Path, nil)
}

// exec starts path with the plugin's path as argv[0] (so ps and the
// plugin's own messages name the real binary) and image, if any, as fd 3.
func (r *proc) exec(path string, image *os.File) error {
	cmd := &exec.Cmd{Path: path, Args: []string{r.plugin.Path}, Env: r.env}
	if image != nil {
		cmd.ExtraFiles = []*os.File{image}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if r.host.beforeStart != nil {
		r.host.beforeStart(r.plugin)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.mu.Lock()
	r.cmd, r.stdout, r.stderr = cmd, stdout, stderr
	r.mu.Unlock()
	r.log.Debug("plugin process started", zap.Int("pid", cmd.Process.Pid), zap.Bool("verified_image", image != nil))
	return nil
}

// closeImage drops an image that was never started.
func (r *proc) closeImage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.image != nil {
		_ = r.image.Close()
		r.image = nil
	}
}

// Wait waits for the process and records how it ended.
func (r *proc) Wait(context.Context) error {
	err := r.command().Wait()
	r.mu.Lock()
	r.state, r.exitedAt = r.cmd.ProcessState, r.host.now()
	r.mu.Unlock()
	close(r.done)
	return err
}

// Kill sends SIGKILL; a process already gone is no error.
func (r *proc) Kill(context.Context) error {
	r.mu.Lock()
	cmd := r.cmd
	if cmd != nil && r.state == nil {
		r.killed = true
	}
	r.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *proc) command() *exec.Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd
}

// pid returns the process id, or 0 before the start.
func (r *proc) pid() int {
	if cmd := r.command(); cmd != nil && cmd.Process != nil {
		return cmd.Process.Pid
	}
	return 0
}

// ID implements runner.Runner: the pid, "" before the start.
func (r *proc) ID() string {
	if pid := r.pid(); pid != 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// Stdout implements runner.Runner.
func (r *proc) Stdout() io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdout
}

// Stderr implements runner.Runner.
func (r *proc) Stderr() io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr
}

// Name implements runner.Runner.
func (r *proc) Name() string { return r.plugin.Path }

// Diagnose implements runner.Runner; Launch's error says what to do.
func (r *proc) Diagnose(context.Context) string { return "" }

// PluginToHost implements runner.AddrTranslator: the plugin runs on the
// daemon's host, so addresses are the same.
func (r *proc) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

// HostToPlugin implements runner.AddrTranslator.
func (r *proc) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// exit is how the process ended.
type exit struct {
	// own: it exited or died of a signal on its own, not of the daemon's
	// SIGKILL.
	own bool
	// status is "exit status 3", "signal: killed", ….
	status string
	// code is the exit status, or -1 when a signal ended it.
	code int
	at   time.Time
}

// awaitExit waits up to d for the process to end and says how it did; ok
// is false while it runs (or never started).
func (r *proc) awaitExit(d time.Duration) (e exit, ok bool) {
	select {
	case <-r.done:
	default:
		if d <= 0 {
			return exit{}, false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			return exit{}, false
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e = exit{own: true, status: r.state.String(), code: r.state.ExitCode(), at: r.exitedAt}
	if ws, isWS := r.state.Sys().(syscall.WaitStatus); isWS && ws.Signaled() && ws.Signal() == syscall.SIGKILL && r.killed {
		e.own = false
	}
	return e, true
}
