// Command dirsync-bench runs the dirsync benchmarks (see package bench)
// and writes their table, with the machine and the reproducing commands,
// to BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dirsync/dirsync/bench"
)

func main() { os.Exit(run()) }

func run() int {
	full := bench.Full()
	var s bench.Sizes
	size := flag.String("size", "full", "preset: full (the issue's sizes, about 10 minutes; make bench adds a 5000000-event stream, about 15 more) or tiny (seconds); the flags below override it")
	users := flag.Int("users", 0, "simulated tenant users (full: 100000)")
	groups := flag.Int("groups", 0, "simulated Microsoft 365 groups, about 30 members each (full: 5000)")
	latency := flag.Duration("latency", 0, "Graph round trip added in the latency scenario (full: 80ms)")
	changes := flag.Int("changes", 0, "directory changes before the delta sync (full: 100)")
	growth := flag.Int("growth-users", -1, "a smaller tenant the full sync scenario also syncs, groups in proportion, to show how the sync grows; 0 for none (full: 10000)")
	evs := flag.String("events", "", "comma-separated stream lengths of the rebuild scenario: start to ready on each, projections.Rebuild on the longest up to 1000000 (full: 100000,1000000; make bench adds 5000000)")
	idle := flag.Duration("idle", 0, "how long the idle scenario watches (full: 1m)")
	ttls := flag.String("lease-ttls", "", "comma-separated lease TTLs (daemon { lease_ttl }, 3s to 5m) the failover scenario kills the holder at (full: 6s,24s)")
	failovers := flag.Int("failovers", 0, "kills at each lease TTL in the failover scenario (full: 3)")
	ldapUsers := flag.Int("ldap-users", 0, "users of the Samba AD directory the ldap scenario syncs, a group per 100 (full: 20000)")
	only := flag.String("only", "", "comma-separated scenarios to run (default all): "+names())
	bin := flag.String("bin", "bin", "folder with dirsyncd, dirsync, dirsync-azuread and dirsync-ldap (make build)")
	out := flag.String("out", "BENCHMARKS.md", "Markdown report to write; - for none. With -only, the rows of the scenarios run replace theirs in an existing report, and the other rows stay")
	flag.Parse()
	switch *size {
	case "full":
		s = full
	case "tiny":
		s = bench.Tiny()
	default:
		fmt.Fprintf(os.Stderr, "dirsync-bench: -size %q: use full or tiny\n", *size)
		return 2
	}
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	set(&s.Users, *users)
	set(&s.Groups, *groups)
	set(&s.Changes, *changes)
	if *growth >= 0 {
		s.GrowthUsers = *growth
	}
	if *evs != "" {
		list, err := eventList(*evs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dirsync-bench: -events %q: %v\n", *evs, err)
			return 2
		}
		s.Events = list
	}
	if *ttls != "" {
		list, err := ttlList(*ttls)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dirsync-bench: -lease-ttls %q: %v\n", *ttls, err)
			return 2
		}
		s.LeaseTTLs = list
	}
	set(&s.Failovers, *failovers)
	set(&s.LDAPUsers, *ldapUsers)
	if *latency > 0 {
		s.Latency = *latency
	}
	if *idle > 0 {
		s.Idle = *idle
	}
	binDir, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(filepath.Join(binDir, "dirsync-azuread"))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dirsync-bench: %v: run `make build` first, or pass -bin\n", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "dirsync-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dirsync-bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	env := &bench.Env{Bin: binDir, Dir: tmp, Log: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var rows []bench.Row
	var ran []string
	failed := false
	started := time.Now()
	for _, sc := range bench.Scenarios() {
		if *only != "" && !contains(strings.Split(*only, ","), sc.Name) {
			continue
		}
		env.Logf(">> %s", sc.Name)
		dir, err := os.MkdirTemp(tmp, sc.Name+"-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "dirsync-bench:", err)
			return 1
		}
		e := *env
		e.Dir = dir
		r, err := sc.Run(ctx, &e, s)
		if skip := (*bench.Skipped)(nil); errors.As(err, &skip) {
			env.Logf("-- %s skipped: %s", sc.Name, skip.Reason)
			continue
		}
		if err != nil {
			env.Logf("!! %s failed: %v", sc.Name, err)
			failed = true
			continue
		}
		for i := range r {
			if r[i].Command == "" {
				r[i].Command = s.Command(sc.Name)
			}
		}
		rows = append(rows, r...)
		ran = append(ran, sc.Name)
		_ = os.RemoveAll(dir)
	}
	table := bench.Table(rows)
	fmt.Println(table)
	if *out != "-" && len(rows) > 0 {
		text := report(s, rows, table, time.Since(started))
		what := "wrote"
		if old, err := os.ReadFile(*out); err == nil && *only != "" {
			// A partial run: its scenarios' rows replace theirs, and
			// the report keeps the others (a full run takes half an hour).
			text, err = merge(string(old), ran, rows, time.Now(), time.Since(started))
			if err != nil {
				fmt.Fprintf(os.Stderr, "dirsync-bench: %s: %v; -out FILE writes this run's rows alone\n", *out, err)
				return 1
			}
			what = fmt.Sprintf("updated the rows of %s in", strings.Join(ran, ", "))
		}
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "dirsync-bench:", err)
			return 1
		}
		env.Logf("%s %s", what, *out)
	}
	if failed {
		return 1
	}
	return 0
}

