package config

import (
	"strings"
	"testing"
	"time"
)

func TestAPIBlock(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    API
		wantErr string
	}{
		{name: "absent: off", src: ``, want: API{}},
		{
			name: "loopback with token",
			src:  "api {\n  listen = \"127.0.0.1:8470\"\n  token_file = \"api-token\"\n}\n",
			want: API{Listen: "127.0.0.1:8470", TokenFile: "DIR/api-token"},
		},
		{
			name: "any address with TLS",
			src:  "api {\n  listen = \"0.0.0.0:8470\"\n  token_file = \"t\"\n  tls_cert_file = \"c.pem\"\n  tls_key_file = \"k.pem\"\n}\n",
			want: API{Listen: "0.0.0.0:8470", TokenFile: "DIR/t", TLSCertFile: "DIR/c.pem", TLSKeyFile: "DIR/k.pem"},
		},
		{
			name:    "no token",
			src:     "api {\n  listen = \"127.0.0.1:8470\"\n}\n",
			wantErr: "plugins.hcl:1:1: api block needs token_file",
		},
		{
			name:    "no listen",
			src:     "api {\n  token_file = \"t\"\n}\n",
			wantErr: "plugins.hcl:1:1: api block needs listen",
		},
		{
			name:    "clear text off loopback",
			src:     "api {\n  listen = \"0.0.0.0:8470\"\n  token_file = \"t\"\n}\n",
			wantErr: `plugins.hcl:2:12: listen "0.0.0.0:8470" is not a loopback address`,
		},
		{
			name:    "cert without key",
			src:     "api {\n  listen = \"127.0.0.1:1\"\n  token_file = \"t\"\n  tls_cert_file = \"c\"\n}\n",
			wantErr: "plugins.hcl:1:1: tls_cert_file and tls_key_file go together",
		},
		{
			name:    "bad listen",
			src:     "api {\n  listen = \"8470\"\n  token_file = \"t\"\n}\n",
			wantErr: "plugins.hcl:2:12: listen must be host:port",
		},
		{
			name:    "unknown key",
			src:     "api {\n  listen = \"127.0.0.1:1\"\n  token_file = \"t\"\n  token = \"x\"\n}\n",
			wantErr: `plugins.hcl:4:3: unknown key "token" in api block; allowed: listen, token_file, tls_cert_file, tls_key_file`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), "plugins.hcl")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			for _, p := range []*string{&want.TokenFile, &want.TLSCertFile, &want.TLSKeyFile} {
				*p = strings.Replace(*p, "DIR", c.Dir, 1)
			}
			if c.API != want {
				t.Errorf("API = %+v; want %+v", c.API, want)
			}
			if c.API.Enabled() != (want.Listen != "") {
				t.Errorf("Enabled() = %v", c.API.Enabled())
			}
		})
	}
}

// The daemon block's durations: defaults, bounds, and errors naming the
// place in the file.
func TestDaemonDurations(t *testing.T) {
	grace := func(d Daemon) time.Duration { return d.ShutdownGrace }
	stall := func(d Daemon) time.Duration { return d.StallTimeout }
	every := func(d Daemon) time.Duration { return d.CheckpointInterval }
	// events reads the count as a duration of that many nanoseconds, so
	// that one table holds every daemon setting with a range.
	events := func(d Daemon) time.Duration { return time.Duration(d.CheckpointEvents) }
	tests := []struct {
		src     string
		get     func(Daemon) time.Duration
		want    time.Duration
		wantErr string
	}{
		{"", grace, DefaultShutdownGrace, ""},
		{`  shutdown_grace = "2m"`, grace, 2 * time.Minute, ""},
		{`  shutdown_grace = "0s"`, grace, 0, ""},
		{`  shutdown_grace = "1h"`, grace, 0, `plugins.hcl:2:20: shutdown_grace "1h": want a duration from "0s"`},
		{`  shutdown_grace = "soon"`, grace, 0, `plugins.hcl:2:20: shutdown_grace "soon"`},
		{"", stall, DefaultStallTimeout, ""},
		{`  stall_timeout = "30s"`, stall, 30 * time.Second, ""},
		{`  stall_timeout = "1s"`, stall, 0, `plugins.hcl:2:19: stall_timeout "1s": want a duration from "5s" to "1h"`},
		{`  stall_timeout = "2h"`, stall, 0, `plugins.hcl:2:19: stall_timeout "2h"`},
		{"", every, DefaultCheckpointInterval, ""},
		{`  checkpoint_interval = "1m"`, every, time.Minute, ""},
		{`  checkpoint_interval = "0s"`, every, 0, `plugins.hcl:2:25: checkpoint_interval "0s": want a duration from "1s"`},
		{"", events, DefaultCheckpointEvents, ""},
		{`  checkpoint_events = 5000`, events, 5000, ""},
		{`  checkpoint_events = 0`, events, 0, `plugins.hcl:2:23: checkpoint_events in daemon block must be a whole number of events from 1 to 100000000 (default 100000), got 0`},
		{`  checkpoint_events = 2.5`, events, 0, `plugins.hcl:2:23: checkpoint_events in daemon block must be a whole number of events from 1 to 100000000 (default 100000), got 2.5`},
		{`  checkpoint_events = "many"`, events, 0, `plugins.hcl:2:23: checkpoint_events in daemon block must be a whole number of events from 1 to 100000000 (default 100000), got a string`},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("daemon {\n"+tt.src+"\n}\n"), "plugins.hcl")
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v; want %q", tt.src, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if got := tt.get(c.Daemon); got != tt.want {
			t.Errorf("%s: %v; want %v", tt.src, got, tt.want)
		}
	}
}
