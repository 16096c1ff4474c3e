package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the plugins.hcl parser: nothing may
// panic, and every error names the file and a position.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "plugins.hcl")); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"daemon { data_dir = \"./data\" }\nnats { listen = \"127.0.0.1:4250\" }\n",
		"plugin \"a\" { path = \"x\" }\nconnector \"c\" {\n  plugin = \"a\"\n  schedule = \"@every 1h\"\n  import { tags = [\"q4\"]\n max_removals = \"20%\" }\n}\n",
		"api {\n  listen = \"0.0.0.0:1\"\n  token_file = \"t\"\n}\n",
		"connector \"c\" { plugin = \"a\"\n config { x = [1, {a = 2}] } }",
		"daemon { shutdown_grace = \"${1+1}\" }",
		"\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse([]byte(src), "plugins.hcl")
		if err != nil && !strings.HasPrefix(err.Error(), "plugins.hcl") && !strings.HasPrefix(err.Error(), "config:") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
