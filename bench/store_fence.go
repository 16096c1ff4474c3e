package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The fenced scenario measures what one writer per connector costs the
// append: every append of a connector's events is now fenced
// (store.AppendFenced under the fence store.Claim returns: atomic
// batches of at most store.MaxBatch events, one in flight, the first
// message conditional on the claim), where it was pipelined async
// publishing (store.AppendProgress, MaxPending in flight). The same
// events go both ways, alternating, each into a fresh stream: on the
// embedded server as dirsyncd starts it, and on a three-node cluster
// with an R3 stream.

// fencedRuns is how many times each way runs, alternating.
const fencedRuns = 3

// clusterWait bounds the wait for a new R3 stream to answer: its
// replicas' first election may split its vote and wait out
// nats-server's election timeout (4 to 9 s).
const clusterWait = time.Minute

// fencedEvents are n recipient-created events of one job, as a first
// sync of n users plans them (the bulk of a SAVING).
func fencedEvents(n int) []events.Event {
	l := &storeLog{users: n, groups: max(1, n/20)}
	at := time.Date(2026, 1, 5, 6, 0, 5, 0, time.UTC)
	const job = "20260105T060000000-fenced"
	evs := make([]events.Event, n)
	for i := range n {
		r := l.recipient(l.user(i, "Title 0"), i%l.groups, at)
		evs[i] = events.New(events.TypeRecipientCreated, events.RecipientSubject(Connector, r.ObjectID), Connector, job, 0, at,
			events.RecipientChange{Recipient: r, Reason: "user has a mail address"})
	}
	return evs
}

// fencedBytes is the encoded size of evs.
func fencedBytes(evs []events.Event) (int, error) {
	n := 0
	for _, e := range evs {
		b, err := e.Marshal()
		if err != nil {
			return 0, err
		}
		n += len(b)
	}
	return n, nil
}

// freshStore opens a Store on an empty DIRSYNC stream and returns it
// with what to do once done with it.
type freshStore func(ctx context.Context, run string) (*store.Store, func(), error)

// fencedRun is one round: the same events appended both ways.
type fencedRun struct {
	plain, fenced, claim time.Duration
}

