package schedule

import (
	"testing"
	"time"
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
