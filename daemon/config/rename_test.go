package config

import (
	"strings"
	"testing"
)

func TestRenamedFrom(t *testing.T) {
	const head = `plugin "p" { path = "/bin/true" }
`
	tests := []struct {
		name, src string
		want      map[string]string // connector → renamed_from
		err       string
	}{
		{name: "none", src: `connector "new" { plugin = "p" }`, want: map[string]string{"new": ""}},
		{name: "a rename", src: `connector "new" {
  plugin       = "p"
  renamed_from = "old"
}`, want: map[string]string{"new": "old"}},
		{name: "not a name", src: `connector "new" {
  plugin       = "p"
  renamed_from = "Old Name"
}`, err: `plugins.hcl:4:18: connector "new": renamed_from "Old Name" is no connector name`},
		{name: "itself", src: `connector "new" {
  plugin       = "p"
  renamed_from = "new"
}`, err: `plugins.hcl:4:18: connector "new": renamed_from names the connector itself`},
		{name: "old still declared", src: `connector "old" { plugin = "p" }
connector "new" {
  plugin       = "p"
  renamed_from = "old"
}`, err: `plugins.hcl:5:18: connector "new": renamed_from = "old", but connector "old" is still declared at plugins.hcl:2:1; a rename replaces the old block: remove it`},
		{name: "claimed twice", src: `connector "a" {
  plugin       = "p"
  renamed_from = "old"
}
connector "b" {
  plugin       = "p"
  renamed_from = "old"
}`, err: `plugins.hcl:8:18: connector "b": renamed_from = "old", which connector "a" at plugins.hcl:2:1 already claims`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(head+tt.src), "plugins.hcl")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := cfg.Connector(name).RenamedFrom; got != want {
					t.Errorf("connector %s: RenamedFrom = %q, want %q", name, got, want)
				}
			}
		})
	}
}
