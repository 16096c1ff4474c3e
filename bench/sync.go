package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
)

// The sync scenarios of the issue:
//
//   - full: a first full sync of the tenant by a fresh daemon, beside the
//     longer of a raw net/http client reading the same pages (rawgraph.go)
//     and a raw append of the events it wrote (sync_floor.go), and the
//     fewest requests that read the tenant at Graph's largest pages; peak
//     RSS of the daemon and of the plugin; the events an unchanged full
//     re-read writes. It runs at s.GrowthUsers and at s.Users, so the
//     rows show how each cost grows with the tenant;
//   - latency: the same with a round trip added to every Graph request,
//     beside the longest chain of dependent pages × that round trip;
//   - delta: an incremental sync after s.Changes changes, beside the
//     requests a raw client needs to read them.
//
// Graph requests are the requests graphsim serves under /v1.0 (its
// Requests counter), for dirsync and the floors alike: token, OpenID
// metadata and instance discovery requests are not counted. Without
// faults every request is answered at the first attempt, so this equals
// the job summary's graphRequests (the connector's requests, retries not
// counted), which the notes quote beside it.

// syncScenarios are the full sync, the full sync under Graph latency and
// the delta sync.
func syncScenarios() []Scenario {
	return []Scenario{
		{Name: "full", Run: runFullSync},
		{Name: "latency", Run: runLatencySync},
		{Name: "delta", Run: runDeltaSync},
	}
}

// Targets of the issue.
const (
	targetFullWall      = 3.0  // × the floor: the raw read or the raw append, the longer
	targetFullRequests  = 1.05 // × the fewest requests
	targetDaemonRSSMiB  = 300
	targetPluginRSSMiB  = 150
	targetLatencyWall   = 1.3 // × the sequential minimum
	targetDeltaWall     = 500 * time.Millisecond
	targetDeltaRequests = 0.01 // × the full sync's requests
)

// graphMaxPageSize is the most objects a Graph delta page holds when
// asked for the largest pages (Prefer: odata.maxpagesize=999; $top and
// odata.maxpagesize are capped at 999 by Graph and graphsim alike). A
// groups delta page also holds at most Config.DeltaMembersPerPage
// members@delta entries (Graph documents no number; graph-samples'
// graph_groups_delta_large_group_page*.txt show a large group filling
// whole pages): a group that does not fit starts the next page, and one
// larger than a page is split across pages (graphsim's delta.go).
const graphMaxPageSize = 999

// minDeltaPages returns the fewest pages of an initial delta round of t
// (users/delta; groups/delta with members) at Graph's largest page
// sizes: ⌈users/999⌉, and the groups in ID order packed greedily into
// pages of at most 999 groups and membersPerPage members@delta entries,
// splitting only a group that starts a page, as graphsim pages them. The
// server packs the pages and the page size is the only say a client has,
// so no client reads the same data in fewer requests.
func minDeltaPages(t *graphsim.Tenant, membersPerPage int) (users, groups int) {
	users = max(1, (len(t.Users)+graphMaxPageSize-1)/graphMaxPageSize)
	sizes := make([]struct {
		key string
		n   int
	}, len(t.Groups))
	for i := range t.Groups {
		sizes[i].key, sizes[i].n = strings.ToLower(t.Groups[i].ID), len(t.Groups[i].Members)
	}
	slices.SortFunc(sizes, func(a, b struct {
		key string
		n   int
	}) int {
		return strings.Compare(a.key, b.key)
	})
	groups = 1
	objects, budget := 0, membersPerPage
	newPage := func() { groups, objects, budget = groups+1, 0, membersPerPage }
	for _, g := range sizes {
		rest := g.n
		for {
			if objects >= graphMaxPageSize || budget <= 0 {
				newPage()
			}
			if rest <= budget {
				objects, budget = objects+1, budget-rest
				break
			}
			if objects > 0 { // does not fit: the next page starts with it
				newPage()
				continue
			}
			objects, rest, budget = objects+1, rest-budget, 0 // split
		}
	}
	return users, groups
}

// memberships counts the members of every group of t.
func memberships(t *graphsim.Tenant) int {
	n := 0
	for i := range t.Groups {
		n += len(t.Groups[i].Members)
	}
	return n
}

