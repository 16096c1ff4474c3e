package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadableLogs reads the daemon's JSON log of a start, a sync and a
// stop as a log shipper would: every line has an RFC 3339 "ts"; the
// plugin's lines carry the job they belong to and that one time (not the
// plugin's own "timestamp" besides); no line has an empty reason; and
// the plugins checked at start are named by what was checked, not by a
// start and an exit that read as a crash.
func TestReadableLogs(t *testing.T) {
	f := newFixture(t, `nats { listen = "127.0.0.1:0" }`)
	f.start()
	out, errOut, code := f.cli("sync", "demo", "--wait")
	if code != 0 {
		t.Fatalf("sync: exit %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`(?m)^sync (\S+) requested`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no sync ID in:\n%s", out)
	}
	job := m[1]
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}

	pluginLines, checked := 0, false
	for _, line := range strings.Split(strings.TrimSpace(f.log.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Errorf("not a JSON line: %s", line)
			continue
		}
		ts, _ := e["ts"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("ts %q is not RFC 3339: %s", ts, line)
		}
		for k, v := range e {
			if strings.Contains(strings.ToLower(k), "reason") && (v == nil || v == "") {
				t.Errorf("an empty %s: %s", k, line)
			}
		}
		msg, _ := e["msg"].(string)
		if e["level"] == "info" && (msg == "plugin process exited" || msg == "connector plugin ready") {
			t.Errorf("a plugin's start or exit at info: %s", line)
		}
		if e["level"] == "info" && msg == "checked plugin azuread v0.1.0 for connector demo: config valid" {
			checked = true
		}
		if e["logger"] != "dirsync-azuread" {
			continue
		}
		pluginLines++
		if e["job"] != job || e["connector"] != "demo" {
			t.Errorf("a plugin line without job %s and connector demo: %s", job, line)
		}
		for _, k := range []string{"timestamp", "@timestamp", "hclog_timestamp", "hclog_job", "time"} {
			if _, ok := e[k]; ok {
				t.Errorf("a plugin line with a second time or job (%s): %s", k, line)
			}
		}
	}
	if pluginLines == 0 {
		t.Errorf("no line from the plugin in:\n%s", f.log.String())
	}
	if !checked {
		t.Errorf(`no "checked plugin azuread v0.1.0 for connector demo: config valid" at info in:\n%s`, f.log.String())
	}
}
