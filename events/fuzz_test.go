package events

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode, which reads every stored
// event: nothing may panic, and what decodes must encode again.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"specversion":"1.0","type":"io.dirsync.recipient.created.v1","data":null}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		if _, err := e.Marshal(); err != nil {
			t.Fatalf("decoded event does not marshal: %v", err)
		}
	})
}
