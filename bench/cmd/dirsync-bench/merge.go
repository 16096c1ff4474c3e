package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dirsync/dirsync/bench"
)

// A partial run (-only) must not drop the rows it did not measure: a
// full run takes half an hour. merge puts its rows into the report
// already written, in place of the rows of the same scenarios, which the
// report's "Reproduce a row" list names (each line's command ends in
// -only SCENARIO), and says beside the report's date when these rows
// were measured. Everything else in the report is kept as it is,
// hand-written sections too.

// merge returns the report old with the rows and reproducing commands of
// the scenarios ran replaced by rows' (put where the old ones were, or
// at the end), and a line after old's "Written by" line per scenario
// saying when its rows were measured, at, in a run that took took.
func merge(old string, ran []string, rows []bench.Row, at time.Time, took time.Duration) (string, error) {
	lines := strings.Split(old, "\n")
	head := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "| scenario | metric |") })
	repro := slices.Index(lines, "## Reproduce a row")
	written := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Written by ") })
	if head < 0 || repro < head || written < 0 || written > head {
		return "", errors.New(`not a dirsync-bench report (no "Written by" line, table of rows, or "## Reproduce a row" after it)`)
	}
	// Which scenario each row label belongs to, from the commands.
	owner := map[string]string{}
	for _, l := range lines[repro+1:] {
		labels, name, ok := reproduceLine(l)
		if !ok {
			continue
		}
		for _, label := range labels {
			owner[label] = name
		}
	}
	replaced := func(name string) bool { return slices.Contains(ran, name) }

	var out []string
	// The header, with this run's lines after "Written by".
	for i, l := range lines[:head+2] {
		if i > written && slices.ContainsFunc(ran, func(n string) bool { return strings.HasPrefix(l, measuredLater(n)) }) {
			continue // an earlier partial run of a scenario run again
		}
		out = append(out, l)
		if i == written {
			for _, n := range ran {
				out = append(out, fmt.Sprintf("%s on %s, by a run of that scenario alone (%s).",
					measuredLater(n), at.UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second)))
			}
		}
	}
	// The table.
	newRows := strings.Split(strings.TrimSuffix(bench.Table(rows), "\n"), "\n")[2:]
	end := head + 2
	for end < len(lines) && strings.HasPrefix(lines[end], "|") {
		end++
	}
	out = spliceOwned(out, lines[head+2:end], newRows, func(l string) bool {
		label := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(l, " | ", 2)[0], "|"))
		return replaced(owner[label])
	})
	out = append(out, lines[end:repro+1]...)
	// The list of commands.
	start := repro + 1
	for start < len(lines) && !strings.HasPrefix(lines[start], "- ") {
		out = append(out, lines[start])
		start++
	}
	stop := start
	for stop < len(lines) && strings.HasPrefix(lines[stop], "- ") {
		stop++
	}
	out = spliceOwned(out, lines[start:stop], reproduceLines(rows), func(l string) bool {
		_, name, ok := reproduceLine(l)
		return ok && replaced(name)
	})
	out = append(out, lines[stop:]...)
	return strings.Join(out, "\n"), nil
}

// measuredLater starts the header line that dates a scenario's rows
// measured by a partial run.
func measuredLater(scenario string) string {
	return fmt.Sprintf("The rows of `-only %s` were measured later,", scenario)
}

// spliceOwned appends to out the lines of old, leaving out those replace
// says belong to this run, and puts add where the first of those was,
// or after the last line when none was.
func spliceOwned(out, old, add []string, replace func(string) bool) []string {
	done := false
	for _, l := range old {
		if !replace(l) {
			out = append(out, l)
			continue
		}
		if !done {
			out = append(out, add...)
			done = true
		}
	}
	if !done {
		out = append(out, add...)
	}
	return out
}

// reproduceLine reads a "Reproduce a row" line, "- label; label:
// `command`": the row labels and the scenario its -only names.
func reproduceLine(l string) (labels []string, scenario string, ok bool) {
	rest, found := strings.CutPrefix(l, "- ")
	i := strings.LastIndex(rest, ": `")
	if !found || i < 0 {
		return nil, "", false
	}
	fields := strings.Fields(strings.Trim(rest[i+2:], "`"))
	j := slices.Index(fields, "-only")
	if j < 0 || j+1 >= len(fields) {
		return nil, "", false
	}
	return strings.Split(rest[:i], "; "), fields[j+1], true
}