// fencedRounds appends evs rounds times each way, alternating which goes
// first (plain, fenced, fenced, plain, …) so that a drift of the
// machine weighs on both alike.
func fencedRounds(ctx context.Context, env *Env, where string, evs []events.Event, rounds int, open freshStore) ([]fencedRun, error) {
	n := len(evs)
	runs := make([]fencedRun, rounds)
	plain := func(i int) error {
		st, done, err := open(ctx, fmt.Sprintf("plain-%d", i))
		if err != nil {
			return err
		}
		defer done()
		batch := slices.Clone(evs) // AppendProgress takes its events over
		t0 := time.Now()
		last, err := st.AppendProgress(ctx, batch, nil)
		if err != nil {
			return fmt.Errorf("store.AppendProgress: %w", err)
		}
		runs[i].plain = time.Since(t0)
		if last != uint64(n) {
			return fmt.Errorf("%w: store.AppendProgress stored up to sequence %d, want %d", errStoreCheck, last, n)
		}
		env.Logf("   %s: AppendProgress %d events in %.2f s (run %d of %d)", where, n, runs[i].plain.Seconds(), i+1, rounds)
		return nil
	}
	fenced := func(i int) error {
		st, done, err := open(ctx, fmt.Sprintf("fenced-%d", i))
		if err != nil {
			return err
		}
		defer done()
		batch := slices.Clone(evs)
		t0 := time.Now()
		f, err := st.Claim(ctx, events.Claim{Connector: Connector, Epoch: 1, Replica: "dirsync-bench"}, time.Now())
		if err != nil {
			return fmt.Errorf("store.Claim: %w", err)
		}
		runs[i].claim = time.Since(t0)
		t1 := time.Now()
		last, err := st.AppendFenced(ctx, f, batch, nil)
		if err != nil {
			return fmt.Errorf("store.AppendFenced: %w", err)
		}
		runs[i].fenced = time.Since(t1)
		if last != uint64(n)+1 { // the claim is event 1
			return fmt.Errorf("%w: store.AppendFenced stored up to sequence %d, want %d", errStoreCheck, last, n+1)
		}
		env.Logf("   %s: Claim %.1f ms, AppendFenced %d events in %.2f s (run %d of %d)", where, float64(runs[i].claim.Microseconds())/1000, n, runs[i].fenced.Seconds(), i+1, rounds)
		return nil
	}
	for i := range rounds {
		order := []func(int) error{plain, fenced}
		if i%2 == 1 {
			order[0], order[1] = fenced, plain
		}
		for _, run := range order {
			if err := run(i); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	return runs, nil
}

// medianDuration is the median of ds (the lower middle of an even count).
func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// seconds lists ds in seconds, in run order.
func seconds(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, ", ") + " s"
}

// fencedRow turns the rounds into a row: the fenced rate beside the
// plain one.
func fencedRow(scenario, metric, how string, n int, runs []fencedRun) Row {
	var plain, fenced, claim []time.Duration
	for _, r := range runs {
		plain, fenced, claim = append(plain, r.plain), append(fenced, r.fenced), append(claim, r.claim)
	}
	p, f := medianDuration(plain), medianDuration(fenced)
	fRate, pRate := float64(n)/f.Seconds(), float64(n)/p.Seconds()
	return Row{
		Scenario: scenario, Metric: metric,
		Value: fRate, Floor: pRate, Unit: "events/s", HigherIsBetter: true,
		Target: "none (fencing cost)", Met: true,
		Note: fmt.Sprintf("%s. dirsync: store.Claim (epoch 1), then store.AppendFenced of the events under its fence (atomic batches of ≤ %d, one in flight, the first message of each conditional on the claim), from the call to its return; "+
			"baseline: store.AppendProgress of the same events (pipelined async publishes, ≤ %d unacknowledged), as every append was before fencing. %d rounds alternating which goes first, each append into a fresh stream; median of each (fenced %s; baseline %s). "+
			"The claim, once per lease taken and not timed in the rate, took %.1f ms (median)",
			how, store.MaxBatch, store.MaxPending, len(runs), seconds(fenced), seconds(plain), float64(medianDuration(claim).Microseconds())/1000),
	}
}

// runFenced is the fenced scenario.
func runFenced(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	n := s.Users
	evs := fencedEvents(n)
	size, err := fencedBytes(evs)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%d recipient-created events of one job (%.0f B each on average, %d users as a first sync plans them)", n, float64(size)/float64(n), n)
	env.Logf("embedded server: %d events appended both ways, %d rounds", n, fencedRuns)
	embedded := func(ctx context.Context, run string) (*store.Store, func(), error) {
		dir := filepath.Join(env.Dir, "fenced-"+run)
		br, err := broker.Start(ctx, broker.Options{Listen: "127.0.0.1:0", DataDir: dir, Name: "dirsync-bench", Sync: broker.SyncAppend}, zap.NewNop())
		if err != nil {
			return nil, nil, err
		}
		st, err := store.Open(ctx, br.JS, 1, store.WithDisk(br.Storage()))
		if err != nil {
			br.Close()
			return nil, nil, err
		}
		return st, func() { br.Close(); _ = os.RemoveAll(dir) }, nil
	}
	runs, err := fencedRounds(ctx, env, "embedded", evs, fencedRuns, embedded)
	if err != nil {
		return nil, err
	}
	rows := []Row{fencedRow("fenced append", "events/s, store.AppendFenced after a claim (embedded server, sync = \"append\")",
		what+", each round into a fresh embedded server started by broker.Start in the bench process with the default sync policy (nats { sync = \"append\" }: the append's sync point included both ways)", n, runs)}

	env.Logf("three-node cluster: %d events appended both ways, %d rounds", n, fencedRuns)
	c, err := startNATSCluster(ctx, env, filepath.Join(env.Dir, "fenced-cluster"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Connected as dirsyncd connects to an external deployment.
	br, err := broker.Start(ctx, broker.Options{URL: c.URLs(), Name: "dirsync-bench"}, zap.NewNop())
	if err != nil {
		return nil, err
	}
	defer br.Close()
	cluster := func(ctx context.Context, run string) (*store.Store, func(), error) {
		if err := br.JS.DeleteStream(ctx, store.StreamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, nil, fmt.Errorf("deleting stream %s: %w", store.StreamName, err)
		}
		st, err := store.Open(ctx, br.JS, 3)
		if err != nil {
			return nil, nil, err
		}
		// The new stream answers reads once its replicas have elected a
		// leader: wait for that outside the timed appends.
		wctx, cancel := context.WithTimeout(ctx, clusterWait)
		defer cancel()
		if err := testenv.Poll(wctx, 50*time.Millisecond, func() error {
			_, _, err := st.LastClaim(wctx, Connector)
			return err
		}); err != nil {
			return nil, nil, fmt.Errorf("the new stream %s does not answer: %w", store.StreamName, err)
		}
		return st, func() {}, nil
	}
	runs, err = fencedRounds(ctx, env, "cluster", evs, fencedRuns, cluster)
	if err != nil {
		return nil, err
	}
	rows = append(rows, fencedRow("fenced append, 3-node cluster", "events/s, store.AppendFenced after a claim (R3 stream, sync_interval: always)",
		what+", each round into a fresh R3 DIRSYNC stream (deleted and created again by store.Open) on three nats-server processes on loopback, each syncing every write (sync_interval: always, as deploy/cluster configures them), reached through one client connection as dirsyncd connects to an external deployment", n, runs))
	return rows, nil
}
