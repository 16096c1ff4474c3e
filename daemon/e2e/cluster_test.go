package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/dirsyncd"
)

// Replicas on a three-node JetStream cluster (nats-server processes on
// loopback, each with its own store), sharing the connectors of one
// plugins.hcl: one writer per connector, fenced in the log, with failover.

// clusterTTL is the replicas' lease TTL: short, so that a failover is
// seen in seconds.
const clusterTTL = 6 * time.Second

// clusterTenant is the tenant of the failover cases: enough users for a
// SAVING of several batches, more under make test-faults
// (DIRSYNC_FAULTS_FULL=1). The cases run side by side (t.Parallel):
// each spends most of its time waiting for leases.
func clusterTenant() fixtureOptions {
	if os.Getenv("DIRSYNC_FAULTS_FULL") != "" {
		return fixtureOptions{users: 3000, groups: 30}
	}
	return fixtureOptions{users: 800, groups: 16}
}

// replica is one dirsyncd of a replicated deployment.
type replica struct {
	name, config string
	f            *fixture
	proc         *dirsyncd.Process
	log          *testenv.LockedBuffer
}

// replicated is a fixture's tenant and connectors served by replicas on
// a three-node cluster.
type replicated struct {
	f        *fixture
	cluster  *testenv.Cluster
	replicas []*replica
	js       jetstream.JetStream
	nc       *nats.Conn
}

// newReplicated starts a three-node cluster and writes a plugins.hcl per
// replica: the fixture's connectors, the cluster's URLs with R3 streams,
// and each replica's own data directory and name.
func newReplicated(t *testing.T, o fixtureOptions, names ...string) *replicated {
	t.Helper()
	c := testenv.StartCluster(t, 3)
	f := newFixtureWith(t, fmt.Sprintf("nats {\n  url      = %q\n  replicas = 3\n}", c.URLs()), o)
	base, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	rs := &replicated{f: f, cluster: c}
	for _, name := range names {
		cfg := strings.Replace(string(base), `data_dir = "./data"`, fmt.Sprintf("data_dir  = \"./data-%s\"\n  replica   = %q\n  lease_ttl = %q", name, name, clusterTTL), 1)
		path := filepath.Join(f.dir, "plugins-"+name+".hcl")
		write(t, path, cfg, 0o644)
		rs.replicas = append(rs.replicas, &replica{name: name, config: path, f: f, log: &testenv.LockedBuffer{}})
	}
	t.Cleanup(func() {
		for _, r := range rs.replicas {
			r.stop()
			if t.Failed() {
				t.Logf("replica %s log:\n%s", r.name, r.log.String())
			}
		}
	})
	rs.nc, rs.js = c.Connect(t)
	return rs
}

