package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The failover scenario measures how long a connector goes without a
// writer when the replica holding it dies: two dirsyncd replicas share a
// three-node nats-server cluster (R3 streams) and one connector
// (Connector); after a first sync the holder is SIGKILLed, and the
// harness times, as an operator sees it through dirsync's CLI, (a) until
// the other replica shows itself as the connector's holder, and (b)
// until a sync asked of it right then has COMPLETED. A killed replica's
// lease expires after lease_ttl, which is the floor. Each lease TTL of
// Sizes.LeaseTTLs gets a cluster of its own and Sizes.Failovers kills,
// the killed replica restarted between them (the holder alternates).
// The replicas' configs and processes are the other scenarios' daemons
// (writeConfig, startDaemon), as replicas (daemonConfig).

// failoverReplica is one dirsyncd of the scenario.
type failoverReplica struct {
	name string
	dir  string // its plugins.hcl, data/ and the sim's secret (see writeConfig)
	cfg  daemonConfig
	d    *Daemon // the last run; nil before the first
}

// newFailoverReplica writes dir/<name>/plugins.hcl: the connector
// against sim, the cluster's URLs with R3 streams, and the replica's
// name and lease TTL (the replicas of daemon/e2e/cluster_test.go).
func newFailoverReplica(env *Env, dir string, sim *graphsim.Sim, name, urls string, ttl time.Duration) (*failoverReplica, error) {
	// info: the harness reads "connector taken over" from the log.
	r := &failoverReplica{name: name, dir: filepath.Join(dir, name),
		cfg: daemonConfig{LogLevel: "info", NATSURL: urls, Replica: name, LeaseTTL: ttl}}
	return r, writeConfig(env, r.dir, sim, r.cfg)
}

// start starts the replica and waits until its API answers ready.
func (r *failoverReplica) start(ctx context.Context, env *Env) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d, err := startDaemon(ctx, env, r.dir, r.cfg)
	if err != nil {
		return fmt.Errorf("replica %s: %w", r.name, err)
	}
	r.d = d
	return nil
}

// running reports whether the replica's process runs.
func (r *failoverReplica) running() bool { return r.d != nil && r.d.Running() }

