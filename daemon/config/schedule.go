package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/robfig/cron/v3"
)

// scheduleHint ends every schedule error.
const scheduleHint = `use a cron expression like "*/30 * * * *" or a descriptor like "@every 30m" or "@daily"`

// checkSpec reports what is wrong with a schedule spec (already trimmed)
// in loc, or nil: a standard five-field cron expression (minute first, no
// seconds field) or a descriptor (@hourly, @daily, @weekly, @monthly,
// @yearly, @every DURATION of at least 1s) as robfig/cron/v3 parses it,
// that fires at least once in the next five years.
func checkSpec(spec string, loc *time.Location) error {
	if spec == "" {
		return fmt.Errorf("schedule is empty; %s, or remove the line (no automatic sync)", scheduleHint)
	}
	// cron reads a "TZ=zone " or "CRON_TZ=zone " prefix itself (and panics
	// on one without a following space): the zone belongs in timezone.
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		zone, _, _ := strings.Cut(spec[strings.Index(spec, "=")+1:], " ")
		return fmt.Errorf("schedule %q: put the time zone in timezone = %q, not in the schedule", spec, zone)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		hint := ""
		if !strings.HasPrefix(spec, "@") && len(strings.Fields(spec)) == 6 {
			hint = " (minute first; there is no seconds field)"
		}
		return fmt.Errorf("schedule %q: %w%s; %s", spec, err, hint, scheduleHint)
	}
	if every, isEvery := strings.CutPrefix(spec, "@every "); isEvery {
		// cron runs shorter (even negative) intervals every second.
		if d, err := time.ParseDuration(every); err == nil && d < time.Second {
			return fmt.Errorf("schedule %q: the interval must be at least 1s; %s", spec, scheduleHint)
		}
	}
	if s, isSpec := sched.(*cron.SpecSchedule); isSpec {
		s.Location = loc
		if s.Next(time.Now()).IsZero() {
			return fmt.Errorf("schedule %q never fires (no matching date within five years); %s", spec, scheduleHint)
		}
	}
	return nil
}

// schedule parses a connector's schedule and timezone attributes.
func (ps *parser) schedule(cn *Connector, attrs map[string]*hclsyntax.Attribute) {
	where := fmt.Sprintf("connector %q", cn.Name)
	spec, specSet, specOK := ps.str(attrs, "schedule", where)
	spec = strings.TrimSpace(spec)
	zone, zoneSet, zoneOK := ps.str(attrs, "timezone", where)

	loc := time.Local
	zoneGood := false
	if zoneOK && zoneSet {
		pos := attrs["timezone"].Expr.Range().Start
		if zone == "" {
			ps.at(pos, "connector %q: timezone is empty; give an IANA name such as \"Europe/Berlin\" or \"UTC\", or remove the line for the daemon's local time", cn.Name)
		} else if l, err := time.LoadLocation(zone); err != nil {
			ps.at(pos, "connector %q: timezone %q: %v; use an IANA name such as \"Europe/Berlin\" or \"UTC\"", cn.Name, zone, err)
		} else {
			loc, zoneGood = l, true
		}
	}
	if zoneSet && !specSet && specOK {
		ps.at(attrs["timezone"].NameRange.Start, "connector %q: timezone applies only to schedule, which is not set; add a schedule or remove timezone", cn.Name)
		return
	}
	if !specOK || !specSet {
		return
	}
	if err := checkSpec(spec, loc); err != nil {
		ps.at(attrs["schedule"].Expr.Range().Start, "connector %q: %v", cn.Name, err)
		return
	}
	cn.Schedule = spec
	if zoneGood {
		cn.Timezone = zone
	}
}
