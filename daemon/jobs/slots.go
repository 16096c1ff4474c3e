package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PluginSlots is how many processes of one plugin run at once, for syncs
// and connection tests together. Each is a subprocess of tens of MB
// (60 concurrent connection tests once started 60 of them: 1.7 GB); a
// sync beyond the limit waits for a slot, a connection test waits
// TestSlotWait and then is refused with ErrPluginBusy.
const PluginSlots = 4

// TestSlotWait is how long a connection test waits for a plugin slot.
const TestSlotWait = 5 * time.Second

// ErrPluginBusy is returned for a connection test that found every slot
// of its plugin taken for TestSlotWait; the caller may retry.
var ErrPluginBusy = errors.New("the plugin already runs as many processes as it may")

// phaseWaitingForSlot is a job's progress phase while it waits for a
// plugin slot: waiting behind other jobs is not a stall.
const phaseWaitingForSlot = "waiting for a plugin process slot"

// pluginSlot takes one of plugin's PluginSlots, waiting until ctx ends.
func (r *Runner) pluginSlot(ctx context.Context, plugin string) (release func(), err error) {
	r.mu.Lock()
	sem := r.slots[plugin]
	if sem == nil {
		sem = make(chan struct{}, PluginSlots)
		r.slots[plugin] = sem
	}
	r.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of plugin %q's %d process slots (syncs and connection tests share them): %w", plugin, PluginSlots, context.Cause(ctx))
	}
}
