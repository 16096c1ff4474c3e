package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// A full sync both reads the directory and appends what it decided, so
// its floor is the longer of the raw read (rawgraph.go) and the raw
// append of the same event bytes (store.go's rawPublish): whichever bounds
// a client that does nothing else. The unchanged re-read checks that a
// second full read of the same directory decides nothing.

// rawAppendOf reads back the events job wrote and times their raw append
// on the rig's daemon's server.
func (r *syncRig) rawAppendOf(ctx context.Context, env *Env, job string) (rawAppend, error) {
	nc, js, err := storeConnect(r.d)
	if err != nil {
		return rawAppend{}, err
	}
	defer nc.Close()
	je, err := readJobEvents(ctx, js, job)
	if err != nil {
		return rawAppend{}, err
	}
	return rawAppendBest(ctx, env, nc, js, je.msgs)
}

// reread is an unchanged full re-read: a second full sync of a tenant
// that did not change since the first.
type reread struct {
	run syncRun
	// states are the sync-state events the stream grew by (the job's own)
	// and others every other event it grew by: what the target counts.
	states, others int
	// kinds counts the others by subject kind, e.g. "12 recipients".
	kinds string
}

// unchangedReread lets the daemon settle, then runs a full sync of the
// unchanged tenant and counts the events the stream grew by.
func (r *syncRig) unchangedReread(ctx context.Context, env *Env) (reread, error) {
	var rr reread
	r.settle(ctx, env)
	nc, js, err := storeConnect(r.d)
	if err != nil {
		return rr, err
	}
	defer nc.Close()
	before, err := storeLastSeq(ctx, js, store.StreamName)
	if err != nil {
		return rr, err
	}
	env.Logf("dirsync: full re-read of the unchanged tenant (stream at %d)", before)
	if rr.run, err = r.sync(ctx, env, true, "unchanged full re-read"); err != nil {
		return rr, err
	}
	count := map[string]int{}
	_, err = storeReadFrom(ctx, js, store.StreamName, before+1, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		kind, _, _ := strings.Cut(strings.TrimPrefix(m.Subject(), events.SubjectRoot+"."), ".")
		if kind == "sync" {
			rr.states++
			return nil
		}
		rr.others++
		count[kind]++
		return nil
	})
	if err != nil {
		return rr, err
	}
	var parts []string
	for k, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	slices.Sort(parts)
	rr.kinds = strings.Join(parts, ", ")
	env.Logf("the re-read appended %d sync-state and %d other events %s", rr.states, rr.others, rr.kinds)
	return rr, nil
}

// row is the re-read's row: the events it wrote beside its own states.
func (rr reread) row(scenario string) Row {
	sum := summary(rr.run.job)
	kinds := ""
	if rr.others > 0 {
		kinds = " (" + rr.kinds + ")"
	}
	return Row{
		Scenario: scenario, Metric: "events written by an unchanged full re-read",
		Value: float64(rr.others), Unit: "events",
		Target: "0", Met: rr.others == 0,
		Note: fmt.Sprintf("a second full sync (--full) right after the first, nothing changed in the tenant: the stream grew by %d sync-state events (the job's own states) and %d others%s; job summary: %d directory, %d recipient events, %d users and %d groups read; %.2f s wall (%s)",
			rr.states, rr.others, kinds, sum.DirectoryEvents, recipientEvents(sum), sum.UsersRetrieved, sum.GroupsRetrieved,
			rr.run.wall.Seconds(), phases(rr.run.job)),
	}
}