// start starts the replicas side by side and waits until each answers.
func (rs *replicated) start(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(rs.replicas))
	for i, r := range rs.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.start()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (r *replica) start() error {
	d, err := dirsyncd.Start(r.f.bin, r.config, r.log)
	if err != nil {
		return err
	}
	r.proc = d
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = d.WaitReady(ctx, 100*time.Millisecond, func(context.Context) error {
		if _, errOut, code := r.cli("status"); code != 0 {
			return fmt.Errorf("replica %s: dirsync status: exit %d: %s", r.name, code, errOut)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replica %s: %w\n%s", r.name, err, r.log.String())
	}
	return nil
}

func (r *replica) stop() {
	if r.proc != nil {
		_ = r.proc.Stop(30 * time.Second)
		r.proc = nil
	}
}

func (r *replica) cli(args ...string) (string, string, int) {
	return runCLI(r.f.bin, r.config, args...)
}

func (r *replica) status(t *testing.T) api.Status {
	t.Helper()
	out, errOut, code := r.cli("status", "-o", "json")
	if code != 0 {
		t.Fatalf("replica %s: dirsync status: exit %d: %s%s", r.name, code, out, errOut)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("replica %s: dirsync status -o json: %v\n%s", r.name, err, out)
	}
	return st
}

// holders returns who holds each connector as r sees it (by lease).
func (r *replica) holders(t *testing.T) map[string]api.Holder {
	t.Helper()
	out := map[string]api.Holder{}
	for _, c := range r.status(t).Connectors {
		if c.Holder != nil {
			out[c.Connector] = *c.Holder
		}
	}
	return out
}

// byName returns the replica named name.
func (rs *replicated) byName(name string) *replica {
	for _, r := range rs.replicas {
		if r.name == name {
			return r
		}
	}
	return nil
}

// agreedHolders waits until every replica that runs sees every configured
// connector held, by the same replica at the same epoch (and, if cond is
// given, until cond accepts that view), and returns that view.
func (rs *replicated) agreedHolders(t *testing.T, connectors []string, within time.Duration, cond ...func(map[string]api.Holder) error) map[string]api.Holder {
	t.Helper()
	var agreed map[string]api.Holder
	testenv.Eventually(t, within, func() error {
		agreed = nil
		for _, r := range rs.replicas {
			if r.proc == nil {
				continue
			}
			h := r.holders(t)
			for _, c := range connectors {
				if _, ok := h[c]; !ok {
					return fmt.Errorf("replica %s sees no holder of %s", r.name, c)
				}
			}
			if agreed == nil {
				agreed = h
				continue
			}
			for _, c := range connectors {
				if a, b := agreed[c], h[c]; a.Replica != b.Replica || a.Epoch != b.Epoch {
					return fmt.Errorf("%s: held by %s@%d or %s@%d, depending on the replica asked", c, a.Replica, a.Epoch, b.Replica, b.Epoch)
				}
			}
		}
		for _, c := range cond {
			if err := c(agreed); err != nil {
				return err
			}
		}
		return nil
	})
	return agreed
}

// spread accepts holders that are not all one replica.
func spread(h map[string]api.Holder) error {
	by := map[string]bool{}
	for _, x := range h {
		by[x.Replica] = true
	}
	if len(by) < 2 {
		return fmt.Errorf("every connector is held by the same replica: %v", h)
	}
	return nil
}

// startSpread starts the replicas and waits until they agree that each
// holds one of demo and wrong; it returns that view, the replica holding
// demo and the other one.
func (rs *replicated) startSpread(t *testing.T) (held map[string]api.Holder, holder, other *replica) {
	t.Helper()
	rs.start(t)
	held = rs.agreedHolders(t, []string{"demo", "wrong"}, 3*clusterTTL, spread)
	holder = rs.byName(held["demo"].Replica)
	other = rs.replicas[0]
	if other == holder {
		other = rs.replicas[1]
	}
	return held, holder, other
}

// awaitTakeover waits, within the lease TTL plus the 15 s, until r
// holds demo at an epoch newer than before, and returns that lease.
func (rs *replicated) awaitTakeover(t *testing.T, r *replica, before uint64) api.Holder {
	t.Helper()
	var took api.Holder
	testenv.Eventually(t, clusterTTL+15*time.Second, func() error {
		took = r.holders(t)["demo"]
		if took.Replica != r.name || took.Epoch <= before {
			return fmt.Errorf("demo held by %s at epoch %d", took.Replica, took.Epoch)
		}
		return nil
	})
	return took
}

// syncUntil asks r for a sync of demo and sends r's process sig once
// the job reaches point, and returns once it has.
func (rs *replicated) syncUntil(t *testing.T, r *replica, point killPoint, sig syscall.Signal) *watcher {
	t.Helper()
	w := &watcher{nc: rs.nc, point: point, pid: r.proc.Cmd.Process.Pid, signal: sig, done: make(chan struct{})}
	sub, err := rs.nc.Subscribe(events.SubjectRoot+".>", w.onEvent)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := rs.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := r.cli("sync", "demo"); code != 0 {
		t.Fatalf("dirsync sync demo: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case <-w.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the job never reached the point (%s)", point)
	}
	return w
}

// syncOn runs a sync of demo through replica r and waits for its end.
func syncOn(t *testing.T, r *replica) jobJSON {
	t.Helper()
	out, errOut, code := r.cli("sync", "demo", "--wait", "-o", "json")
	if code != 0 {
		t.Fatalf("dirsync sync demo --wait on replica %s: exit %d\n%s%s", r.name, code, out, errOut)
	}
	var j jobJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("dirsync sync demo --wait -o json on replica %s: %v\n%s", r.name, err, out)
	}
	return j
}

// assertFencedLog checks what fencing promises of the whole stream:
// each connector's claims have rising epochs, and every other event of a
// connector carries the epoch of the claim in force where it is stored
// (none of an older epoch lands after a newer claim). It returns the
// claims by connector.
func assertFencedLog(t *testing.T, js jetstream.JetStream) map[string][]events.Claim {
	t.Helper()
	claims := map[string][]events.Claim{}
	current := map[string]uint64{}
	var problems []string
	forEachStored(t, js, func(subject string, data []byte) {
		e, err := events.Decode(data)
		if err != nil {
			return // assertEventLog reports it
		}
		c := strings.Split(subject, ".")[2]
		if e.Type == events.TypeConnectorClaimed {
			var cl events.Claim
			if err := e.DecodeData(&cl); err != nil || cl.Epoch <= current[c] {
				problems = append(problems, fmt.Sprintf("claim of %s at epoch %d after epoch %d (%v)", c, cl.Epoch, current[c], err))
			}
			current[c] = cl.Epoch
			claims[c] = append(claims[c], cl)
			return
		}
		if e.Epoch != current[c] {
			problems = append(problems, fmt.Sprintf("%s (%s, job %s) has epoch %d; %s's claim in force is of epoch %d", subject, e.Type, e.JobID, e.Epoch, c, current[c]))
		}
	})
	for _, p := range problems[:min(len(problems), 20)] {
		t.Error(p)
	}
	return claims
}

// convergedCluster stops every replica (a clean stop checkpoints) and
// checks the stream, the read models and the recipients as the fault
// suite does, plus the fencing of assertFencedLog. It returns the events
// checked.
func (rs *replicated) convergedCluster(t *testing.T) int {
	t.Helper()
	for _, r := range rs.replicas {
		r.stop()
	}
	// The cluster, busy with the replicas' stops, may not answer at once:
	// the checks below read the stream and the buckets through consumers.
	testenv.Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, name := range []string{"DIRSYNC", "KV_dirsync_recipients", "KV_dirsync_sync", "KV_dirsync_jobs", "KV_dirsync_groups"} {
			st, err := rs.js.Stream(ctx, name)
			if err != nil {
				return fmt.Errorf("stream %s: %w", name, err)
			}
			cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				return fmt.Errorf("a consumer on %s: %w", name, err)
			}
			if _, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}
		}
		return nil
	})
	convergedInWith(t, rs.js, expectedRecipients(rs.f.sim), 3)
	n := assertEventLog(t, rs.js)
	assertFencedLog(t, rs.js)
	return n
}

