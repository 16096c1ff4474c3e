package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// The fault-injection suite (issue 7). Every case runs real syncs (the
// real dirsyncd, the azuread plugin subprocess, graphsim over HTTPS, the
// real nats-server), breaks them, and ends with the same check
// (assertConverged + assertEventLog): after recovery and one more
// completed sync, the recipients equal the directory under the policy,
// with no duplicate and no stray, the read models equal a rebuild from the
// stream, and no event is lost or doubled.
//
// Its size comes from the environment so that `make test` runs it at a
// size that fits CI and `make test-faults` runs it in full:
//
//	DIRSYNC_FAULTS_POINTS  SIGKILL points (default 8; make test-faults: 28)
//	DIRSYNC_FAULTS_SEED    seed of the points (default 20261124)
//	DIRSYNC_FAULTS_REPORT  file the report rows are appended to (markdown)

// faultPoints is the number of seeded SIGKILL points.
func faultPoints(t *testing.T) int {
	return envInt(t, "DIRSYNC_FAULTS_POINTS", 8)
}

// faultSeed seeds the choice of the SIGKILL points.
func faultSeed(t *testing.T) uint64 {
	return uint64(envInt(t, "DIRSYNC_FAULTS_SEED", 20261124))
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// faultRow is one line of the suite's report.
type faultRow struct {
	Case     string
	Seed     string
	Fault    string
	AtFault  string // what the system was doing when the fault hit
	Recovery time.Duration
	Events   int // stored events checked by assertEventLog
}

var reportMu sync.Mutex

// report logs a row and appends it to $DIRSYNC_FAULTS_REPORT.
func report(t *testing.T, r faultRow) {
	t.Helper()
	line := fmt.Sprintf("| %s | %s | %s | %s | %.2f s | %d |", r.Case, r.Seed, r.Fault, r.AtFault, r.Recovery.Seconds(), r.Events)
	t.Log(line)
	path := os.Getenv("DIRSYNC_FAULTS_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	fd, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer fd.Close()
	fmt.Fprintln(fd, line)
}

// killPoint says when to SIGKILL the daemon: once the job has reached
// state and then `after` more of its events were published, or delay has
// passed, whichever the state uses.
type killPoint struct {
	state string
	after int
	delay time.Duration
}

func (p killPoint) String() string {
	switch {
	case p.after > 0:
		return fmt.Sprintf("SIGKILL in %s after %d events", p.state, p.after)
	case p.delay > 0:
		return fmt.Sprintf("SIGKILL %s into %s", p.delay.Round(time.Millisecond), p.state)
	}
	return "SIGKILL on " + p.state
}

// killStates are the states the points cover, in turn, so that any 7
// consecutive points cover every state of a job; SAVING is there twice
// because it is where a kill can leave the most behind.
var killStates = []string{events.StatePending, events.StateStarted, events.StateRetrieving,
	events.StateProcessing, events.StateSaving, events.StateCompleted, events.StateSaving}

// pointFor draws point i of a seeded run.
func pointFor(seed uint64, i int, planned int) killPoint {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	p := killPoint{state: killStates[i%len(killStates)]}
	switch p.state {
	case events.StateRetrieving:
		p.delay = time.Duration(rng.IntN(400)) * time.Millisecond
	case events.StateSaving:
		p.after = 1 + rng.IntN(planned)
	case events.StateCompleted:
		p.delay = time.Duration(rng.IntN(30)) * time.Millisecond
	default:
		p.delay = time.Duration(rng.IntN(3)) * time.Millisecond
	}
	return p
}

// watcher follows a daemon's events on its embedded NATS server and
// SIGKILLs it at a kill point.
type watcher struct {
	nc *nats.Conn

	mu     sync.Mutex
	point  killPoint
	pid    int
	jobID  string
	state  string // the job's last state seen
	events int    // events of the job seen since it reached point.state
	fired  bool
	at     string // what was seen when the kill was sent
	done   chan struct{}
	// signal is what pid gets (SIGKILL when 0); action, when set, runs
	// instead of a signal.
	signal syscall.Signal
	action func()
}

// watch connects to the embedded server of f with the daemon's own
// credential and arms point against the process pid.
func watch(t *testing.T, f *fixture, url string, point killPoint) *watcher {
	t.Helper()
	nc, _ := connectJS(t, url, f.daemonCredential())
	w := &watcher{nc: nc, point: point, pid: f.daemon.Cmd.Process.Pid, done: make(chan struct{})}
	if _, err := nc.Subscribe(events.SubjectRoot+".>", w.onEvent); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *watcher) onEvent(m *nats.Msg) {
	e, err := events.Decode(m.Data)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return
	}
	if st, ok := stateOf(e); ok {
		if w.jobID == "" {
			w.jobID = st.JobID
		}
		if st.JobID != w.jobID {
			return
		}
		w.state = st.State
		if w.point.after > 0 && events.Final(st.State) {
			// The SAVING was shorter than the point: kill at its end.
			w.fire(0)
			return
		}
		if st.State == w.point.state {
			w.events = 0
			if w.point.after == 0 {
				w.fire(w.point.delay)
			}
		}
		return
	}
	if e.JobID != w.jobID || w.state != w.point.state || w.point.after == 0 {
		return
	}
	w.events++
	if w.events >= w.point.after {
		w.fire(0)
	}
}

// fire sends SIGKILL (or signal, or runs action) after d; w.mu is held.
func (w *watcher) fire(d time.Duration) {
	w.fired = true
	hit := func() {
		switch {
		case w.action != nil:
			w.action()
		case w.signal != 0:
			_ = syscall.Kill(w.pid, w.signal)
		default:
			_ = syscall.Kill(w.pid, syscall.SIGKILL)
		}
		close(w.done)
	}
	if d == 0 {
		w.at = fmt.Sprintf("%s, %d events in", w.state, w.events)
		hit()
		return
	}
	time.AfterFunc(d, func() {
		w.mu.Lock()
		w.at = fmt.Sprintf("%s, %d events in", w.state, w.events)
		w.mu.Unlock()
		hit()
	})
}

func stateOf(e events.Event) (events.SyncState, bool) {
	var st events.SyncState
	if e.Type != events.TypeSyncState || e.DecodeData(&st) != nil {
		return events.SyncState{}, false
	}
	return st, true
}

// TestFaultSIGKILL kills the daemon with SIGKILL at seeded points across
// every state of a job (its embedded server and JetStream store die with
// it), restarts it on the same data directory, and checks that the next
// sync converges.
func TestFaultSIGKILL(t *testing.T) {
	points, seed := faultPoints(t), faultSeed(t)
	if points == 0 {
		t.Skip("DIRSYNC_FAULTS_POINTS=0")
	}
	// A tenant whose first sync takes long enough in each state to be
	// caught there: about 3,700 events to save, a few hundred ms to read.
	// Every other point kills an incremental sync instead, after a first
	// one completed and the tenant changed (100 changes: about a hundred
	// events to save), so that a kill also meets a stored cursor.
	const users, groups, changes = 2000, 60, 100
	for i := range points {
		delta := i%2 == 1
		planned := 3000
		if delta {
			planned = 60
		}
		point := pointFor(seed, i, planned)
		t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
			t.Parallel()
			listen := testenv.FreeAddr(t)
			f := newFixtureWith(t, fmt.Sprintf("nats { listen = %q }", listen), fixtureOptions{users: users, groups: groups})
			f.sim.SetFaults(graphsim.Faults{Latency: 20 * time.Millisecond})
			f.start()
			kind := "first (full) sync"
			if delta {
				var first jobJSON
				f.cliJSON(&first, "sync", "demo", "--wait")
				if first.State != events.StateCompleted {
					t.Fatalf("first sync: %s %s", first.State, first.Reason)
				}
				if _, err := f.sim.Churn(changes, int64(seed)+int64(i)); err != nil {
					t.Fatal(err)
				}
				kind = fmt.Sprintf("incremental sync after %d changes", changes)
			}
			w := watch(t, f, "nats://"+listen, point)
			// An early kill (PENDING, STARTED) may cut the request's
			// answer off: that error is expected once the kill was sent.
			_, reqErr := f.api().Sync(context.Background(), "demo", api.SyncRequest{})
			select {
			case <-w.done:
			case <-time.After(2 * time.Minute):
				t.Fatalf("%s: the job never got there (last state %s; request: %v)", point, w.state, reqErr)
			}
			if reqErr != nil {
				t.Logf("the sync request's answer was cut off by the kill: %v", reqErr)
			}
			w.nc.Close()
			<-f.daemon.Done()
			f.daemon = nil
			w.mu.Lock()
			at, jobID := w.at, w.jobID
			w.mu.Unlock()
			killedCheckpoint(t, f)

			f.sim.SetFaults(graphsim.Faults{})
			began := time.Now()
			f.start()
			old, err := f.api().Job(context.Background(), jobID)
			switch {
			case err != nil && point.state == events.StatePending:
				// Killed before the request was stored: the job never was.
			case err != nil:
				t.Fatalf("job %s after restart: %v", jobID, err)
			default:
				old = f.waitJob(jobID, 30*time.Second, final)
				if old.State != events.StateCompleted && !(old.State == events.StateFailed && strings.Contains(old.Reason, "interrupted")) {
					t.Fatalf("killed job after restart: %s %q, want COMPLETED or FAILED interrupted", old.State, old.Reason)
				}
			}
			var next jobJSON
			f.cliJSON(&next, "sync", "demo", "--wait")
			if next.State != events.StateCompleted {
				t.Fatalf("sync after restart: %s %s", next.State, next.Reason)
			}
			recovery := time.Since(began)
			n := assertConvergedLog(t, f)
			report(t, faultRow{Case: "sigkill/" + t.Name()[len(t.Name())-2:], Seed: fmt.Sprintf("%d/%d", seed, i),
				Fault: point.String() + ", " + kind, AtFault: at, Recovery: recovery, Events: n})
		})
	}
}