// syncRig is a simulated tenant and a fresh daemon syncing it; or,
// with sim nil, a daemon syncing another directory (ldap.go's Samba DC),
// whose requests the job summary counts.
type syncRig struct {
	sim   *graphsim.Sim
	d     *Daemon
	peaks *PeakWatcher
	// daemonMiB and pluginMiB are the peaks, set by stopPeaks.
	daemonMiB, pluginMiB float64
}

// newSyncRig starts a tenant of s's size and a daemon syncing it, and
// starts watching the daemon's (and its plugin's) peak RSS.
func newSyncRig(ctx context.Context, env *Env, s Sizes, name, logLevel string) (*syncRig, error) {
	env.Logf("generating a tenant of %d users and %d Unified groups", s.Users, s.Groups)
	t0 := time.Now()
	sim, err := NewSim(s)
	if err != nil {
		return nil, err
	}
	env.Logf("graphsim serving at %s (%d memberships) after %.1f s", sim.URL(), memberships(sim.Tenant()), time.Since(t0).Seconds())
	r := &syncRig{sim: sim}
	if r.d, err = startFor(ctx, env, sim, name, logLevel); err != nil {
		_ = sim.Close()
		return nil, err
	}
	r.peaks = WatchPeaks(r.d.Cmd.Process.Pid)
	env.Logf("dirsyncd ready in %.2f s", r.d.Ready.Sub(r.d.Started).Seconds())
	return r, nil
}

// stopPeaks stops the RSS watch and keeps the peaks.
func (r *syncRig) stopPeaks() {
	if r.peaks != nil {
		r.daemonMiB, r.pluginMiB = r.peaks.Stop()
		r.peaks = nil
	}
}

// close stops the daemon and the tenant.
func (r *syncRig) close() {
	r.stopPeaks()
	_ = r.d.Stop()
	if r.sim != nil {
		_ = r.sim.Close()
	}
}

// syncRun is one measured sync.
type syncRun struct {
	job api.Job
	// wall is from the request to COMPLETED, measured here.
	wall time.Duration
	// requests are the Graph requests graphsim served during the sync;
	// without a sim, the job summary's directoryRequests.
	requests int64
	// daemonCPU and pluginCPU are the CPU time (user+system) the daemon
	// and its plugin processes used during the sync.
	daemonCPU, pluginCPU time.Duration
}

// cpuNote says how much CPU the processes used.
func (r syncRun) cpuNote() string {
	return fmt.Sprintf("CPU used: dirsyncd %.2f s, plugin %.2f s (%d cores)", r.daemonCPU.Seconds(), r.pluginCPU.Seconds(), runtime.NumCPU())
}

// sync requests a sync, waits for COMPLETED and measures it; graphsim's
// counters are reset first. It logs the job's progress while it runs.
func (r *syncRig) sync(ctx context.Context, env *Env, full bool, what string) (syncRun, error) {
	if r.sim != nil {
		r.sim.ResetCounters()
	}
	pid := r.d.Cmd.Process.Pid
	cpu0, _ := CPUTime(pid)
	stopProgress := r.logProgress(ctx, env, what)
	stopCPU := watchChildCPU(pid)
	start := time.Now()
	j, err := r.d.Sync(ctx, full)
	wall := time.Since(start)
	pluginCPU := stopCPU()
	stopProgress()
	if err != nil {
		return syncRun{}, fmt.Errorf("%s: %w (%s)\ndaemon log (end):\n%s", what, err, r.daemonState(), tail(r.d.Log(), 4000))
	}
	cpu1, _ := CPUTime(pid)
	run := syncRun{job: j, wall: wall, daemonCPU: cpu1 - cpu0, pluginCPU: pluginCPU}
	kind := "Graph"
	if r.sim != nil {
		run.requests = r.sim.Requests()
	} else {
		sum := summary(j)
		run.requests, kind = sum.Requests(), "directory"
	}
	env.Logf("%s COMPLETED in %.2f s, %d %s requests (%s; %s)", what, wall.Seconds(), run.requests, kind, phases(j), run.cpuNote())
	return run, nil
}

