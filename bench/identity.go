package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
)

// The identity scenario: what mailbox classification and group nesting
// cost. One tenant of s.Users users with the attributes an identity sync
// reads (graphsim's Config.Attributes: mailbox purposes, aliases,
// managers, groups nested three deep with a cycle), s.Users/100 shared,
// room and equipment mailboxes, its groups of every kind as generated,
// and MailboxSettings.Read granted. Two fresh daemons sync it one after
// the other, each a full sync, then s.Changes changes and an incremental
// sync. Each syncs a tenant of its own, generated from the same seed and
// changed by Churn with the same seed, so both read the same directory
// and the same changes (graphsim's generation and Churn are
// deterministic):
//
//   - with classification and nesting: the default policy (exclude_mailboxes
//     shared, room, equipment; nested_groups true), showing security groups
//     beside Microsoft 365 ones. Nesting needs a kind other than
//     Microsoft 365 groups shown (those hold no groups): with the default
//     group_types ["unified"] the connector reads Unified groups alone and
//     nesting has nothing to expand;
//   - without them: the same group_types, exclude_mailboxes = [] and
//     nested_groups = false, so the only differences are the mailbox
//     requests, the group kinds nesting makes the connector read (every
//     kind, against the two shown) and the expansion.
//
// Graph requests are graphsim's Requests, which count each request of a
// JSON batch as well as the batch's POST (as Graph's throttling does).

// identityScenarios is the identity sync's scenario.
func identityScenarios() []Scenario {
	return []Scenario{{Name: "identity", Run: runIdentity}}
}

// identityPolicy is one of the two daemons' import policies.
type identityPolicy struct {
	label, dir string
	body       string
}

// identityChurnSeed draws the changes before the incremental syncs.
const identityChurnSeed = 6

// identityShown are the group kinds both policies show.
const identityShown = `group_types = ["unified", "security"]`

var identityPolicies = []identityPolicy{
	{label: "with classification and nesting", dir: "identity-with", body: identityShown},
	{label: "without them", dir: "identity-without", body: identityShown + "\nexclude_mailboxes = []\nnested_groups = false"},
}

// identitySync is one measured sync of the identity scenario.
type identitySync struct {
	syncRun
	counters map[string]int64
	batches  batchSpan
	// logged is the daemon's log during the sync.
	logged string
}

func runIdentity(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	var runs [2][2]identitySync // [policy][full, delta]
	var tenant, churned string
	for i, p := range identityPolicies {
		full, delta, err := syncIdentity(ctx, env, s, p, &tenant, &churned)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.label, err)
		}
		runs[i] = [2]identitySync{full, delta}
	}

	scenario := fmt.Sprintf("identity, %d users / %d groups", s.Users, s.Groups)
	var rows []Row
	for k, what := range []string{"full sync", fmt.Sprintf("incremental sync after %d changes", s.Changes)} {
		for i, p := range identityPolicies {
			run, other := runs[i][k], runs[1-i][k]
			label := fmt.Sprintf("%s, %s", scenario, p.label)
			ratio := fmt.Sprintf("%.2f× the time and %.2f× the requests of the same sync %s (%.2f s, %d req)",
				run.wall.Seconds()/other.wall.Seconds(), float64(run.requests)/float64(max(1, other.requests)),
				identityPolicies[1-i].label, other.wall.Seconds(), other.requests)
			head := fmt.Sprintf("import { %s }; ", strings.ReplaceAll(p.body, "\n", "; "))
			plan := ""
			if k == 0 {
				head += "tenant: " + tenant + ". "
			} else {
				head += fmt.Sprintf("the changes (the same for both daemons): %s. ", churned)
				plan = "; " + planNote(run.logged)
			}
			rows = append(rows,
				Row{
					Scenario: label, Metric: what + ": wall time, request → COMPLETED",
					Value: run.wall.Seconds(), Unit: "s", Target: "none (reported)", Met: true,
					Note: head + ratio + ". dirsync: " + phases(run.job) + "; " + run.batches.String() + "; " + run.readNote() + plan + "; " + run.cpuNote(),
				},
				Row{
					Scenario: label, Metric: what + ": Graph requests",
					Value: float64(run.requests), Unit: "req", Target: "none (reported)", Met: true,
					Note: "graphsim: " + splitRequests(run.counters) + "; " + run.classifiedNote() + "; job summary graphRequests " + fmt.Sprint(summary(run.job).GraphRequests) + " (the connector counts a $batch POST once, graphsim also each request it holds). " + ratio,
				})
		}
	}
	return rows, nil
}