// killedCheckpoint checks, on a copy of a killed daemon's data directory
// (the restart must meet the store as the kill left it), that the
// read-model checkpoint the daemon left plus the events after it equal a
// rebuild: what the restart will load.
func killedCheckpoint(t *testing.T, f *fixture) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "jetstream"), os.DirFS(filepath.Join(f.dir, "data", "jetstream"))); err != nil {
		t.Fatalf("copying the killed daemon's data directory: %v", err)
	}
	b := testenv.JetStream(t, dir)
	defer b.Close()
	ctx := context.Background()
	st, err := store.Open(ctx, b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := projections.Rebuild(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if cp := checkpointPlusTail(t, b.JS, st, fresh); cp != 0 {
		t.Logf("after the kill: checkpoint at event %d of %d", cp, fresh.LastSeq)
	}
}

// assertConvergedLog stops the daemon and runs convergedIn, assertEventLog
// and assertNotHostile (on every stored event) on its data directory; it
// returns the number of events checked.
func assertConvergedLog(t *testing.T, f *fixture) int {
	t.Helper()
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	b := testenv.JetStream(t, filepath.Join(f.dir, "data"))
	convergedIn(t, b.JS, expectedRecipients(f.sim))
	n := assertEventLog(t, b.JS)
	assertFencedLog(t, b.JS)
	forEachStored(t, b.JS, func(subject string, data []byte) {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Errorf("%s: %v", subject, err)
			return
		}
		assertNotHostile(t, subject, v)
	})
	return n
}

