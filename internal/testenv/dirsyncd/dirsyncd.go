// Package dirsyncd runs the dirsyncd binary for the end-to-end tests and
// the benchmarks: one way to start it on a plugins.hcl, collect its JSON
// log, wait until it is ready, notice that it exited, and stop it.
package dirsyncd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/internal/testenv"
)

// Process is a running (or exited) dirsyncd.
type Process struct {
	Cmd *exec.Cmd
	// Log is everything the daemon wrote to stdout and stderr.
	Log *testenv.LockedBuffer
	// Started is when the process was started.
	Started time.Time

	done chan struct{} // closed once the process has exited
	err  error         // its Wait error, set before done is closed
}

// Start starts bin/dirsyncd with --config config and --log-format json,
// with env added to its environment, writing its output to log (nil: a
// new buffer; a fixture that restarts the daemon passes one for all).
func Start(bin, config string, log *testenv.LockedBuffer, env ...string) (*Process, error) {
	if log == nil {
		log = &testenv.LockedBuffer{}
	}
	p := &Process{Log: log, done: make(chan struct{})}
	p.Cmd = exec.Command(filepath.Join(bin, "dirsyncd"), "--config", config, "--log-format", "json")
	p.Cmd.Stdout, p.Cmd.Stderr = p.Log, p.Log
	if len(env) > 0 {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the process has exited (see Exited).
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// WaitReady calls ready until it returns nil. It fails at once, with the
// exit and the log, if the process exits first, and with ready's last
// error once ctx is done. maxPause bounds the pause between calls (see
// testenv.Poll): a benchmark timing the start passes a small one.
func (p *Process) WaitReady(ctx context.Context, maxPause time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := testenv.Poll(ctx, maxPause, func() error { return ready(ctx) })
	if exited, exit := p.Exited(); exited {
		return fmt.Errorf("dirsyncd exited at start: %v\n%s", exit, p.Log.String())
	}
	if err != nil {
		return fmt.Errorf("dirsyncd not ready: %w\n%s", err, p.Log.String())
	}
	return nil
}

// Stop sends SIGTERM and returns the exit error (nil for exit 0). guard
// bounds the wait: a daemon still running after it is killed, and Stop
// says so. Stopping an exited process returns its exit at once.
func (p *Process) Stop(guard time.Duration) error {
	if exited, err := p.Exited(); exited {
		return err
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(guard)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		_ = p.Cmd.Process.Kill()
		<-p.done
		return errors.New("dirsyncd did not stop within " + guard.String() + " of SIGTERM")
	}
}