// Two replicas started together share the connectors: each connector has
// exactly one holder, every replica agrees which, a sync asked of the
// replica that does not hold the connector runs once on the one that
// does, and the recipients converge.
func TestReplicasShareConnectors(t *testing.T) {
	t.Parallel()
	rs := newReplicated(t, fixtureOptions{}, "a", "b")
	// Two connectors, two replicas: one each, once they have seen one
	// another (a replica that started first takes both, then hands one
	// over while it is idle).
	held, _, other := rs.startSpread(t)
	start := time.Now()
	j := syncOn(t, other)
	if j.State != events.StateCompleted {
		t.Fatalf("sync asked of %s (demo is %s's) ended %s: %s", other.name, held["demo"].Replica, j.State, j.Reason)
	}
	t.Logf("sync forwarded from %s to %s completed in %s", other.name, held["demo"].Replica, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(rs.byName(held["demo"].Replica).log.String(), j.ID) {
		t.Errorf("job %s is not in the log of %s, which holds demo", j.ID, held["demo"].Replica)
	}
	if strings.Contains(other.log.String(), `"job state"`) && strings.Contains(other.log.String(), j.ID) {
		t.Errorf("replica %s, which does not hold demo, ran job %s too", other.name, j.ID)
	}
	n := rs.convergedCluster(t)
	report(t, faultRow{Case: "replicas share connectors", Seed: "-", Fault: "none: two replicas, a sync forwarded to the holder",
		AtFault: "-", Recovery: 0, Events: n})
}

// The replica holding demo is SIGKILLed in the middle of SAVING: the
// other takes demo over within the lease TTL and 15 s, fails the killed
// job as "lease lost", and its next sync leaves the recipients equal to
// the directory, with no duplicate and no stray.
func TestReplicaKilledMidSaving(t *testing.T) {
	t.Parallel()
	rs := newReplicated(t, clusterTenant(), "a", "b")
	held, holder, survivor := rs.startSpread(t)
	// SIGKILL once the job's SAVING has stored a few hundred events.
	w := rs.syncUntil(t, holder, killPoint{state: events.StateSaving, after: 700}, syscall.SIGKILL)
	killed := time.Now()
	<-holder.proc.Done()
	holder.proc = nil
	w.mu.Lock()
	at, jobID := w.at, w.jobID
	w.mu.Unlock()

	rs.awaitTakeover(t, survivor, held["demo"].Epoch)
	took := time.Since(killed)
	var killedJob jobJSON
	testenv.Eventually(t, 30*time.Second, func() error {
		out, _, code := survivor.cli("jobs", "show", jobID, "-o", "json")
		if code != 0 {
			return fmt.Errorf("dirsync jobs show %s: exit %d", jobID, code)
		}
		var ch struct {
			Job jobJSON `json:"job"`
		}
		if err := json.Unmarshal([]byte(out), &ch); err != nil {
			return err
		}
		killedJob = ch.Job
		if killedJob.State != events.StateFailed {
			return fmt.Errorf("killed job is %s", killedJob.State)
		}
		return nil
	})
	if !strings.HasPrefix(killedJob.Reason, "lease lost") || !strings.Contains(killedJob.Reason, holder.name) {
		t.Errorf("killed job's reason %q; want it to say the lease of %s was lost", killedJob.Reason, holder.name)
	}
	recovered := time.Now()
	if j := syncOn(t, survivor); j.State != events.StateCompleted {
		t.Fatalf("the next sync on %s ended %s: %s", survivor.name, j.State, j.Reason)
	}
	t.Logf("killed at %s; %s took demo over %s later; the next sync completed %s after that", at, survivor.name, took.Round(time.Millisecond),
		time.Since(recovered).Round(time.Millisecond))
	n := rs.convergedCluster(t)
	report(t, faultRow{Case: "replica killed", Seed: "-", Fault: "SIGKILL of the holder", AtFault: at,
		Recovery: time.Since(killed), Events: n})
}

// The replica holding demo is paused (SIGSTOP) past its lease while
// another takes demo over, then resumed: its next append is refused, it
// gives demo up, and the stream holds no event of its epoch after the
// new claim.
func TestReplicaPausedIsFenced(t *testing.T) {
	t.Parallel()
	rs := newReplicated(t, clusterTenant(), "a", "b")
	held, holder, survivor := rs.startSpread(t)
	// Pause it in the middle of SAVING, so that it has events to go on
	// appending when it wakes.
	w := rs.syncUntil(t, holder, killPoint{state: events.StateSaving, after: 300}, syscall.SIGSTOP)
	paused := time.Now()
	took := rs.awaitTakeover(t, survivor, held["demo"].Epoch)
	// The new holder syncs while the old one sleeps.
	if j := syncOn(t, survivor); j.State != events.StateCompleted {
		t.Fatalf("sync on %s ended %s: %s", survivor.name, j.State, j.Reason)
	}
	if err := holder.proc.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("paused %s for %s", holder.name, time.Since(paused).Round(time.Millisecond))
	// Awake, it finds its lease gone or its appends refused, and lets
	// demo go: it does not take it back, and keeps running.
	testenv.Eventually(t, 2*clusterTTL, func() error {
		// Its job, ended by the lost lease, tries to record its end:
		// nats-server refuses that append (a newer claim is stored).
		l := holder.log.String()
		if !strings.Contains(l, "appends refused: another replica claimed the connector") {
			return fmt.Errorf("%s has not had an append refused", holder.name)
		}
		if !strings.Contains(l, "connector given up") {
			return fmt.Errorf("%s has not given demo up", holder.name)
		}
		return nil
	})
	if exited, err := holder.proc.Exited(); exited {
		t.Fatalf("%s exited after it was resumed: %v", holder.name, err)
	}
	// It may hold demo again later (the two share the connectors), but
	// only through a newer lease and claim than the one that fenced it.
	// Read once the replicas agree: a handover between them leaves demo
	// without a holder for a moment.
	if h := rs.agreedHolders(t, []string{"demo"}, 60*time.Second)["demo"]; h.Replica != survivor.name && h.Epoch <= took.Epoch {
		t.Errorf("after waking, %s sees demo held by %s at epoch %d; want %s's, or a newer epoch than %d", holder.name, h.Replica, h.Epoch, survivor.name, took.Epoch)
	}
	// And the recipients converge on the next sync.
	if j := syncOn(t, survivor); j.State != events.StateCompleted {
		t.Fatalf("sync on %s ended %s: %s", survivor.name, j.State, j.Reason)
	}
	n := rs.convergedCluster(t)
	if claims := assertFencedLog(t, rs.js); len(claims["demo"]) < 2 {
		t.Errorf("demo's claims %v; want the paused holder's and the new one's", claims["demo"])
	}
	report(t, faultRow{Case: "replica paused past its lease", Seed: "-", Fault: "SIGSTOP of the holder, SIGCONT after the takeover",
		AtFault: w.at, Recovery: time.Since(paused), Events: n})
}

// A NATS node is killed during a job, and separately the stream's leader
// steps down during a job: each job completes or fails with a reason,
// the replicas keep running, and the next sync converges.
func TestReplicasThroughNodeLoss(t *testing.T) {
	t.Parallel()
	rs := newReplicated(t, clusterTenant(), "a", "b")
	_, holder, _ := rs.startSpread(t)
	for i, fault := range []string{"kill the stream leader's node", "stream leader steps down"} {
		if i > 0 {
			// The first fault may have moved the connector (a job FAILED
			// with "lease lost" is an accepted outcome): the next sync goes
			// to the holder every replica now agrees on, not to the one
			// deposed, whose request its stale claim would fence.
			holder = rs.byName(rs.agreedHolders(t, []string{"demo"}, 60*time.Second)["demo"].Replica)
			// Changes enough for a SAVING of several batches.
			if _, err := rs.f.sim.Churn(len(rs.f.sim.Tenant().Users)/2, int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		// The fault is made here, in the test's goroutine, when the
		// watcher sees the job's SAVING under way.
		w := &watcher{nc: rs.nc, point: killPoint{state: events.StateSaving, after: 300}, done: make(chan struct{})}
		w.action = func() {}
		sub, err := rs.nc.Subscribe(events.SubjectRoot+".>", w.onEvent)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			out, errOut string
			code        int
		}
		res := make(chan result, 1)
		go func() {
			out, errOut, code := holder.cli("sync", "demo", "--wait", "-o", "json")
			res <- result{out, errOut, code}
		}()
		var r result
		select {
		case <-w.done:
			if fault == "kill the stream leader's node" {
				n := rs.cluster.StreamLeader(t, "DIRSYNC")
				n.Kill()
				n.Start()
			} else {
				rs.cluster.StepDownStream(t, "DIRSYNC")
			}
			r = <-res
		case r = <-res:
			t.Errorf("%s: the job ended before its SAVING reached the fault", fault)
		}
		_ = sub.Unsubscribe()
		var j jobJSON
		if r.code != 0 && r.code != 1 {
			t.Fatalf("%s: dirsync sync: exit %d\n%s%s", fault, r.code, r.out, r.errOut)
		}
		if err := json.Unmarshal([]byte(r.out), &j); err != nil {
			t.Fatalf("%s: %v\n%s%s", fault, err, r.out, r.errOut)
		}
		if j.State != events.StateCompleted && (j.State != events.StateFailed || j.Reason == "") {
			t.Errorf("%s: the job ended %s (%q); want COMPLETED, or FAILED with a reason", fault, j.State, j.Reason)
		}
		t.Logf("%s at %s: the job ended %s %s", fault, w.at, j.State, j.Reason)
		rs.cluster.WaitJetStream(t)
		for _, r := range rs.replicas {
			if exited, err := r.proc.Exited(); exited {
				t.Fatalf("%s: replica %s exited: %v", fault, r.name, err)
			}
		}
		if j := syncOn(t, rs.byName(rs.agreedHolders(t, []string{"demo"}, 60*time.Second)["demo"].Replica)); j.State != events.StateCompleted {
			t.Fatalf("%s: the next sync ended %s: %s", fault, j.State, j.Reason)
		}
	}
	n := rs.convergedCluster(t)
	report(t, faultRow{Case: "NATS node lost", Seed: "-", Fault: "stream leader's node killed; leader stepped down", AtFault: "SAVING",
		Recovery: 0, Events: n})
}