// takenOver returns when r's log says it took the connector over (the
// runner's "connector taken over": its claim stored, the earlier
// holder's job ended, its lane running, requests for it answered) at an
// epoch above after; zero while it has not. The log is r's last run's: a
// survivor runs from before the kill to its takeover.
func (r *failoverReplica) takenOver(after uint64) time.Time {
	for _, line := range strings.Split(r.d.Log(), "\n") {
		if !strings.Contains(line, `"connector taken over"`) {
			continue
		}
		var l struct {
			TS        time.Time `json:"ts"`
			Connector string    `json:"connector"`
			Replica   string    `json:"replica"`
			Epoch     uint64    `json:"epoch"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Connector == Connector && l.Replica == r.name && l.Epoch > after {
			return l.TS
		}
	}
	return time.Time{}
}

// cli runs bin/dirsync --config <the replica's> args and returns its
// standard output; a non-zero exit is an error.
func (r *failoverReplica) cli(ctx context.Context, env *Env, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(env.Bin, "dirsync"), append([]string{"--config", configPath(r.dir)}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("replica %s: dirsync %v: %w\n%s%s", r.name, args, err, out.String(), errb.String())
	}
	return out.Bytes(), nil
}

// holder returns the connector's holder as `dirsync status -o json` on
// r shows it (nil while none holds it).
func (r *failoverReplica) holder(ctx context.Context, env *Env) (*api.Holder, error) {
	out, err := r.cli(ctx, env, "status", "-o", "json")
	if err != nil {
		return nil, err
	}
	var st api.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("replica %s: dirsync status -o json: %w\n%s", r.name, err, out)
	}
	for _, c := range st.Connectors {
		if c.Connector == Connector {
			return c.Holder, nil
		}
	}
	return nil, nil
}

// sync runs `dirsync sync <Connector> --wait -o json` on r and returns
// the job; it fails unless the job COMPLETED. Through the CLI, as the
// takeover is timed, rather than Daemon.Sync's API calls: an operator's
// sync after a failover.
func (r *failoverReplica) sync(ctx context.Context, env *Env) (api.Job, error) {
	var j api.Job
	out, err := r.cli(ctx, env, "sync", Connector, "--wait", "-o", "json")
	if err != nil {
		return j, fmt.Errorf("%w\nreplica %s log (end):\n%s", err, r.name, storeTail(r.d.Log(), 4000))
	}
	if err := json.Unmarshal(out, &j); err != nil {
		return j, fmt.Errorf("replica %s: dirsync sync -o json: %w\n%s", r.name, err, out)
	}
	if j.State != events.StateCompleted {
		return j, fmt.Errorf("replica %s: job %s ended %s: %s", r.name, j.ID, j.State, j.Reason)
	}
	return j, nil
}

// agreedHolder waits until every running replica sees the connector
// held by the same replica (and, when want is set, by that one) and
// returns it.
func agreedHolder(ctx context.Context, env *Env, rs []*failoverReplica, want string, within time.Duration) (string, api.Holder, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var name string
	var h api.Holder
	err := testenv.Poll(ctx, 250*time.Millisecond, func() error {
		name = ""
		for _, r := range rs {
			if !r.running() {
				continue
			}
			got, err := r.holder(ctx, env)
			if err != nil {
				return err
			}
			if got == nil {
				return fmt.Errorf("replica %s sees no holder of %s", r.name, Connector)
			}
			if name != "" && (got.Replica != name || got.Epoch != h.Epoch) {
				return fmt.Errorf("%s held by %s@%d or %s@%d, depending on the replica asked", Connector, name, h.Epoch, got.Replica, got.Epoch)
			}
			name, h = got.Replica, *got
		}
		if want != "" && name != want {
			return fmt.Errorf("%s held by %s, waiting for %s", Connector, name, want)
		}
		return nil
	})
	if err != nil {
		return "", h, fmt.Errorf("replicas do not agree on %s's holder within %s: %w", Connector, within, err)
	}
	return name, h, nil
}

// failover is one kill and what followed it.
type failover struct {
	// takeover is kill → the other replica shows itself as holder;
	// running is kill → its log says it took the connector over (its
	// lane runs; 0 if it does not say); completed is kill → the COMPLETED state of the sync
	// asked of it then, and sync that sync alone (request → COMPLETED).
	takeover, running, completed, sync time.Duration
	// expiry is when the lease expired after the kill: its last renewal
	// (as the holder showed it just before the kill) + the TTL − kill.
	expiry time.Duration
	// polls is how many status calls the wait for the takeover made.
	polls int
}

// failoverAt measures repeats failovers at lease TTL ttl on a cluster
// of its own.
func failoverAt(ctx context.Context, env *Env, sim *graphsim.Sim, ttl time.Duration, repeats int) ([]failover, time.Duration, error) {
	dir := filepath.Join(env.Dir, "failover-"+ttl.String())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	env.Logf("lease_ttl %s: starting a three-node nats-server cluster", ttl)
	c, err := startNATSCluster(ctx, env, filepath.Join(dir, "nats"))
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	var rs []*failoverReplica
	for _, name := range []string{"a", "b"} {
		r, err := newFailoverReplica(env, dir, sim, name, c.URLs(), ttl)
		if err != nil {
			return nil, 0, err
		}
		rs = append(rs, r)
	}
	defer func() {
		for _, r := range rs {
			if r.running() {
				storeStop(env, r.d)
			}
		}
	}()
	// One after the other: started at once on a new cluster, both
	// create the streams and buckets together and wait out JetStream's
	// answers for tens of seconds (setup, not what is measured).
	env.Logf("lease_ttl %s: starting replicas a and b", ttl)
	started := time.Now()
	for _, r := range rs {
		if err := r.start(ctx, env); err != nil {
			return nil, 0, err
		}
	}
	env.Logf("lease_ttl %s: replicas ready in %.1f s", ttl, time.Since(started).Seconds())
	holderName, _, err := agreedHolder(ctx, env, rs, "", 3*ttl+time.Minute)
	if err != nil {
		return nil, 0, err
	}
	byName := func(name string) *failoverReplica {
		for _, r := range rs {
			if r.name == name {
				return r
			}
		}
		return nil
	}
	holder := byName(holderName)
	if holder == nil {
		return nil, 0, fmt.Errorf("%s is held by %q, not a replica of this scenario", Connector, holderName)
	}
	env.Logf("lease_ttl %s: %s holds %s; first sync", ttl, holder.name, Connector)
	if _, err := holder.sync(ctx, env); err != nil {
		return nil, 0, err
	}

	var out []failover
	var statusCalls []time.Duration
	for rep := range repeats {
		survivor := rs[0]
		if survivor == holder {
			survivor = rs[1]
		}
		// The lease as its holder shows it, then the kill at once.
		before, err := holder.holder(ctx, env)
		if err != nil {
			return nil, 0, err
		}
		if before == nil || before.Replica != holder.name {
			return nil, 0, fmt.Errorf("%w: replica %s no longer shows itself as %s's holder: %+v", errStoreCheck, holder.name, Connector, before)
		}
		killed := time.Now()
		holder.d.Kill()
		var f failover
		f.expiry = before.Renewed.Add(ttl).Sub(killed)
		env.Logf("lease_ttl %s: SIGKILL of %s (epoch %d, renewed %.2f s before); waiting for %s to take %s over",
			ttl, holder.name, before.Epoch, killed.Sub(before.Renewed).Seconds(), survivor.name, Connector)

		// Status asked back to back: each call is the resolution.
		wctx, cancel := context.WithTimeout(ctx, ttl+2*time.Minute)
		err = testenv.Poll(wctx, 10*time.Millisecond, func() error {
			t0 := time.Now()
			h, err := survivor.holder(wctx, env)
			statusCalls = append(statusCalls, time.Since(t0))
			f.polls++
			if err != nil {
				return err
			}
			if h == nil || h.Replica != survivor.name || h.Epoch <= before.Epoch {
				return fmt.Errorf("%s is not held by %s at an epoch above %d yet: %+v", Connector, survivor.name, before.Epoch, h)
			}
			f.takeover = time.Since(killed)
			return nil
		})
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("lease_ttl %s: no takeover: %w\nreplica %s log (end):\n%s", ttl, err, survivor.name, storeTail(survivor.d.Log(), 4000))
		}
		requested := time.Now()
		j, err := survivor.sync(ctx, env)
		if err != nil {
			// A dirsyncd whose jobs.Runner.Request passes a request on while
			// holding its request lock hangs here for the forward's 30 s and
			// fails: the request, asked while the replica is still taking
			// the connector over, reaches the replica itself.
			return nil, 0, fmt.Errorf("the sync asked of the new holder right after the takeover: %w", err)
		}
		done := StateTime(j, events.StateCompleted)
		if done.IsZero() {
			done = time.Now()
		}
		f.completed, f.sync = done.Sub(killed), done.Sub(requested)
		// Status names the new holder once its lease is taken, before its
		// runner has taken the connector over (claim stored, the earlier
		// holder's job ended, read models reconciled): the sync asked in
		// between waits for that. When it was, the log says.
		if at := survivor.takenOver(before.Epoch); !at.IsZero() {
			f.running = at.Sub(killed)
		}
		env.Logf("   run %d of %d: %s holds %s %.2f s after the kill (lease expiry at %.2f s; %d status calls), took it over at %.2f s; the next sync COMPLETED at %.2f s (the sync alone %.2f s)",
			rep+1, repeats, survivor.name, Connector, f.takeover.Seconds(), f.expiry.Seconds(), f.polls, f.running.Seconds(), f.completed.Seconds(), f.sync.Seconds())
		out = append(out, f)
		if rep == repeats-1 {
			break
		}
		// The killed replica back, so that the next kill has a survivor.
		if err := holder.start(ctx, env); err != nil {
			return nil, 0, err
		}
		if _, _, err := agreedHolder(ctx, env, rs, survivor.name, 2*ttl+time.Minute); err != nil {
			return nil, 0, err
		}
		holder = survivor
	}
	return out, medianDuration(statusCalls), nil
}

// failoverStats is the median, min and max of ds.
func failoverStats(ds []time.Duration) (med, lo, hi time.Duration) {
	return medianDuration(ds), slices.Min(ds), slices.Max(ds)
}

// runFailover is the failover scenario.
func runFailover(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	small := idleSizes(s) // the idle scenario's tenant: 2,000 users and 100 groups at most
	env.Logf("generating a tenant of %d users and %d Unified groups", small.Users, small.Groups)
	sim, err := NewSim(small)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.Close() }()
	var rows []Row
	for _, ttl := range s.LeaseTTLs {
		runs, statusCall, err := failoverAt(ctx, env, sim, ttl, max(1, s.Failovers))
		if err != nil {
			return nil, err
		}
		var takeover, running, completed, syncs, expiry, afterExpiry []time.Duration
		for _, f := range runs {
			takeover, running, completed = append(takeover, f.takeover), append(running, f.running), append(completed, f.completed)
			syncs, expiry, afterExpiry = append(syncs, f.sync), append(expiry, f.expiry), append(afterExpiry, f.takeover-f.expiry)
		}
		tMed, tMin, tMax := failoverStats(takeover)
		cMed, cMin, cMax := failoverStats(completed)
		scenario := fmt.Sprintf("failover, lease_ttl %s", ttl)
		setup := fmt.Sprintf("two dirsyncd replicas (a, b) on a three-node nats-server cluster on loopback (R3 streams, sync_interval: always), sharing connector %s on graphsim (%d users, %d Unified groups); after a first sync COMPLETED, the holder is SIGKILLed, %d times (the killed replica restarted between kills, so the holder alternates)",
			Connector, small.Users, small.Groups, len(runs))
		rows = append(rows,
			Row{
				Scenario: scenario, Metric: "SIGKILL of the holder → the other replica shows itself as holder",
				Value: tMed.Seconds(), Floor: ttl.Seconds(), Unit: "s",
				Target: "none (reported; floor lease_ttl)", Met: true,
				Note: fmt.Sprintf("median of %d (min %.2f s, max %.2f s; runs %s). %s; timed until `dirsync --config <the other's> status -o json` (asked back to back, %.0f ms a call) names the other replica as holder at a newer epoch. "+
					"Floor: lease_ttl, after which a dead holder's lease expires. The lease expired %s after the kills (the holder's last renewal, as its status showed it just before the kill, + lease_ttl): the takeover came %s after that expiry. "+
					"docs/durability.md says up to lease_ttl: the slowest run took %+.2f s beyond it",
					len(runs), tMin.Seconds(), tMax.Seconds(), seconds(takeover), setup, float64(statusCall.Microseconds())/1000, seconds(expiry), seconds(afterExpiry), (tMax - ttl).Seconds()),
			},
			Row{
				Scenario: scenario, Metric: "SIGKILL of the holder → next sync COMPLETED on the new holder",
				Value: cMed.Seconds(), Floor: ttl.Seconds(), Unit: "s",
				Target: "none (reported; floor lease_ttl)", Met: true,
				Note: fmt.Sprintf("median of %d (min %.2f s, max %.2f s; runs %s): from the kill to the COMPLETED state (job history) of the sync asked with `dirsync --config <the new holder's> sync %s --wait -o json` as soon as status showed the takeover "+
					"(its runner took the connector over, claim stored and read models reconciled, at %s after the kill by its log's \"connector taken over\"; the sync waits for that); "+
					"that sync alone took %s (without --full; the tenant unchanged). Floor: lease_ttl (docs/durability.md: a failover takes about lease_ttl plus the next sync)",
					len(runs), cMin.Seconds(), cMax.Seconds(), seconds(completed), Connector, seconds(running), seconds(syncs)),
			})
	}
	return rows, nil
}
