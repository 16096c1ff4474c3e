package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPluginIdleTimeout(t *testing.T) {
	base := "plugin \"p\" {\n  path = \"/bin/true\"\n%s\n}\n"
	tests := []struct {
		name, line string
		want       time.Duration
		err        string
	}{
		{"default", "", DefaultIdleTimeout, ""},
		{"minutes", `  idle_timeout = "30m"`, 30 * time.Minute, ""},
		{"the minimum", `  idle_timeout = "1s"`, time.Second, ""},
		{"below the minimum", `  idle_timeout = "500ms"`, 0,
			`plugins.hcl:3:18: idle_timeout of plugin "p": "500ms": want a duration of at least 1s such as "10m" or "30m": how long the plugin may send nothing before it is stopped as hung`},
		{"zero", `  idle_timeout = "0"`, 0, `plugins.hcl:3:18: idle_timeout of plugin "p": "0": want a duration of at least 1s`},
		{"not a duration", `  idle_timeout = "ten minutes"`, 0, `plugins.hcl:3:18: idle_timeout of plugin "p": "ten minutes": want a duration`},
		{"a number", `  idle_timeout = 600`, 0, `plugins.hcl:3:18: idle_timeout in plugin "p" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(fmt.Sprintf(base, tt.line)), "plugins.hcl")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v\nwant it to contain %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Plugins[0].IdleTimeout; got != tt.want {
				t.Errorf("IdleTimeout = %v; want %v", got, tt.want)
			}
		})
	}
}