func report(s bench.Sizes, rows []bench.Row, table string, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# dirsync benchmarks\n\nWritten by `make bench` (`go run ./bench/cmd/dirsync-bench`) on %s, in %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s.\n\n", bench.Machine())
	fmt.Fprintf(&b, "Sizes: %d users, %d Unified groups (about 30 members each), the full sync also at %d users, %s Graph latency in the latency scenario, %d changes before the delta sync, streams of %s events in the rebuild scenario, %s idle, failovers at lease_ttl %s (%d kills each), a Samba AD directory of %d users (a group per 100) in the ldap scenario, changed %d times before its incremental sync.\n\n",
		s.Users, s.Groups, s.GrowthUsers, s.Latency, s.Changes, s.EventList(), s.Idle, s.TTLList(), s.Failovers, s.LDAPUsers, s.Changes)
	b.WriteString("Every floor is measured in the same run, on the same machine, against the same graphsim, NATS server or Samba DC. The ratio is dirsync ÷ floor: for times and sizes lower is better; for rates (events/s) it is the fraction of the floor's rate reached.\n\n")
	b.WriteString(table)
	b.WriteString("\n## Reproduce a row\n\n")
	for _, l := range reproduceLines(rows) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// reproduceLines are the report's "Reproduce a row" list: one line per
// command, naming every scenario it reproduces (the rebuild row and the
// start rows of its stream share one).
func reproduceLines(rows []bench.Row) []string {
	var commands []string
	labels := map[string][]string{}
	for _, r := range rows {
		if _, ok := labels[r.Command]; !ok {
			commands = append(commands, r.Command)
		}
		if !slices.Contains(labels[r.Command], r.Scenario) {
			labels[r.Command] = append(labels[r.Command], r.Scenario)
		}
	}
	lines := make([]string, len(commands))
	for i, c := range commands {
		lines[i] = fmt.Sprintf("- %s: `%s`", strings.Join(labels[c], "; "), c)
	}
	return lines
}

// eventList parses -events: positive counts separated by commas.
func eventList(v string) ([]int, error) {
	var list []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a count: %w", f, err)
		}
		if n < 100 {
			return nil, fmt.Errorf("%d events: at least 100 (a full sync and its job states)", n)
		}
		list = append(list, n)
	}
	return list, nil
}

// ttlList parses -lease-ttls: durations within daemon { lease_ttl }'s
// bounds, separated by commas.
func ttlList(v string) ([]time.Duration, error) {
	var list []time.Duration
	for _, f := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if d < 3*time.Second || d > 5*time.Minute {
			return nil, fmt.Errorf("%s: lease_ttl takes 3s to 5m", d)
		}
		list = append(list, d)
	}
	return list, nil
}

func names() string {
	var n []string
	for _, s := range bench.Scenarios() {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}
