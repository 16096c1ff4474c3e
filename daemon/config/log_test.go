package config

import (
	"strings"
	"testing"
)

// The log block: format and level, each checked with its place in the
// file; level overrides daemon { log_level }.
func TestLogBlock(t *testing.T) {
	tests := []struct {
		name, src     string
		format, level string
		err           string
	}{
		{name: "absent", src: ``, format: "auto", level: "info"},
		{name: "json", src: "log {\n  format = \"json\"\n}\n", format: "json", level: "info"},
		{name: "level overrides daemon", src: "daemon {\n  log_level = \"warn\"\n}\nlog {\n  format = \"console\"\n  level = \"debug\"\n}\n", format: "console", level: "debug"},
		{name: "bad format", src: "log {\n  format = \"xml\"\n}\n", err: `plugins.hcl:2:12: format must be one of auto, console, json (got "xml")`},
		{name: "bad level", src: "log {\n  level = \"loud\"\n}\n", err: `plugins.hcl:2:11: level must be one of debug, info, warn, error (got "loud")`},
		{name: "unknown key", src: "log {\n  colour = true\n}\n", err: `plugins.hcl:2:3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, t.TempDir(), tt.src)
			c, err := Load(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v; want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Daemon.LogFormat != tt.format || c.Daemon.LogLevel != tt.level {
				t.Errorf("format %q level %q; want %q %q", c.Daemon.LogFormat, c.Daemon.LogLevel, tt.format, tt.level)
			}
		})
	}
}