// assertEventLog reads the whole stream and checks that no event was lost
// or doubled: every event ID once; every job with at most one final state,
// reached through the states in order; every recipient's events in an
// order its life allows (created only when it does not exist, no update
// of a missing one, …); and every COMPLETED job's summary counting
// exactly the recipient events stored under its ID. It returns the number
// of events read.
func assertEventLog(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	type jobSeen struct {
		states  []string
		summary *events.Summary
		counts  map[string]int
	}
	ids := map[string]bool{}
	jobs := map[string]*jobSeen{}
	jobOf := func(id string) *jobSeen {
		j, ok := jobs[id]
		if !ok {
			j = &jobSeen{counts: map[string]int{}}
			jobs[id] = j
		}
		return j
	}
	// life is a recipient's status as its events tell it: "" (none),
	// "active", "archived".
	life := map[string]string{}
	n := 0
	var problems []string
	fail := func(format string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	forEachStored(t, js, func(subject string, data []byte) {
		n++
		e, err := events.Decode(data)
		if err != nil {
			fail("event on %s does not decode: %v", subject, err)
			return
		}
		if ids[e.ID] {
			fail("event %s (%s on %s) stored twice", e.ID, e.Type, subject)
		}
		ids[e.ID] = true
		if st, ok := stateOf(e); ok {
			j := jobOf(st.JobID)
			if len(j.states) > 0 && events.Final(j.states[len(j.states)-1]) {
				fail("job %s: %s after its final state %s", st.JobID, st.State, j.states[len(j.states)-1])
			}
			j.states = append(j.states, st.State)
			if st.State == events.StateCompleted {
				j.summary = st.Summary
			}
			return
		}
		var rc events.RecipientChange
		if !strings.HasPrefix(e.Type, "io.dirsync.recipient.") || e.DecodeData(&rc) != nil {
			return
		}
		connector := strings.Split(subject, ".")[2]
		key := connector + "/" + rc.Recipient.ObjectID
		was := life[key]
		ok := true
		switch e.Type {
		case events.TypeRecipientCreated:
			ok, life[key] = was == "", "active"
		case events.TypeRecipientUpdated:
			ok = was != ""
		case events.TypeRecipientArchived:
			ok, life[key] = was == "active", "archived"
		case events.TypeRecipientRestored:
			ok, life[key] = was == "archived", "active"
		case events.TypeRecipientRemoved:
			ok, life[key] = was != "", ""
		}
		if !ok {
			fail("recipient %s: %s while it was %q", key, e.Type, was)
		}
		jobOf(e.JobID).counts[e.Type]++
	})
	order := map[string]int{events.StatePending: 0, events.StateStarted: 1, events.StateRetrieving: 2,
		events.StateProcessing: 3, events.StateSaving: 4}
	for id, j := range jobs {
		for i := 1; i < len(j.states); i++ {
			a, b := j.states[i-1], j.states[i]
			if oa, okA := order[a]; okA {
				if ob, okB := order[b]; okB && ob <= oa {
					fail("job %s: %s after %s", id, b, a)
				}
			}
		}
		if s := j.summary; s != nil && !s.DryRun {
			want := map[string]int{events.TypeRecipientCreated: s.RecipientsCreated, events.TypeRecipientUpdated: s.RecipientsUpdated,
				events.TypeRecipientArchived: s.RecipientsArchived, events.TypeRecipientRemoved: s.RecipientsRemoved,
				events.TypeRecipientRestored: s.RecipientsRestored}
			for typ, w := range want {
				if got := j.counts[typ]; got != w {
					fail("job %s COMPLETED with %d %s in its summary, %d stored", id, w, typ, got)
				}
			}
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if len(jobs) == 0 {
		t.Error("the stream holds no job")
	}
	return n
}

// TestFaultNATSRestart stops the external NATS server while a job is in
// RETRIEVING or SAVING and starts it again after a seeded outage: the job
// ends (COMPLETED, or FAILED with a reason), the daemon stays up and
// reconnects, and the next sync converges.
func TestFaultNATSRestart(t *testing.T) {
	seed := faultSeed(t)
	for i, state := range []string{events.StateRetrieving, events.StateSaving} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, uint64(1000+i)))
			outage := time.Duration(300+rng.IntN(1700)) * time.Millisecond
			after := 1 + rng.IntN(2000)
			ns := testenv.StartNATS(t, "external")
			f := newFixtureWith(t, fmt.Sprintf("nats { url = %q }", ns.URL()), fixtureOptions{users: 2000, groups: 60})
			f.sim.SetFaults(graphsim.Faults{Latency: 20 * time.Millisecond})
			f.start()

			nc, err := nats.Connect(ns.URL())
			if err != nil {
				t.Fatal(err)
			}
			hit := make(chan string, 1)
			var mu sync.Mutex
			var job, last string
			seen := 0
			_, err = nc.Subscribe(events.SubjectRoot+".>", func(m *nats.Msg) {
				e, err := events.Decode(m.Data)
				if err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if st, ok := stateOf(e); ok {
					if job == "" {
						job = st.JobID
					}
					last = st.State
					if st.State == state && state == events.StateRetrieving {
						select {
						case hit <- st.State:
						default:
						}
					}
					return
				}
				if last == events.StateSaving && state == events.StateSaving && e.JobID == job {
					seen++
					if seen == after {
						select {
						case hit <- fmt.Sprintf("SAVING, %d events in", seen):
						default:
						}
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			j, err := f.api().Sync(context.Background(), "demo", api.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var at string
			select {
			case at = <-hit:
			case <-time.After(2 * time.Minute):
				t.Fatalf("the job never reached %s", state)
			}
			ns.Stop()
			nc.Close()
			down := time.Now()
			time.Sleep(outage) // the fault itself: an outage of a seeded length
			if err := ns.Start(); err != nil {
				t.Fatal(err)
			}
			ended := f.waitJob(j.ID, 2*time.Minute, final)
			if ended.State != events.StateCompleted && ended.Reason == "" {
				t.Errorf("job ended %s without a reason", ended.State)
			}
			t.Logf("job across the outage: %s %q", ended.State, ended.Reason)
			var next jobJSON
			f.cliJSON(&next, "sync", "demo", "--wait")
			if next.State != events.StateCompleted {
				t.Fatalf("sync after the NATS restart: %s %s", next.State, next.Reason)
			}
			recovery := time.Since(down)
			if err := f.stop(); err != nil {
				t.Fatalf("stopping dirsyncd: %v", err)
			}
			nc2, err := nats.Connect(ns.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc2.Close()
			js, err := jetstream.New(nc2)
			if err != nil {
				t.Fatal(err)
			}
			convergedIn(t, js, expectedRecipients(f.sim))
			n := assertEventLog(t, js)
			report(t, faultRow{Case: "nats-restart/" + state, Seed: fmt.Sprintf("%d/%d", seed, 1000+i),
				Fault:   fmt.Sprintf("external nats-server down %s (job %s)", outage.Round(time.Millisecond), ended.State),
				AtFault: at, Recovery: recovery, Events: n})
		})
	}
}

// faultyPlugins adds the faulty test plugin under two names, so that the
// crash backoff of one does not slow the other, and a connector per
// fault.
const faultyPlugins = `
plugin "faulty" {
  path         = "$BIN/dirsync-faulty"
  idle_timeout = "2s"
}
plugin "rogue" {
  path = "$BIN/dirsync-faulty"
}
connector "crash" {
  plugin = "faulty"
  config {
    mode  = "crash_mid_stream"
    users = 200
    after = 3
  }
}
connector "hang" {
  plugin = "faulty"
  config {
    mode  = "hang"
    after = 2
  }
}
connector "exitstart" {
  plugin = "faulty"
  config { mode = "exit_at_start" }
}
connector "fine" {
  plugin = "faulty"
  config { mode = "ok" }
}
connector "afterdone" {
  plugin = "rogue"
  config { mode = "after_done" }
}
connector "oversized" {
  plugin = "rogue"
  config { mode = "oversized" }
}
connector "removedfull" {
  plugin = "rogue"
  config { mode = "removed_in_full" }
}
connector "badfields" {
  plugin = "rogue"
  config { mode = "bad_fields" }
}
`

// TestFaultPlugin runs the faulty plugin's faults in one daemon: a plugin
// SIGKILLed mid-stream, hung past its idle_timeout, exiting as the sync
// starts, or breaking the stream contract fails its job with a reason that
// names the plugin; the daemon stays up; the crashed plugin is started
// again for the next job after a backoff; hostile field values never reach
// a stored event; and the real connector then syncs and converges.
func TestFaultPlugin(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{extra: faultyPlugins})
	f.start()
	cases := []struct {
		connector, plugin, state string
		reason                   []string // all in the reason
	}{
		{"crash", "faulty", events.StateFailed, []string{"exited"}},
		{"hang", "faulty", events.StateFailed, []string{"sent nothing for 2s", "idle_timeout"}},
		{"exitstart", "faulty", events.StateFailed, []string{"exited"}},
		{"fine", "faulty", events.StateCompleted, nil},
		{"afterdone", "rogue", events.StateFailed, []string{"broke the sync protocol", "a batch after its final one"}},
		{"oversized", "rogue", events.StateFailed, []string{"broke the sync protocol"}},
		{"removedfull", "rogue", events.StateFailed, []string{"broke the sync protocol", "removed"}},
		{"badfields", "rogue", events.StateCompleted, nil},
	}
	ended := map[string]jobJSON{}
	for _, c := range cases {
		began := time.Now()
		// sync --wait exits 1 for a failed job, and still prints it.
		var j jobJSON
		out, errOut, code := f.cli("sync", c.connector, "--wait", "-o", "json")
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("sync %s: exit %d, %v: %s%s", c.connector, code, err, out, errOut)
		}
		if (code == 0) != (j.State == events.StateCompleted) {
			t.Errorf("sync %s --wait: exit %d for a %s job", c.connector, code, j.State)
		}
		took := time.Since(began)
		ended[c.connector] = j
		if j.State != c.state {
			t.Errorf("%s: job %s %q, want %s", c.connector, j.State, j.Reason, c.state)
		}
		if c.state == events.StateFailed {
			for _, want := range append([]string{fmt.Sprintf("plugin %q", c.plugin)}, c.reason...) {
				if !strings.Contains(j.Reason, want) {
					t.Errorf("%s: reason %q does not say %q", c.connector, j.Reason, want)
				}
			}
		}
		f.assertRunning("after the " + c.connector + " fault")
		if _, errOut, code := f.cli("status"); code != 0 {
			t.Fatalf("status after the %s fault: exit %d: %s", c.connector, code, errOut)
		}
		report(t, faultRow{Case: "plugin/" + c.connector, Seed: "-", Fault: fmt.Sprintf("plugin %q: %s", c.plugin, c.connector),
			AtFault: "job " + j.State + " (recovery = the job's time, including any restart backoff)", Recovery: took, Events: 0})
	}
	// Two consecutive failures of plugin "faulty" (crash, hang) delay the
	// third start by the backoff. The backoff counts from the failure, so
	// the job's own time says nothing reliable on a slow machine: assert
	// what the daemon reports, its warn line naming the wait.
	assertBackoffAnnounced(t, f.log.String(), "faulty", 2, 2*time.Second)

	bad := ended["badfields"]
	var sum events.Summary
	if err := json.Unmarshal(bad.Summary, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.RejectedObjects == 0 || len(sum.Rejected) == 0 || len(sum.Sanitized) == 0 {
		t.Errorf("bad_fields summary counts nothing rejected or sanitised: %s", bad.Summary)
	}

	var demo jobJSON
	f.cliJSON(&demo, "sync", "demo", "--wait")
	if demo.State != events.StateCompleted {
		t.Fatalf("demo after the plugin faults: %s %s", demo.State, demo.Reason)
	}
	n := assertConvergedLog(t, f)
	report(t, faultRow{Case: "plugin/all", Seed: "-", Fault: "7 plugin faults, then the azuread connector", AtFault: "-", Events: n})
}

// assertNotHostile fails on any string in v a downstream service must
// never receive: invalid UTF-8, control or bidi-override characters, or an
// email field that is not a bare address (a header injection, a display
// name, a hostile domain).
func assertNotHostile(t *testing.T, subject string, v any) {
	t.Helper()
	walkFields(v, "", func(key, s string) {
		if msg := hostile(key, s); msg != "" {
			t.Errorf("event on %s holds %s in %s: %q", subject, msg, key, s)
		}
	})
}

// walkFields calls fn with every string in v and the key it is under.
func walkFields(v any, key string, fn func(key, s string)) {
	switch x := v.(type) {
	case string:
		fn(key, x)
	case []any:
		for _, e := range x {
			walkFields(e, key, fn)
		}
	case map[string]any:
		for k, e := range x {
			fn("key", k)
			walkFields(e, k, fn)
		}
	}
}

func hostile(key, s string) string {
	if !utf8.ValidString(s) {
		return "invalid UTF-8"
	}
	for _, r := range s {
		switch {
		case r < 0x20 || (r >= 0x7f && r <= 0x9f):
			return "a control character"
		case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			return "a bidi override"
		}
	}
	switch key {
	case "email", "mail", "userPrincipalName":
		if strings.ContainsAny(s, " <>,;:") || strings.Count(s, "@") != 1 || strings.Contains(s, "evil.example") {
			return "an email that is not a bare address"
		}
	}
	return ""
}

// TestFaultGraphInput serves hostile and broken Graph answers through the
// real connector: hostile strings, invalid UTF-8 and non-GUID ids are
// sanitised or dropped with counted reasons and never stored raw; an
// oversized or too deeply nested answer fails the job with a reason that
// names the limit, and the daemon stays up; once Graph is sane again a
// full sync converges.
func TestFaultGraphInput(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	users := f.sim.Tenant().UsersWithMail()
	ids := func(us []graphsim.User) string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return strings.Join(out, ",")
	}
	syncJob := func(args ...string) jobJSON {
		t.Helper()
		var j jobJSON
		out, errOut, code := f.cli(append([]string{"sync", "demo", "--wait", "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatalf("sync: exit %d, %v: %s%s", code, err, out, errOut)
		}
		return j
	}

	f.sim.SetFaults(graphsim.Faults{HostileUsers: ids(users[0:3]), InvalidUTF8Users: ids(users[3:5]), NonGUIDIDs: ids(users[5:7])})
	began := time.Now()
	j := syncJob()
	if j.State != events.StateCompleted {
		t.Fatalf("sync with hostile users: %s %s", j.State, j.Reason)
	}
	var sum events.Summary
	if err := json.Unmarshal(j.Summary, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Rejected["id_not_guid"] < 2 || sum.Sanitized["control_characters"] < 3 || sum.Sanitized["invalid_email"] < 3 || sum.Sanitized["invalid_utf8"] < 2 {
		t.Errorf("summary does not count what it dropped and cleaned: rejected %v, sanitized %v", sum.Rejected, sum.Sanitized)
	}
	report(t, faultRow{Case: "graph/hostile", Seed: "-", Fault: "3 hostile users, 2 with invalid UTF-8, 2 non-GUID ids",
		AtFault: fmt.Sprintf("job COMPLETED; rejected %v, sanitized %v", sum.Rejected, sum.Sanitized), Recovery: time.Since(began)})

	for _, c := range []struct {
		name, what string
		faults     graphsim.Faults
		want       string
	}{
		{"oversized", "a 20 MiB users/delta page", graphsim.Faults{OversizeBytes: 20 << 20, BodyFaultPath: "/v1.0/users/delta"}, "larger than 16 MiB"},
		{"nested", "a users/delta page nested 100,000 levels", graphsim.Faults{NestingDepth: 100_000, BodyFaultPath: "/v1.0/users/delta"}, "nests JSON deeper than 64"},
	} {
		f.sim.SetFaults(c.faults)
		j := syncJob("--full")
		if j.State != events.StateFailed || !strings.Contains(j.Reason, c.want) || !strings.Contains(j.Reason, `plugin "azuread"`) {
			t.Errorf("%s answer: job %s %q, want FAILED saying %q and naming the plugin", c.name, j.State, j.Reason, c.want)
		}
		if _, errOut, code := f.cli("status"); code != 0 {
			t.Fatalf("status after the %s answer: %s", c.name, errOut)
		}
		f.sim.SetFaults(graphsim.Faults{})
		began := time.Now()
		if j := syncJob("--full"); j.State != events.StateCompleted {
			t.Fatalf("sync after the %s answer: %s %s", c.name, j.State, j.Reason)
		}
		report(t, faultRow{Case: "graph/" + c.name, Seed: "-", Fault: c.what + " (job FAILED)", AtFault: "RETRIEVING", Recovery: time.Since(began)})
	}

	n := assertConvergedLog(t, f)
	report(t, faultRow{Case: "graph/all", Seed: "-", Fault: "hostile, oversized and nested answers", AtFault: "-", Events: n})
}

// assertBackoffAnnounced finds the daemon's JSON log line announcing the
// restart of plugin after failures consecutive failures, and checks the
// wait it names: more than nothing, at most the full backoff (it counts
// from the failure, so part of it may have passed already).
func assertBackoffAnnounced(t *testing.T, log, plugin string, failures int, full time.Duration) {
	t.Helper()
	msg := fmt.Sprintf("restarting plugin %q in ", plugin)
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Level    string          `json:"level"`
			Msg      string          `json:"msg"`
			Backoff  json.RawMessage `json:"backoff"`
			Failures int             `json:"failures"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || !strings.HasPrefix(e.Msg, msg) || e.Failures != failures {
			continue
		}
		wait, ok := logDuration(e.Backoff)
		if e.Level != "warn" || !ok || wait <= 0 || wait > full || !strings.HasSuffix(e.Msg, fmt.Sprintf("after %d consecutive failures", failures)) {
			t.Errorf("restart backoff line: %s", line)
		}
		return
	}
	t.Errorf("the daemon log does not announce the restart of plugin %q after %d failures:\n%s", plugin, failures, log)
}

// logDuration reads a duration field of a JSON log line in either of
// zap's encodings: seconds as a number (the production encoder's) or a
// Go duration string ("2s").
func logDuration(raw json.RawMessage) (time.Duration, bool) {
	var secs float64
	if json.Unmarshal(raw, &secs) == nil {
		return time.Duration(secs * float64(time.Second)), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}
