// Package bench measures what a sync costs beside its physical floor, in
// the same run on the same machine: every Row pairs a dirsync figure with
// the floor it is judged against (a raw client, raw JetStream, the minimum
// number of Graph requests) and the target the issue sets.
//
// The scenarios run real parts: graphsim over HTTPS, the dirsyncd and
// dirsync-azuread binaries as processes, and an embedded nats-server;
// the ldap scenario a Samba AD domain controller and dirsync-ldap.
// cmd/dirsync-bench runs them and writes BENCHMARKS.md; a test runs each
// at a tiny size so the code cannot rot.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dirsync/dirsync/internal/testenv"
)

// Sizes are the scenario sizes; the flags of cmd/dirsync-bench set them.
type Sizes struct {
	// Users and Groups are the simulated tenant (Groups are all Unified,
	// about 30 members each).
	Users, Groups int
	// Latency is added to every Graph request in the latency scenario.
	Latency time.Duration
	// GrowthUsers is a second, smaller tenant the full sync scenario
	// syncs before the main one (groups in proportion), so that the report
	// shows how the sync's time and memory grow with the tenant; 0: none.
	GrowthUsers int
	// Changes is the number of directory changes before the delta sync.
	Changes int
	// Events are the stream lengths of the rebuild scenario: a daemon's
	// start to ready is measured on each, and projections.Rebuild on the
	// longest up to RebuildMaxEvents (see rebuildLength).
	Events []int
	// Idle is how long the idle scenario watches the daemon.
	Idle time.Duration
	// RestWait makes the rebuild scenario wait, before the restart its
	// target judges, until the stream's writes are older than JetStream's
	// duplicate window (see startOn); without it that restart comes right
	// away, as a smoke test.
	RestWait bool
	// LeaseTTLs are the lease TTLs (daemon { lease_ttl }) the failover
	// scenario kills a replica at, each on a cluster of its own, and
	// Failovers how many times at each.
	LeaseTTLs []time.Duration
	Failovers int
	// LDAPUsers is the size of the Samba AD directory the ldap scenario
	// syncs (a group per 100 users; see ldapDir); its incremental sync
	// follows Changes changes.
	LDAPUsers int
}

// Full is the size the issue sets. The 5,000,000-event stream is left
// out (it adds about 15 minutes and 4 GB of disk); make bench asks for
// it with -events.
func Full() Sizes {
	return Sizes{Users: 100_000, Groups: 5_000, GrowthUsers: 10_000, Latency: 80 * time.Millisecond, Changes: 100,
		Events: []int{100_000, 1_000_000}, Idle: time.Minute, RestWait: true,
		LeaseTTLs: []time.Duration{6 * time.Second, 24 * time.Second}, Failovers: 3, LDAPUsers: 20_000}
}

// Tiny runs every scenario in seconds, for make test.
func Tiny() Sizes {
	return Sizes{Users: 300, Groups: 20, GrowthUsers: 100, Latency: 5 * time.Millisecond, Changes: 10,
		Events: []int{500, 2_000, 5_000}, Idle: 2 * time.Second,
		LeaseTTLs: []time.Duration{3 * time.Second}, Failovers: 1, LDAPUsers: 500}
}

// growth is s at the size of its GrowthUsers tenant: groups in the same
// proportion to users, no second growth step.
func (s Sizes) growth() Sizes {
	g := s
	g.Users, g.GrowthUsers = s.GrowthUsers, 0
	g.Groups = max(1, s.Groups*s.GrowthUsers/max(1, s.Users))
	return g
}