// newIdentitySim starts the identity scenario's tenant; clock sees
// graphsim's request log.
func newIdentitySim(s Sizes, clock *batchClock) (*graphsim.Sim, error) {
	sim, err := graphsim.New(graphsim.Config{Users: s.Users, Groups: s.Groups, Seed: 11, ClientSecret: newClientSecret(),
		Attributes: true, Resources: s.Users / 100, Log: clock,
		Roles: append(graphsim.DefaultRoles(), graphsim.RoleMailboxSettingsRead)})
	if err != nil {
		return nil, err
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return sim, nil
}

// syncIdentity runs policy p's daemon on a tenant of its own: a full
// sync, then s.Changes changes and an incremental sync. It describes the
// tenant and the changes in tenant and churned, and stops the daemon and
// the tenant before it returns.
func syncIdentity(ctx context.Context, env *Env, s Sizes, p identityPolicy, tenant, churned *string) (full, delta identitySync, err error) {
	clock := &batchClock{}
	env.Logf("generating a tenant of %d users (attributes), %d resource mailboxes and %d groups of every kind", s.Users, s.Users/100, s.Groups)
	t0 := time.Now()
	sim, err := newIdentitySim(s, clock)
	if err != nil {
		return full, delta, err
	}
	defer sim.Close()
	*tenant = describeIdentityTenant(sim.Tenant())
	env.Logf("graphsim serving at %s after %.1f s: %s", sim.URL(), time.Since(t0).Seconds(), *tenant)

	env.Logf("dirsync %s: import { %s }", p.label, strings.ReplaceAll(p.body, "\n", "; "))
	// At info, to read how many mailboxes the daemon asked about.
	d, err := startWith(ctx, env, sim, p.dir, daemonConfig{LogLevel: "info", Import: p.body})
	if err != nil {
		return full, delta, err
	}
	// Stopped before the tenant: deferred calls run last first.
	defer func() { _ = d.Stop() }()
	r := &syncRig{sim: sim, d: d}
	if full, err = r.identitySync(ctx, env, clock, true, "full sync, "+p.label); err != nil {
		return full, delta, err
	}
	// As in the delta scenario: what the daemon does after COMPLETED is
	// not measured with the incremental sync.
	r.settle(ctx, env)
	changes, err := sim.Churn(s.Changes, identityChurnSeed)
	if err != nil {
		return full, delta, err
	}
	*churned = churnKinds(changes)
	env.Logf("made %d changes in the tenant (%s)", len(changes), *churned)
	delta, err = r.identitySync(ctx, env, clock, false, "incremental sync, "+p.label)
	return full, delta, err
}

// identitySync is r.sync with graphsim's counters, the span of its
// $batch requests and the daemon's log of the sync kept.
func (r *syncRig) identitySync(ctx context.Context, env *Env, clock *batchClock, full bool, what string) (identitySync, error) {
	logged := len(r.d.Log())
	clock.reset()
	run, err := r.sync(ctx, env, full, what)
	if err != nil {
		return identitySync{}, err
	}
	out := identitySync{syncRun: run, counters: r.sim.Counters(), batches: clock.span(), logged: r.d.Log()[logged:]}
	env.Logf("%s: %s; %s; %s; %s", what, splitRequests(out.counters), out.batches, out.classifiedNote(), planNote(out.logged))
	return out, nil
}

// readNote says what the job read and wrote, and whom it skipped.
func (s identitySync) readNote() string {
	sum := summary(s.job)
	skipped := make([]string, 0, len(sum.Skipped))
	for _, k := range slices.Sorted(maps.Keys(sum.Skipped)) {
		skipped = append(skipped, fmt.Sprintf("%s %d", k, sum.Skipped[k]))
	}
	return fmt.Sprintf("read %d users, %d groups, %d memberships; wrote %d directory and %d recipient events (%d created, %d updated, %d archived); %d active recipients; skipped: %s",
		sum.UsersRetrieved, sum.GroupsRetrieved, sum.MembershipsRetrieved, sum.DirectoryEvents, recipientEvents(sum),
		sum.RecipientsCreated, sum.RecipientsUpdated, sum.RecipientsArchived, sum.Recipients, strings.Join(skipped, ", "))
}

// classifiedNote says how many mailboxes the daemon asked about, from
// its log line "mailboxes classified" (the plugin's lines of the same
// message, one per call of up to 1,000 users, carry "took").
func (s identitySync) classifiedNote() string {
	asked, classified, calls := -1, 0, 0
	var took time.Duration
	for _, line := range strings.Split(s.logged, "\n") {
		i := strings.Index(line, "{")
		if i < 0 || !strings.Contains(line, "mailboxes classified") {
			continue
		}
		var f struct {
			Msg        string `json:"msg"`
			Asked      int    `json:"asked"`
			Classified int    `json:"classified"`
			Took       any    `json:"took"`
		}
		if json.Unmarshal([]byte(line[i:]), &f) != nil || f.Msg != "mailboxes classified" {
			continue
		}
		if f.Took == nil {
			asked, classified = f.Asked, f.Classified
			continue
		}
		calls++
		took += logDuration(f.Took)
	}
	if asked < 0 {
		return "the daemon asked about no mailbox (no \"mailboxes classified\" line in its log)"
	}
	note := fmt.Sprintf("the daemon asked about %d mailboxes and %d had a purpose (daemon log)", asked, classified)
	if calls > 0 {
		note += fmt.Sprintf(", in %d ClassifyMailboxes calls that took %.2f s in the plugin (its log)", calls, took.Seconds())
	}
	return note
}

// logDuration reads a zap duration field: seconds as a number, or a
// string such as "1.5s".
func logDuration(v any) time.Duration {
	switch x := v.(type) {
	case float64:
		return time.Duration(x * float64(time.Second))
	case string:
		d, _ := time.ParseDuration(x)
		return d
	}
	return 0
}

// splitRequests splits graphsim's counters by endpoint: the delta pages,
// the $batch POSTs, the requests inside them, the rest; with the token
// requests, which Requests does not count.
func splitRequests(c map[string]int64) string {
	byPath := map[string]int64{}
	var statuses []string
	for k, n := range c {
		f := strings.Fields(k)
		if len(f) != 3 {
			continue
		}
		path := f[0] + " " + f[1]
		byPath[path] += n
		if strings.HasSuffix(f[1], "/mailboxSettings") {
			statuses = append(statuses, fmt.Sprintf("%d %s", n, f[2]))
		}
	}
	slices.Sort(statuses)
	take := func(path string) int64 { n := byPath[path]; delete(byPath, path); return n }
	users, groups := take("GET /v1.0/users/delta"), take("GET /v1.0/groups/delta")
	batches, items := take("POST /v1.0/$batch"), take("GET /v1.0/users/{id}/mailboxSettings")
	out := fmt.Sprintf("users/delta %d pages, groups/delta %d pages, $batch %d POSTs holding %d mailboxSettings requests", users, groups, batches, items)
	if len(statuses) > 0 {
		out += " (" + strings.Join(statuses, ", ") + ")"
	}
	var rest, uncounted []string
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		if _, path, _ := strings.Cut(p, " "); strings.HasPrefix(path, "/v1.0") {
			rest = append(rest, fmt.Sprintf("%s %d", p, byPath[p]))
		} else {
			uncounted = append(uncounted, fmt.Sprintf("%s %d", p, byPath[p]))
		}
	}
	if len(rest) > 0 {
		out += ", other: " + strings.Join(rest, ", ")
	}
	if len(uncounted) > 0 {
		out += "; not counted (not Graph): " + strings.Join(uncounted, ", ")
	}
	return out
}

