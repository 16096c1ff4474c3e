package schedule

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestNextAcrossDST steps a parsed schedule's Next over both 2026
// changeover days in Europe/Berlin with an injected clock: each row starts
// at from and calls Next on its own result until it has len(want) runs.
// Every instant is UTC. Spring forward: 2026-03-29 01:00Z, 02:00 CET
// becomes 03:00 CEST (02:00-02:59 never happens). Fall back: 2026-10-25
// 01:00Z, 03:00 CEST becomes 02:00 CET (02:00-02:59 happens twice: 00:xxZ
// as CEST, then 01:xxZ as CET).
func TestNextAcrossDST(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, spec, tz, from string
		want                 []string
	}{
		// Spring forward, 2026-03-29.
		{"spring: a time in the skipped hour runs once when the gap ends",
			"30 2 * * *", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"}},
		{"spring: the skipped hour's first minute",
			"0 2 * * *", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}},
		{"spring: from the last second before the gap",
			"30 2 * * *", "Europe/Berlin", "2026-03-29T00:59:59.5Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		{"spring: several skipped times and the gap's end coalesce into one run",
			"0,30 2,3 * * *", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"}},
		{"spring: times around the gap are untouched",
			"30 1,3 * * *", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T23:30:00Z"}},
		{"spring: a step spec limited to some hours runs once for its skipped times",
			"*/20 1-3 * * *", "Europe/Berlin", "2026-03-28T23:50:00Z",
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T00:20:00Z", "2026-03-29T00:40:00Z",
				"2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z", "2026-03-29T01:40:00Z",
				"2026-03-29T23:00:00Z"}},
		{"spring: hourly runs once per real hour",
			"0 * * * *", "Europe/Berlin", "2026-03-28T22:30:00Z",
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}},
		{"spring: hourly at :30 runs once per real hour, no extra run when the gap ends",
			"30 * * * *", "Europe/Berlin", "2026-03-28T23:00:00Z",
			[]string{"2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},
		{"spring: every 15 minutes runs every 15 real minutes",
			"*/15 * * * *", "Europe/Berlin", "2026-03-29T00:20:00Z",
			[]string{"2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}},
		{"spring: @daily is midnight, away from the gap",
			"@daily", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"}},
		{"spring: @every is an interval, blind to the zone",
			"@every 1h", "Europe/Berlin", "2026-03-29T00:30:00Z",
			[]string{"2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"}},

		// Fall back, 2026-10-25.
		{"fall: a time in the repeated hour runs once, at its first pass",
			"30 2 * * *", "Europe/Berlin", "2026-10-24T22:00:00Z",
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"}},
		{"fall: the repeated hour's first minute",
			"0 2 * * *", "Europe/Berlin", "2026-10-24T22:00:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"}},
		{"fall: from inside the second pass, the time already ran",
			"30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z",
			[]string{"2026-10-26T01:30:00Z"}},
		{"fall: from the second pass's first second",
			"0 2 * * *", "Europe/Berlin", "2026-10-25T00:59:59.5Z",
			[]string{"2026-10-26T01:00:00Z"}},
		{"fall: times around the repeated hour are untouched",
			"30 1,3 * * *", "Europe/Berlin", "2026-10-24T22:00:00Z",
			[]string{"2026-10-24T23:30:00Z", "2026-10-25T02:30:00Z", "2026-10-26T00:30:00Z"}},
		{"fall: several times in and after the repeated hour",
			"0,30 2,3 * * *", "Europe/Berlin", "2026-10-24T23:00:00Z",
			[]string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z",
				"2026-10-25T02:30:00Z", "2026-10-26T01:00:00Z"}},
		{"fall: a step spec limited to some hours runs its repeated times once",
			"*/20 1-3 * * *", "Europe/Berlin", "2026-10-24T22:50:00Z",
			[]string{"2026-10-24T23:00:00Z", "2026-10-24T23:20:00Z", "2026-10-24T23:40:00Z",
				"2026-10-25T00:00:00Z", "2026-10-25T00:20:00Z", "2026-10-25T00:40:00Z",
				"2026-10-25T02:00:00Z", "2026-10-25T02:20:00Z", "2026-10-25T02:40:00Z",
				"2026-10-26T00:00:00Z"}},
		{"fall: hourly runs once per real hour, both passes of 02:00",
			"0 * * * *", "Europe/Berlin", "2026-10-24T22:30:00Z",
			[]string{"2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}},
		{"fall: every 15 minutes runs every 15 real minutes",
			"*/15 * * * *", "Europe/Berlin", "2026-10-25T00:40:00Z",
			[]string{"2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z", "2026-10-25T01:30:00Z",
				"2026-10-25T01:45:00Z", "2026-10-25T02:00:00Z"}},
		{"fall: @daily is midnight, away from the repeated hour",
			"@daily", "Europe/Berlin", "2026-10-24T21:00:00Z",
			[]string{"2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"}},
		{"fall: @every is an interval, blind to the zone",
			"@every 1h", "Europe/Berlin", "2026-10-25T00:30:00Z",
			[]string{"2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"}},

		// The rules are the zone's, not Berlin's: Santiago skips midnight
		// (2026-09-06 00:00 -04 becomes 01:00 -03), so @daily runs at 01:00.
		{"a zone whose gap is at midnight",
			"@daily", "America/Santiago", "2026-09-05T03:00:00Z",
			[]string{"2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z"}},
		{"a zone without DST",
			"30 2 * * *", "UTC", "2026-03-28T22:00:00Z",
			[]string{"2026-03-29T02:30:00Z", "2026-03-30T02:30:00Z"}},
		{"a spec that never matches",
			"0 0 30 2 *", "Europe/Berlin", "2026-03-28T22:00:00Z",
			[]string{"0001-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sched, _, err := parse(tt.spec, tt.tz, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			now, err := time.Parse(time.RFC3339Nano, tt.from)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, 0, len(tt.want))
			for range tt.want {
				next := sched.Next(now)
				got = append(got, next.UTC().Format(time.RFC3339))
				if next.IsZero() {
					break
				}
				if !next.After(now) {
					t.Errorf("Next(%v) = %v, not after", now, next)
					break
				}
				now = next
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%q in %s from %s: runs %v; want %v", tt.spec, tt.tz, tt.from, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("%q in %s from %s: runs %v; want %v", tt.spec, tt.tz, tt.from, got, tt.want)
				}
			}
		})
	}
}

// TestNextMatchesRule checks Next against the rules restated one instant
// at a time, over every 2026 transition of zones with different shapes
// (Berlin and New York: one hour at 02:00; Santiago: midnight; Lord Howe:
// 30 minutes), each from a day before to a day after. The instant u runs
// when the spec matches its wall clock and that wall time did not happen
// before (unless the hour field is every hour), or when u ends a gap in
// which the spec matches a wall time (unless every hour).
func TestNextMatchesRule(t *testing.T) {
	t.Parallel()
	specs := []string{
		"30 2 * * *", "0 2 * * *", "0 1 * * *", "59 23 * * *", "@daily",
		"*/20 1-3 * * *", "15,45 1,2 * * *", "* 2 * * *", "0 */2 * * *", "0 0 * * 0",
		"0 * * * *", "30 * * * *", "*/15 * * * *", "@hourly",
	}
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		transitions := transitionsIn2026(loc)
		if len(transitions) != 2 {
			t.Fatalf("%s: transitions in 2026 = %v; want 2", zone, transitions)
		}
		for _, spec := range specs {
			sched, _, err := parse(spec, zone, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range transitions {
				from, to := tr.Add(-30*time.Hour), tr.Add(30*time.Hour)
				want := ruleRuns(t, spec, loc, from, to)
				var got []time.Time
				for now := sched.Next(from); now.Before(to); now = sched.Next(now) {
					got = append(got, now)
				}
				if !equalInstants(got, want) {
					t.Errorf("%q in %s around %v:\n got  %v\n want %v", spec, zone, tr.UTC(), utc(got), utc(want))
					continue
				}
				for _, r := range want {
					if n := sched.Next(r.Add(-1500 * time.Millisecond)); !n.Equal(r) {
						t.Errorf("%q in %s: Next(%v) = %v; want %v", spec, zone, r.Add(-1500*time.Millisecond).UTC(), n.UTC(), r.UTC())
					}
				}
			}
		}
	}
}

// transitionsIn2026 returns the instants in 2026 at which loc's UTC
// offset changes.
func transitionsIn2026(loc *time.Location) []time.Time {
	var out []time.Time
	end2026 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for u := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC); ; {
		_, end := u.In(loc).ZoneBounds()
		if end.IsZero() || !end.Before(end2026) {
			return out
		}
		_, before := end.Add(-time.Second).In(loc).Zone()
		if _, after := end.In(loc).Zone(); after != before {
			out = append(out, end)
		}
		u = end
	}
}

// ruleRuns returns the runs of spec in loc in (from, to), minute by
// minute, by the rules of wallSchedule stated per instant.
func ruleRuns(t *testing.T, spec string, loc *time.Location, from, to time.Time) []time.Time {
	t.Helper()
	parsed, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	onWall := *parsed.(*cron.SpecSchedule)
	onWall.Location = time.UTC
	matches := func(wall time.Time) bool { return onWall.Next(wall.Add(-time.Second)).Equal(wall) }
	hourly := onWall.Hour&allHours == allHours
	offset := func(u time.Time) int { _, off := u.In(loc).Zone(); return off }

	var runs []time.Time
	for u := from.Truncate(time.Minute).Add(time.Minute); u.Before(to); u = u.Add(time.Minute) {
		off := offset(u)
		wall := wallClock(u, off)
		// The same wall time at an earlier instant, under the offset of
		// three hours before (the transitions here are days apart).
		prevOff := offset(u.Add(-3 * time.Hour))
		e := time.Unix(wall.Unix()-int64(prevOff), 0)
		earlier := prevOff != off && e.Before(u) && offset(e) == prevOff
		run := matches(wall) && (hourly || !earlier)
		if prev := offset(u.Add(-time.Second)); !hourly && prev < off {
			for g := wallClock(u, prev); g.Before(wall); g = g.Add(time.Minute) {
				run = run || matches(g)
			}
		}
		if run {
			runs = append(runs, u)
		}
	}
	return runs
}

func equalInstants(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func utc(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, u := range ts {
		out[i] = u.UTC().Format("01-02T15:04Z")
	}
	return out
}