// settle waits until the daemon uses less than 5% of a core over half
// a second, for at most a minute, and logs how long that took.
func (r *syncRig) settle(ctx context.Context, env *Env) {
	pid := r.d.Cmd.Process.Pid
	start := time.Now()
	const window = 500 * time.Millisecond
	for time.Since(start) < time.Minute {
		c0, err := CPUTime(pid)
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(window):
		}
		c1, _ := CPUTime(pid)
		if used := c1 - c0; used < window/20 {
			env.Logf("dirsyncd idle (%.0f ms CPU in the last %s) %.1f s after COMPLETED", float64(used.Milliseconds()), window, time.Since(start).Seconds())
			return
		}
	}
	env.Logf("dirsyncd still busy a minute after COMPLETED; going on")
}

// daemonState says whether the daemon still runs, or how it exited.
func (r *syncRig) daemonState() string { return r.d.State() }

// watchChildCPU samples the CPU time of pid's children every 100 ms
// until the returned function is called, which returns the CPU time the
// children used meanwhile (what a child uses in its last 100 ms before it
// exits may be missed).
func watchChildCPU(pid int) (stop func() time.Duration) {
	start := map[int]time.Duration{} // CPU time when first seen; 0 for a child started later
	last := map[int]time.Duration{}
	first := true
	sample := func() {
		for _, c := range Children(pid) {
			v, err := CPUTime(c)
			if err != nil {
				continue
			}
			if _, ok := last[c]; !ok && first {
				start[c] = v // a plugin already running counts from now
			}
			last[c] = v
		}
		first = false
	}
	stopSampling := sampleEvery(100*time.Millisecond, sample)
	return func() time.Duration {
		stopSampling()
		var total time.Duration
		for c, v := range last {
			total += v - start[c]
		}
		return total
	}
}

// logProgress logs the running job's progress every few seconds until
// the returned function is called.
func (r *syncRig) logProgress(ctx context.Context, env *Env, what string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			list, err := r.d.Client.Jobs(ctx, Connector, 1)
			if err != nil || len(list) == 0 {
				continue
			}
			j := list[0]
			line := fmt.Sprintf("   %s: %s after %.0f s", what, j.State, time.Since(start).Seconds())
			if p := j.Progress; p != nil {
				line += fmt.Sprintf(", %s: %d users, %d groups, %d memberships, %d requests", p.Phase, p.Users, p.Groups, p.Memberships, p.Requests)
				if p.Events > 0 {
					line += fmt.Sprintf(", %d/%d events saved", p.Saved, p.Events)
				}
			}
			if r.sim != nil {
				line += fmt.Sprintf("; graphsim served %d Graph requests", r.sim.Requests())
			}
			env.Logf("%s", line)
		}
	}()
	return func() { close(done); <-finished }
}

// tail is the end of a log.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// phases says how long a job spent in each state, from its history.
func phases(j api.Job) string {
	var parts []string
	for i := 0; i+1 < len(j.History); i++ {
		h, next := j.History[i], j.History[i+1]
		parts = append(parts, fmt.Sprintf("%s %.2f s", strings.ToLower(h.State), next.At.Sub(h.At).Seconds()))
	}
	return strings.Join(parts, ", ")
}

// summary is the job's summary (zero when missing).
func summary(j api.Job) events.Summary {
	if j.Summary == nil {
		return events.Summary{}
	}
	return *j.Summary
}

// recipientEvents counts the recipient events a job wrote.
func recipientEvents(s events.Summary) int {
	return s.RecipientsCreated + s.RecipientsUpdated + s.RecipientsArchived + s.RecipientsRestored + s.RecipientsRemoved
}

