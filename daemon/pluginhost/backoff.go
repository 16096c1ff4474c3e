package pluginhost

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
)

// Restart backoff of a plugin that crashed or hung: the next start waits
// BackoffBase after the first failure, doubling per consecutive failure up
// to BackoffMax, counted from the failure. A crash loop then costs a
// start a minute, not a start per scheduled job.
const (
	BackoffBase = time.Second
	BackoffMax  = time.Minute
)

// failures is a plugin's record of consecutive failures.
type failures struct {
	n    int       // consecutive failures; a normal stop resets it
	last time.Time // when the last one happened
	// restart: the last process failed; the next start is a restart.
	restart bool
}

// backoffDelay is the wait after n consecutive failures.
func backoffDelay(n int, base, limit time.Duration) time.Duration {
	if n <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// waitBackoff waits out p's restart backoff, or returns early with ctx's
// error.
func (h *Host) waitBackoff(ctx context.Context, p *config.Plugin, log *zap.Logger) error {
	h.mu.Lock()
	var n int
	var last time.Time
	if f := h.failures[p.Name]; f != nil {
		n, last = f.n, f.last
	}
	h.mu.Unlock()
	wait := last.Add(backoffDelay(n, h.backoffBase, h.backoffMax)).Sub(h.now())
	if n == 0 || wait <= 0 {
		return nil
	}
	after := fmt.Sprintf("after %d consecutive failures", n)
	if n == 1 {
		after = "after a failure"
	}
	log.Warn(fmt.Sprintf("restarting plugin %q in %s %s", p.Name, roundWait(wait), after),
		zap.Duration("backoff", wait), zap.Int("failures", n))
	select {
	case <-h.after(wait):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plugin %q at %s: not restarted: it was waiting %s %s: %w", p.Name, p.Path, roundWait(wait), after, ctx.Err())
	}
}

// roundWait rounds a wait for people: 4s, 1.5s, 300ms.
func roundWait(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// failed records a failure of p's process (a crash or a hang) at when.
func (h *Host) failed(name string, when time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.failures[name]
	if f == nil {
		f = &failures{}
		h.failures[name] = f
	}
	f.n++
	f.last = when
	f.restart = true
}

// stopped records a normal stop of p's process: the failures are over.
func (h *Host) stopped(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.failures[name]; f != nil {
		f.n = 0
	}
}

// started records a start of p's process and reports whether it is a
// restart after a failure.
func (h *Host) started(name string) (restart bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.failures[name]; f != nil {
		restart, f.restart = f.restart, false
	}
	return restart
}