// describeIdentityTenant counts the tenant's users, resource mailboxes
// and groups by kind.
func describeIdentityTenant(t *graphsim.Tenant) string {
	purposes := map[string]int{}
	for i := range t.Users {
		purposes[t.Users[i].MailboxPurpose]++
	}
	kinds := map[string]int{}
	nested := 0
	for i := range t.Groups {
		g := &t.Groups[i]
		switch {
		case g.IsUnified():
			kinds["Microsoft 365"]++
		case g.MailEnabled && g.SecurityEnabled:
			kinds["mail-enabled security"]++
		case g.SecurityEnabled:
			kinds["security"]++
		default:
			kinds["distribution"]++
		}
		for _, m := range g.Members {
			if m.ODataType == graphsim.TypeGroup {
				nested++
			}
		}
	}
	var p, k []string
	for _, key := range slices.Sorted(maps.Keys(purposes)) {
		name := key
		if name == "" {
			name = "no purpose"
		}
		p = append(p, fmt.Sprintf("%s %d", name, purposes[key]))
	}
	for _, key := range slices.Sorted(maps.Keys(kinds)) {
		k = append(k, fmt.Sprintf("%s %d", key, kinds[key]))
	}
	return fmt.Sprintf("%d accounts by mailbox purpose: %s; groups: %s, %d memberships, %d of them a group in a group",
		len(t.Users), strings.Join(p, ", "), strings.Join(k, ", "), memberships(t), nested)
}

// batchClock is graphsim's request log (Config.Log) read for the
// $batch POSTs: when the first began and the last ended, and the time
// graphsim spent serving them.
type batchClock struct {
	mu sync.Mutex
	s  batchSpan
}

// batchSpan is what a batchClock saw since its reset.
type batchSpan struct {
	n           int
	first, last time.Time
	served      time.Duration
}

func (s batchSpan) String() string {
	if s.n == 0 {
		return "no $batch request"
	}
	return fmt.Sprintf("$batch POSTs from the first's start to the last's answer (mailbox classification, several batches at a time): %.2f s, graphsim serving them %.2f s in all (overlapping batches counted each)",
		s.last.Sub(s.first).Seconds(), s.served.Seconds())
}

func (c *batchClock) reset() {
	c.mu.Lock()
	c.s = batchSpan{}
	c.mu.Unlock()
}

func (c *batchClock) span() batchSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

// Write takes one line of graphsim's log: "graphsim: DATE TIME METHOD
// TARGET STATUS DURATION", written as the answer ends.
func (c *batchClock) Write(p []byte) (int, error) {
	now := time.Now()
	f := strings.Fields(string(p))
	if len(f) < 4 || f[len(f)-4] != "POST" || !strings.HasSuffix(f[len(f)-3], "batch") {
		return len(p), nil
	}
	took, _ := time.ParseDuration(f[len(f)-1])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.n == 0 {
		c.s.first = now.Add(-took)
	}
	c.s.n++
	c.s.last = now
	c.s.served += took
	return len(p), nil
}