// runFullSync is scenario 1: a first full sync by a fresh daemon, at
// s.GrowthUsers (when set) and then at s's size, each with its own
// tenant, daemon and floors, so that the rows show how the sync grows.
func runFullSync(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	sizes := []Sizes{s}
	if s.GrowthUsers > 0 {
		sizes = []Sizes{s.growth(), s}
	}
	var rows []Row
	for _, sz := range sizes {
		r, err := fullSyncAt(ctx, env, sz, fmt.Sprintf("full-%d", sz.Users))
		if err != nil {
			return nil, fmt.Errorf("%d users: %w", sz.Users, err)
		}
		one := sz // reproduces this size's rows alone
		one.GrowthUsers = 0
		for i := range r {
			r[i].Command = one.Command("full")
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// fullSyncAt measures a first full sync of a tenant of s's size by a
// fresh daemon in env.Dir/name, its floors, and then an unchanged full
// re-read.
func fullSyncAt(ctx context.Context, env *Env, s Sizes, name string) ([]Row, error) {
	scenario := fmt.Sprintf("full sync, %d users / %d groups", s.Users, s.Groups)
	r, err := newSyncRig(ctx, env, s, name, "warn")
	if err != nil {
		return nil, err
	}
	defer r.close()
	minUsers, minGroups := minDeltaPages(r.sim.Tenant(), r.sim.Config().DeltaMembersPerPage)
	minReq := minUsers + minGroups

	env.Logf("raw client: reading the whole tenant (before dirsync)")
	r.sim.ResetCounters()
	before, err := rawFullRead(ctx, r.sim)
	if err != nil {
		return nil, err
	}
	rawReq := r.sim.Requests()
	env.Logf("raw client: %s, %d Graph requests", before, rawReq)

	env.Logf("dirsync: full sync of %d users and %d groups (the daemon's first)", s.Users, s.Groups)
	run, err := r.sync(ctx, env, true, "full sync")
	if err != nil {
		return nil, err
	}
	r.stopPeaks()
	// What comes after COMPLETED still counts on an appliance: the
	// read-model checkpoint the job's events call for is written once it
	// ends (and not while it saves).
	r.settle(ctx, env)
	settledKiB, _ := ProcStatus(r.d.Cmd.Process.Pid, "VmHWM")

	env.Logf("raw client: reading the whole tenant (after dirsync)")
	after, err := rawFullRead(ctx, r.sim)
	if err != nil {
		return nil, err
	}
	env.Logf("raw client: %s", after)
	raw := min(before.Wall, after.Wall)
	sum := summary(run.job)

	app, err := r.rawAppendOf(ctx, env, run.job.ID)
	if err != nil {
		return nil, err
	}
	floor, floorIs := raw, "the raw client's read"
	if app.best > raw {
		floor, floorIs = app.best, "the raw append"
	}
	reread, err := r.unchangedReread(ctx, env)
	if err != nil {
		return nil, err
	}

	wall := run.wall.Seconds()
	return []Row{
		{
			Scenario: scenario, Metric: "wall time, request → COMPLETED",
			Value: wall, Floor: floor.Seconds(), Unit: "s",
			Target: fmt.Sprintf("≤ %.0f× floor", targetFullWall), Met: wall <= targetFullWall*floor.Seconds(),
			Note: fmt.Sprintf("floor: %s, the longer of two: (1) the raw read, a plain net/http + encoding/json client (token, then the users and groups delta chains concurrently, one request in flight each, pages decoded to IDs and dropped), the faster of before (%s) and after (%s) dirsync: %.2f s; (2) the raw append of the same event bytes: %s. dirsync: %s; read %d users, %d groups, %d memberships; wrote %d directory and %d recipient events; %s",
				floorIs, before, after, raw.Seconds(), app, phases(run.job), sum.UsersRetrieved, sum.GroupsRetrieved, sum.MembershipsRetrieved,
				sum.DirectoryEvents, recipientEvents(sum), run.cpuNote()),
		},
		{
			Scenario: scenario, Metric: "Graph requests",
			Value: float64(run.requests), Floor: float64(minReq), Unit: "req",
			Target: fmt.Sprintf("≤ %.2f× min", targetFullRequests), Met: float64(run.requests) <= targetFullRequests*float64(minReq),
			Note: fmt.Sprintf("floor: fewest delta pages at Graph's largest pages: users ⌈%d/%d⌉ = %d, groups with members %d (≤ %d groups and ≤ %d members@delta a page, a group split only when larger than a page); the raw client made %d. dirsync: graphsim counted %d, job summary graphRequests %d; token requests not counted",
				len(r.sim.Tenant().Users), graphMaxPageSize, minUsers, minGroups, graphMaxPageSize, r.sim.Config().DeltaMembersPerPage, rawReq, run.requests, sum.GraphRequests),
		},
		{
			Scenario: scenario, Metric: "daemon peak RSS",
			Value: r.daemonMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetDaemonRSSMiB), Met: r.daemonMiB < targetDaemonRSSMiB,
			Note: fmt.Sprintf("VmHWM of dirsyncd (embedded NATS and JetStream included), sampled every 50 ms from its start to COMPLETED; "+
				"%.0f MiB once it settled after COMPLETED (the read-model checkpoint written after the job included)", float64(settledKiB)/1024),
		},
		{
			Scenario: scenario, Metric: "plugin peak RSS",
			Value: r.pluginMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetPluginRSSMiB), Met: r.pluginMiB < targetPluginRSSMiB,
			Note: "VmHWM of dirsync-azuread (the daemon's largest child process), sampled every 50 ms",
		},
		reread.row(scenario),
	}, nil
}

// runLatencySync is scenario 2: the full sync with s.Latency added to
// every Graph request.
func runLatencySync(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	scenario := fmt.Sprintf("full sync, %s Graph latency", s.Latency)
	r, err := newSyncRig(ctx, env, s, "latency", "warn")
	if err != nil {
		return nil, err
	}
	defer r.close()
	minUsers, minGroups := minDeltaPages(r.sim.Tenant(), r.sim.Config().DeltaMembersPerPage)
	chain := max(minUsers, minGroups)
	floor := time.Duration(chain) * s.Latency

	r.sim.SetFaults(graphsim.Faults{Latency: s.Latency})
	env.Logf("dirsync: full sync with %s added to every Graph request (sequential minimum %d pages × %s = %.2f s)", s.Latency, chain, s.Latency, floor.Seconds())
	run, err := r.sync(ctx, env, true, "full sync under latency")
	r.sim.SetFaults(graphsim.Faults{})
	if err != nil {
		return nil, err
	}
	sum := summary(run.job)
	wall := run.wall.Seconds()
	retrieving := StateTime(run.job, events.StateProcessing).Sub(StateTime(run.job, events.StateStarted))
	perReq := 0.0
	if run.requests > 0 {
		perReq = float64(retrieving.Milliseconds()) / float64(run.requests)
	}
	return []Row{{
		Scenario: scenario, Metric: "wall time, request → COMPLETED",
		Value: wall, Floor: floor.Seconds(), Unit: "s",
		Target: fmt.Sprintf("≤ %.1f× sequential min", targetLatencyWall), Met: wall <= targetLatencyWall*floor.Seconds(),
		Note: fmt.Sprintf("floor: longest chain of dependent pages × %s = max(users %d, groups %d) × %s; the two chains are independent; the token request is not counted (graphsim adds no latency to it, and any client needs it first). dirsync: %d Graph requests (summary %d) in %.1f s from STARTED to PROCESSING (plugin start and RETRIEVING), %.1f ms a request (all %d one after the other would take %.2f s at %s); %s; %s",
			s.Latency, minUsers, minGroups, s.Latency, run.requests, sum.GraphRequests, retrieving.Seconds(), perReq,
			run.requests, (time.Duration(run.requests) * s.Latency).Seconds(), s.Latency, phases(run.job), run.cpuNote()),
	}}, nil
}

// runDeltaSync is scenario 3: after a full sync, s.Changes changes and an
// incremental sync.
func runDeltaSync(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	scenario := fmt.Sprintf("delta sync, %d changes", s.Changes)
	// At info, to read how the daemon planned the delta (planNote).
	r, err := newSyncRig(ctx, env, s, "delta", "info")
	if err != nil {
		return nil, err
	}
	defer r.close()
	env.Logf("dirsync: full sync first")
	full, err := r.sync(ctx, env, true, "full sync")
	if err != nil {
		return nil, err
	}
	// A delta sync normally comes long after the full one: let the daemon
	// finish what it does after COMPLETED (GC, read-model and JetStream
	// housekeeping) so that it is not measured with the delta sync.
	r.settle(ctx, env)
	// The raw client's delta links from now, to read the same changes.
	rawUsers, rawGroups, err := rawLatestLinks(ctx, r.sim)
	if err != nil {
		return nil, err
	}

	changes, err := r.sim.Churn(s.Changes, 6)
	if err != nil {
		return nil, err
	}
	kinds := churnKinds(changes)
	env.Logf("made %d changes in the tenant (%s); dirsync: incremental sync", len(changes), kinds)
	run, err := r.sync(ctx, env, false, "delta sync")
	if err != nil {
		return nil, err
	}
	sum := summary(run.job)
	planned := planNote(r.d.Log())
	env.Logf("daemon: %s", planned)
	written := recipientEvents(sum)
	listed := -1
	if ch, err := r.d.Client.Changes(ctx, run.job.ID); err == nil {
		listed = len(ch.Changes)
	}

	r.sim.ResetCounters()
	raw, err := rawDelta(ctx, r.sim, rawUsers, rawGroups)
	if err != nil {
		return nil, err
	}
	rawReq := r.sim.Requests()
	env.Logf("raw client: the same changes in %s, %d Graph requests", raw, rawReq)

	resync := ""
	if sum.FullRead {
		resync = fmt.Sprintf(" The job read everything: %s.", sum.ResyncReason)
	}
	wall := run.wall.Seconds()
	share := targetDeltaRequests * float64(full.requests)
	return []Row{
		{
			Scenario: scenario, Metric: "wall time, request → COMPLETED",
			Value: wall, Unit: "s",
			Target: fmt.Sprintf("< %.1f s", targetDeltaWall.Seconds()), Met: run.wall < targetDeltaWall,
			Note: fmt.Sprintf("dirsync: %s; %s; %s. The raw client reads the same changes in %s.%s", phases(run.job), run.cpuNote(), planned, raw, resync),
		},
		{
			Scenario: scenario, Metric: "Graph requests",
			Value: float64(run.requests), Floor: float64(rawReq), Unit: "req",
			Target: fmt.Sprintf("< 1%% of full (%d)", full.requests), Met: float64(run.requests) < share,
			Note: fmt.Sprintf("floor: the pages a raw client at the largest page size reads from delta links taken before the changes: users %d, groups %d (%d user objects, %d members@delta entries). dirsync: summary graphRequests %d",
				raw.Users.Pages, raw.Groups.Pages, raw.Users.Objects, raw.Groups.Members, sum.GraphRequests),
		},
		{
			Scenario: scenario, Metric: "recipient events written",
			Value: float64(written), Unit: "events",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("job summary: %d created, %d updated, %d archived, %d restored, %d removed (the job's change list holds %d); the changes: %s; %d directory events",
				sum.RecipientsCreated, sum.RecipientsUpdated, sum.RecipientsArchived, sum.RecipientsRestored, sum.RecipientsRemoved, listed, kinds, sum.DirectoryEvents),
		},
	}, nil
}

// churnKinds counts graphsim's Churn descriptions by kind, e.g.
// "24 update, 12 add-member, ...".
func churnKinds(lines []string) string {
	count := map[string]int{}
	var order []string
	for _, l := range lines {
		k := "other"
		switch {
		case strings.Contains(l, " to group "):
			k = "add-member"
		case strings.Contains(l, " from group "):
			k = "remove-member"
		case strings.HasPrefix(l, "add user"):
			k = "add"
		case strings.HasPrefix(l, "update user"):
			k = "update"
		case strings.HasPrefix(l, "disable"), strings.HasPrefix(l, "enable"):
			k = "disable/enable"
		case strings.HasPrefix(l, "soft-delete"):
			k = "soft-delete"
		case strings.HasPrefix(l, "delete"):
			k = "delete"
		case strings.HasPrefix(l, "restore"):
			k = "restore"
		case strings.HasPrefix(l, "set licenses"):
			k = "licenses"
		}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return count[b] - count[a] })
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	return strings.Join(parts, ", ")
}

// planNote says how the daemon's last plan went, from its log line
// "changes planned": from the last plan (the users its changes can
// touch) or over the whole directory, and how many users it decided.
func planNote(log string) string {
	note := "the daemon's log has no \"changes planned\" line"
	for _, line := range strings.Split(log, "\n") {
		var f struct {
			Msg          string  `json:"msg"`
			FromLastPlan bool    `json:"fromLastPlan"`
			UsersDecided int     `json:"usersDecided"`
			Took         float64 `json:"took"`
			Waited       float64 `json:"waitedForReadModels"`
		}
		if json.Unmarshal([]byte(line), &f) != nil || f.Msg != "changes planned" {
			continue
		}
		how := "over the whole directory"
		if f.FromLastPlan {
			how = "from the last plan"
		}
		note = fmt.Sprintf("planned %s, deciding about %d users, in %.3f s of which %.3f s waiting for the read models (daemon log)", how, f.UsersDecided, f.Took, f.Waited)
	}
	return note
}
