package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// wallSchedule runs a five-field cron spec on a time zone's wall clock
// with the daylight-saving rules the README promises. robfig/cron/v3's
// SpecSchedule.Next steps through instants, so a cron time in a skipped
// hour never fires that day (robfig/cron#541) and one in a repeated hour
// fires at both passes. Here:
//
//   - A wall-clock time that never happens (spring forward: 02:00-02:59 on
//     2026-03-29 in Europe/Berlin) runs once, at the first instant after
//     the gap (03:00 CEST). The gap's end is the earliest the run can
//     happen, it is the same instant for every minute of the gap (so
//     "0,30 2 * * *" runs once, not twice, and not again at 03:00 when
//     the spec also names 03:00), and it is what ISC cron does.
//   - A wall-clock time that happens twice (fall back: 02:00-02:59 on
//     2026-10-25) runs once, at its first pass (CEST), as ISC cron does:
//     the second pass repeats times that already ran (also for a daemon
//     started during the second pass: Next is a function of the time).
//   - A spec whose hour field is every hour ("0 * * * *", "*/15 * * * *",
//     @hourly) is exempt from both: it means "every hour", so it runs once
//     per real hour: a 23-hour day has 23 hourly runs, a 25-hour day 25
//     (02:00 CEST and 02:00 CET), and the 02:30 that never happened is not
//     made up at 03:00, because 03:30 comes an hour after 01:30 anyway.
//     Folding the repeated hour would leave a two-hour hole in an hourly
//     sync; a sync is safe to run again. ISC cron likewise leaves its
//     wildcard jobs on real time; unlike ISC cron, a `*` in the minute
//     field alone ("* 2 * * *") keeps the two rules, since that spec still
//     names one wall-clock hour a day.
//
// Everything else is cron's own matching: the spec, with its Location
// set to UTC, steps through wall-clock times (UTC has no DST), and each
// wall time is placed on the timeline with the offset of the zone period
// (ZoneBounds) it falls in.
type wallSchedule struct {
	wall   *cron.SpecSchedule // the spec on a DST-free clock: wall-clock times as UTC
	loc    *time.Location
	hourly bool // the hour field matches all 24 hours
}

// allHours is the Hour bits of a spec that matches every hour.
const allHours = 1<<24 - 1

// newWallSchedule returns spec, read on loc's wall clock. spec is not
// changed.
func newWallSchedule(spec *cron.SpecSchedule, loc *time.Location) *wallSchedule {
	wall := *spec
	wall.Location = time.UTC
	return &wallSchedule{wall: &wall, loc: loc, hourly: spec.Hour&allHours == allHours}
}

// Next implements cron.Schedule: the first run strictly after t, in
// whole seconds and in t's location, or the zero time when the spec
// matches nothing within cron's five-year horizon.
//
// It walks the zone's periods of constant UTC offset from t on. In each
// it finds the first wall-clock time the spec matches at or after the
// period's (or t's) wall clock; if that time lies beyond the period, the
// search goes on in the next one. The gap before a period and the repeat
// at its start are the two DST rules above.
func (w *wallSchedule) Next(t time.Time) time.Time {
	from := time.Unix(t.Unix()+1, 0) // runs fall on whole seconds, after t
	for {
		in := from.In(w.loc)
		_, off := in.Zone()
		start, end := in.ZoneBounds() // zero: the period has no start or no end
		prev := off
		if !start.IsZero() {
			_, prev = start.Add(-time.Second).In(w.loc).Zone()
		}
		if !w.hourly && from.Equal(start) && off > prev {
			// The wall times [start+prev, start+off) never happened: if
			// the spec names any of them, that is one run, now.
			gap := wallClock(start, prev)
			if m := w.wall.Next(gap.Add(-time.Second)); !m.IsZero() && m.Before(wallClock(start, off)) {
				return start.In(t.Location())
			}
		}
		if repeatEnd := start.Add(time.Duration(prev-off) * time.Second); !w.hourly && off < prev && from.Before(repeatEnd) {
			// [start, repeatEnd) shows again the wall times the previous
			// period ended with; they ran then.
			from = repeatEnd
			continue
		}
		m := w.wall.Next(wallClock(from, off).Add(-time.Second))
		if m.IsZero() {
			return time.Time{}
		}
		if run := time.Unix(m.Unix()-int64(off), 0); end.IsZero() || run.Before(end) {
			return run.In(t.Location())
		}
		from = end
	}
}

// wallClock returns the wall-clock time of u at UTC offset off seconds,
// as a UTC time: the clock that the UTC copy of the spec steps through.
func wallClock(u time.Time, off int) time.Time {
	return time.Unix(u.Unix()+int64(off), 0).UTC()
}