// EventList is s.Events as the -events flag takes it: "100000,1000000".
func (s Sizes) EventList() string {
	parts := make([]string, len(s.Events))
	for i, n := range s.Events {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

// TTLList is s.LeaseTTLs as the -lease-ttls flag takes it: "6s,24s".
func (s Sizes) TTLList() string {
	parts := make([]string, len(s.LeaseTTLs))
	for i, d := range s.LeaseTTLs {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Command is the command line that reproduces a run of scenario only
// (every scenario when empty) at these sizes.
func (s Sizes) Command(only string) string {
	c := fmt.Sprintf("go run ./bench/cmd/dirsync-bench -users %d -groups %d -growth-users %d -latency %s -changes %d -events %s -idle %s",
		s.Users, s.Groups, s.GrowthUsers, s.Latency, s.Changes, s.EventList(), s.Idle)
	if only == "failover" {
		c += fmt.Sprintf(" -lease-ttls %s -failovers %d", s.TTLList(), s.Failovers)
	}
	if only == "ldap" || only == "" {
		c += fmt.Sprintf(" -ldap-users %d", s.LDAPUsers)
	}
	if only != "" {
		c += " -only " + only
	}
	return c
}

// Row is one measured figure beside its floor.
type Row struct {
	// Scenario groups rows, e.g. "full sync".
	Scenario string
	// Metric says what is measured, e.g. "wall time".
	Metric string
	// Value is dirsync's figure and Floor the floor's, in Unit.
	Value, Floor float64
	Unit         string
	// HigherIsBetter is true for rates (events/s): the ratio is then
	// Value/Floor read as "fraction of the floor achieved".
	HigherIsBetter bool
	// Target is the target for the ratio, e.g. "≤ 1.5×" (or for
	// rows without a floor, for the value), and Met whether it is met.
	Target string
	Met    bool
	// Note explains the floor or the figure.
	Note string
	// Command reproduces the row (cmd/dirsync-bench fills it in with
	// the run's sizes and the scenario when a scenario leaves it empty).
	Command string
}

// Ratio is Value/Floor (0 when there is no floor).
func (r Row) Ratio() float64 {
	if r.Floor == 0 {
		return 0
	}
	return r.Value / r.Floor
}

// Env is what the scenarios share: the built binaries and where to put
// temporary files.
type Env struct {
	// Bin holds dirsyncd, dirsync, dirsync-azuread and dirsync-ldap.
	Bin string
	// Dir is a scratch directory, removed by the caller.
	Dir string
	// Log receives progress lines (a long benchmark shows what it does).
	Log io.Writer
}

// Logf prints a progress line.
func (e *Env) Logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// startNATSCluster starts a three-node nats-server cluster on loopback
// for the cluster scenarios (fenced, failover), storing under dir, as
// internal/testenv.StartCluster starts one for the tests: nats-server
// of go.mod's version, from env.Bin when make bin/nats-server put it
// there. The caller closes it.
func startNATSCluster(ctx context.Context, env *Env, dir string) (*testenv.Cluster, error) {
	bin, err := testenv.NATSServerPath(env.Bin, env.Logf)
	if err != nil {
		return nil, err
	}
	return testenv.LaunchCluster(ctx, bin, dir, 3)
}

// Skipped is a scenario's error when it cannot run here (a server it
// needs is not installed): cmd/dirsync-bench says why and goes on
// without failing the run, and the tests skip it.
type Skipped struct {
	// Reason says what is missing and how to install it.
	Reason string
}

func (e *Skipped) Error() string { return "skipped: " + e.Reason }

// Scenario is one benchmark; it returns its rows.
type Scenario struct {
	// Name is the -only flag's value.
	Name string
	Run  func(ctx context.Context, env *Env, s Sizes) ([]Row, error)
}

// Machine describes where the figures were measured.
func Machine() string {
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		mem = strings.Join(strings.Fields(line)[1:], " ")
	}
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d cores (%s), %s memory, %s %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// Table renders rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| scenario | metric | dirsync | floor | ratio | target | met | note |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		floor, ratio := "–", "–"
		if r.Floor != 0 {
			floor = fmt.Sprintf("%s %s", num(r.Floor), r.Unit)
			ratio = fmt.Sprintf("%.2f×", r.Ratio())
		}
		met := "yes"
		if !r.Met {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s | %s | %s | %s |\n", r.Scenario, r.Metric, num(r.Value), r.Unit, floor, ratio, r.Target, met, r.Note)
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e15:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
