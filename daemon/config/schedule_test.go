package config

import (
	"testing"
)

// scheduleFile is a file whose connector "demo" holds lines, starting on
// line 6 at column 3.
func scheduleFile(lines string) string {
	return "plugin \"a\" {\n  path = \"x\"\n}\nconnector \"demo\" {\n  plugin = \"a\"\n  " + lines + "\n}\n"
}

func TestSchedule(t *testing.T) {
	tests := []struct{ lines, schedule, timezone string }{
		{"", "", ""},
		{`schedule = null`, "", ""},
		{`schedule = "*/30 * * * *"`, "*/30 * * * *", ""},
		{`schedule = "0 3 * * 1-5"`, "0 3 * * 1-5", ""},
		{`schedule = "0 3 * * MON-FRI"`, "0 3 * * MON-FRI", ""},
		{`schedule = " 15 2 1 JAN * "`, "15 2 1 JAN *", ""},
		{`schedule = "@every 30m"`, "@every 30m", ""},
		{`schedule = "@every 1h30m"`, "@every 1h30m", ""},
		{`schedule = "@every 1s"`, "@every 1s", ""},
		{`schedule = "@hourly"`, "@hourly", ""},
		{`schedule = "@daily"`, "@daily", ""},
		{`schedule = "@midnight"`, "@midnight", ""},
		{`schedule = "@weekly"`, "@weekly", ""},
		{`schedule = "@monthly"`, "@monthly", ""},
		{`schedule = "@yearly"`, "@yearly", ""},
		{`schedule = "@annually"`, "@annually", ""},
		{`schedule = "0 0 29 2 *"`, "0 0 29 2 *", ""},
		{"schedule = \"0 3 * * *\"\n  timezone = \"Europe/Berlin\"", "0 3 * * *", "Europe/Berlin"},
		{"schedule = \"@daily\"\n  timezone = \"UTC\"", "@daily", "UTC"},
		{"schedule = \"@every 5m\"\n  timezone = \"America/New_York\"", "@every 5m", "America/New_York"},
		{"schedule = \"@daily\"\n  timezone = null", "@daily", ""},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			c, err := Parse([]byte(scheduleFile(tt.lines)), "plugins.hcl")
			if err != nil {
				t.Fatal(err)
			}
			cn := c.Connectors[0]
			if cn.Schedule != tt.schedule || cn.Timezone != tt.timezone {
				t.Errorf("Schedule, Timezone = %q, %q; want %q, %q", cn.Schedule, cn.Timezone, tt.schedule, tt.timezone)
			}
		})
	}
}

func TestScheduleErrors(t *testing.T) {
	const hint = `; use a cron expression like "*/30 * * * *" or a descriptor like "@every 30m" or "@daily"`
	tests := []struct{ lines, want string }{
		// schedule's value is at column 14.
		{`schedule = "@every 0x"`, `6:14: connector "demo": schedule "@every 0x": failed to parse duration @every 0x: time: unknown unit "x" in duration "0x"` + hint},
		{`schedule = "@every 0s"`, `6:14: connector "demo": schedule "@every 0s": the interval must be at least 1s` + hint},
		{`schedule = "@every 500ms"`, `6:14: connector "demo": schedule "@every 500ms": the interval must be at least 1s` + hint},
		{`schedule = "@every -5m"`, `6:14: connector "demo": schedule "@every -5m": the interval must be at least 1s` + hint},
		{`schedule = "@every"`, `6:14: connector "demo": schedule "@every": unrecognized descriptor: @every` + hint},
		{`schedule = "@reboot"`, `6:14: connector "demo": schedule "@reboot": unrecognized descriptor: @reboot` + hint},
		{`schedule = "0 */5 * * * *"`, `6:14: connector "demo": schedule "0 */5 * * * *": expected exactly 5 fields, found 6: [0 */5 * * * *] (minute first; there is no seconds field)` + hint},
		{`schedule = "*/30 * * *"`, `6:14: connector "demo": schedule "*/30 * * *": expected exactly 5 fields, found 4: [*/30 * * *]` + hint},
		{`schedule = "61 * * * *"`, `6:14: connector "demo": schedule "61 * * * *": end of range (61) above maximum (59): 61` + hint},
		{`schedule = "0 3 * * FUNDAY"`, `6:14: connector "demo": schedule "0 3 * * FUNDAY": failed to parse int from FUNDAY: strconv.Atoi: parsing "FUNDAY": invalid syntax` + hint},
		{`schedule = "daily"`, `6:14: connector "demo": schedule "daily": expected exactly 5 fields, found 1: [daily]` + hint},
		{`schedule = "0 0 30 2 *"`, `6:14: connector "demo": schedule "0 0 30 2 *" never fires (no matching date within five years)` + hint},
		{`schedule = ""`, `6:14: connector "demo": schedule is empty` + hint + `, or remove the line (no automatic sync)`},
		{`schedule = "CRON_TZ=Europe/Berlin 0 3 * * *"`, `6:14: connector "demo": schedule "CRON_TZ=Europe/Berlin 0 3 * * *": put the time zone in timezone = "Europe/Berlin", not in the schedule`},
		{`schedule = "TZ=UTC"`, `6:14: connector "demo": schedule "TZ=UTC": put the time zone in timezone = "UTC", not in the schedule`},
		{`schedule = 30`, `6:14: schedule in connector "demo" must be a string, got a number`},
		{`schedule = ["@daily"]`, `6:14: schedule in connector "demo" must be a string, got a list`},
		// timezone's value is at column 14 on line 7.
		{"schedule = \"@daily\"\n  timezone = \"Europe/Berlln\"", `7:14: connector "demo": timezone "Europe/Berlln": unknown time zone Europe/Berlln; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{"schedule = \"@daily\"\n  timezone = \"CET+1\"", `7:14: connector "demo": timezone "CET+1": unknown time zone CET+1; use an IANA name such as "Europe/Berlin" or "UTC"`},
		{"schedule = \"@daily\"\n  timezone = \"\"", `7:14: connector "demo": timezone is empty; give an IANA name such as "Europe/Berlin" or "UTC", or remove the line for the daemon's local time`},
		{"schedule = \"@daily\"\n  timezone = 1", `7:14: timezone in connector "demo" must be a string, got a number`},
		{"schedule = \"@dialy\"\n  timezone = \"Mars/Olympus\"", `6:14: connector "demo": schedule "@dialy": unrecognized descriptor: @dialy` + hint + "\n" +
			`plugins.hcl:7:14: connector "demo": timezone "Mars/Olympus": unknown time zone Mars/Olympus; use an IANA name such as "Europe/Berlin" or "UTC"`},
		// timezone without schedule: at the timezone key.
		{`timezone = "UTC"`, `6:3: connector "demo": timezone applies only to schedule, which is not set; add a schedule or remove timezone`},
		{"schedule = null\n  timezone = \"UTC\"", `7:3: connector "demo": timezone applies only to schedule, which is not set; add a schedule or remove timezone`},
		// unknown connector key
		{`interval = "30m"`, `6:3: unknown key "interval" in connector "demo"; allowed: plugin, schedule, timezone, full_sync_interval, renamed_from`},
	}
	for _, tt := range tests {
		t.Run(tt.lines, func(t *testing.T) {
			_, err := Parse([]byte(scheduleFile(tt.lines)), "plugins.hcl")
			if want := "plugins.hcl:" + tt.want; err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}
