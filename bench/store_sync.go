package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// Issue 7 asks what durability costs: the append scenario measures the
// event store itself (store.Append, in process) on the events the full
// sync wrote, with the sync point of nats { sync = "append" } and without
// one (sync = "interval"), beside the raw floor and sync always.

// timedDisk is a store.Disk that times its syncs.
type timedDisk struct {
	store.Disk
	took []time.Duration
}

func (d *timedDisk) Sync(ctx context.Context, stream string) error {
	t0 := time.Now()
	err := d.Disk.Sync(ctx, stream)
	d.took = append(d.took, time.Since(t0))
	return err
}

// appendRun is one in-process append of the job's events.
type appendRun struct {
	// took is store.Append's time, sync included; sync is the sync
	// point's share.
	took, sync time.Duration
	// stateSync is the median time of a single state event's sync point.
	stateSync time.Duration
}

// stateAppends is how many single-event appends time a state change.
const stateAppends = 21

// appendInProcess appends evs with store.Append to a fresh embedded server
// started as dirsyncd starts it (broker.Start) with the sync policy, then
// appends stateAppends single state events, and deletes the server's data.
func appendInProcess(ctx context.Context, env *Env, evs []events.Event, policy string) (appendRun, error) {
	var run appendRun
	dir := filepath.Join(env.Dir, "append-"+policy)
	defer func() { _ = os.RemoveAll(dir) }()
	br, err := broker.Start(ctx, broker.Options{Listen: "127.0.0.1:0", DataDir: dir, Name: "dirsync-bench", Sync: policy}, zap.NewNop())
	if err != nil {
		return run, err
	}
	defer br.Close()
	td := &timedDisk{Disk: br.Storage()}
	st, err := store.Open(ctx, br.JS, 1, store.WithDisk(td))
	if err != nil {
		return run, err
	}
	t0 := time.Now()
	last, err := st.Append(ctx, evs)
	if err != nil {
		return run, err
	}
	run.took = time.Since(t0)
	if last != uint64(len(evs)) {
		return run, fmt.Errorf("%w: store.Append stored %d of %d events", errStoreCheck, last, len(evs))
	}
	if len(td.took) != 1 {
		return run, fmt.Errorf("%w: %d sync points for one append", errStoreCheck, len(td.took))
	}
	run.sync = td.took[0]
	td.took = nil
	for i := range stateAppends {
		job := fmt.Sprintf("bench-%d", i)
		e := events.New(events.TypeSyncState, events.SyncSubject(Connector, job), Connector, job, 0, time.Now(),
			events.SyncState{JobID: job, Connector: Connector, State: events.StatePending})
		if _, err := st.Append(ctx, []events.Event{e}); err != nil {
			return run, err
		}
	}
	slices.Sort(td.took)
	run.stateSync = td.took[len(td.took)/2]
	return run, nil
}

// syncRows measures store.Append with and without the sync point on the
// job's events (msgs, as stored) and returns the rows, beside rawRate.
func syncRows(ctx context.Context, env *Env, scenario string, msgs []storeMsg, rawRate float64) ([]Row, error) {
	evs := make([]events.Event, len(msgs))
	for i, m := range msgs {
		e, err := events.Decode(m.data)
		if err != nil {
			return nil, fmt.Errorf("%w: stored event %d: %v", errStoreCheck, i, err)
		}
		evs[i] = e
	}
	n := len(evs)
	// Alternating, the better of two runs each: this machine's figures
	// vary from run to run by more than the sync point costs.
	var with, without appendRun
	for i := range 2 {
		for _, policy := range []string{broker.SyncAppend, broker.SyncInterval} {
			env.Logf("store.Append in process: %d events, sync = %q (run %d of 2)", n, policy, i+1)
			r, err := appendInProcess(ctx, env, evs, policy)
			if err != nil {
				return nil, err
			}
			env.Logf("   %.2f s (sync point %.3f s)", r.took.Seconds(), r.sync.Seconds())
			best := &with
			if policy == broker.SyncInterval {
				best = &without
			}
			if best.took == 0 || r.took < best.took {
				*best = r
			}
		}
	}
	withRate, withoutRate := float64(n)/with.took.Seconds(), float64(n)/without.took.Seconds()
	how := fmt.Sprintf("store.Append of the job's %d events (decoded from the stream, so encoded again as the daemon does) into a fresh embedded server started by broker.Start in the bench process, from the call to its return, the better of two runs alternating with the next row's", n)
	return []Row{
		{
			Scenario: scenario, Metric: "events/s, store.Append with the sync point (sync = \"append\", the default)",
			Value: withRate, Floor: rawRate, Unit: "events/s", HigherIsBetter: true,
			Target: "none (issue 7 cost)", Met: true,
			Note: fmt.Sprintf("%s: %.2f s, of which the sync point (fsync of the stream's changed blocks and directory after the last ack) %.3f s", how, with.took.Seconds(), with.sync.Seconds()),
		},
		{
			Scenario: scenario, Metric: "events/s, store.Append without a sync point (sync = \"interval\")",
			Value: withoutRate, Floor: rawRate, Unit: "events/s", HigherIsBetter: true,
			Target: "none (issue 7 cost)", Met: true,
			Note: fmt.Sprintf("the same, with nats-server's default policy (fsync every 2 min): %.2f s. The sync point itself is %.1f%% of the append with it",
				without.took.Seconds(), 100*with.sync.Seconds()/with.took.Seconds()),
		},
		{
			Scenario: scenario, Metric: "sync point of one SAVING",
			Value: float64(with.sync.Microseconds()) / 1000, Unit: "ms",
			Target: "none (issue 7 cost)", Met: true,
			Note: fmt.Sprintf("the fsync after the %d events' acks in the first row (%.1f MB written); each job state change is an append of one event with its own sync point: median %.2f ms over %d",
				n, float64(storeBytes(msgs))/1e6, float64(with.stateSync.Microseconds())/1000, stateAppends),
		},
	}, nil
}

// storeBytes is the encoded size of msgs.
func storeBytes(msgs []storeMsg) int {
	n := 0
	for _, m := range msgs {
		n += len(m.data)
	}
	return n
}
