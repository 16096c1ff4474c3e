package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/bench"
)

// A partial run's rows replace the rows of its scenario only, and its
// command; the other rows, their commands and the hand-written sections
// stay, and a second partial run of the same scenario replaces the
// first's header line instead of adding one.
func TestMergeReplacesOnlyTheScenariosRun(t *testing.T) {
	s := bench.Tiny()
	row := func(scenario, metric, only string, v float64) bench.Row {
		return bench.Row{Scenario: scenario, Metric: metric, Value: v, Unit: "s", Target: "< 1 s", Met: true, Command: s.Command(only)}
	}
	old := []bench.Row{
		row("full sync, 100 users / 5 groups", "wall time", "full", 1),
		row("full sync, 300 users / 20 groups", "wall time", "full", 2),
		row("LDAP full sync, 500 users / 5 groups", "wall time", "ldap", 3),
		row("idle", "CPU", "idle", 4),
	}
	text := report(s, old, bench.Table(old), time.Minute) + "\n## Notes by hand\n\nkept as written.\n"

	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ldap := []bench.Row{
		row("LDAP full sync, 600 users / 6 groups", "wall time", "ldap", 5),
		row("LDAP incremental sync, 10 changes", "wall time", "ldap", 6),
	}
	got, err := merge(text, []string{"ldap"}, ldap, at, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| full sync, 100 users / 5 groups | wall time | 1 s |",
		"| full sync, 300 users / 20 groups | wall time | 2 s |",
		"- LDAP full sync, 600 users / 6 groups; LDAP incremental sync, 10 changes: `" + s.Command("ldap") + "`",
		"- idle: `" + s.Command("idle") + "`",
		"The rows of `-only ldap` were measured later, on 2026-12-05 10:00 UTC, by a run of that scenario alone (1m30s).",
		"## Notes by hand\n\nkept as written.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the merged report lacks %q:\n%s", want, got)
		}
	}
	// Where the replaced row was, before the rows after it.
	a, b, c := strings.Index(got, "| LDAP full sync, 600"), strings.Index(got, "| LDAP incremental sync, 10"), strings.Index(got, "| idle |")
	if a < 0 || !(a < b && b < c) {
		t.Errorf("the new rows are not where the replaced one was:\n%s", got)
	}
	if strings.Contains(got, "500 users / 5 groups") {
		t.Errorf("the merged report keeps the replaced row:\n%s", got)
	}

	again, err := merge(got, []string{"ldap"}, ldap[:1], at.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(again, "were measured later"); n != 1 {
		t.Errorf("%d \"measured later\" lines after a second partial run, want 1:\n%s", n, again)
	}
	if strings.Contains(again, "LDAP incremental sync") || !strings.Contains(again, "11:00 UTC") {
		t.Errorf("the second partial run's rows did not replace the first's:\n%s", again)
	}

	if _, err := merge("# some other file\n", []string{"ldap"}, ldap, at, time.Minute); err == nil {
		t.Error("merged into a file that is no report")
	}
}
