package projections

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dirsync/dirsync/events"
)

// FuzzApply folds arbitrary decodable events into a state that already
// holds a sync: a malformed or hostile event may be refused, but never
// panics the projector.
func FuzzApply(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "events", "testdata", "*.golden.json"))
	var seeds [][]byte
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			seeds = append(seeds, b)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := events.Decode(b)
		if err != nil {
			return
		}
		s := NewState()
		for _, seed := range seeds {
			if se, err := events.Decode(seed); err == nil {
				_, _ = s.Apply(se)
			}
		}
		_, _ = s.Apply(e)
		_, _ = s.Apply(e) // twice: a redelivered event
		for _, k := range s.Keys() {
			_ = s.Value(k)
		}
	})
}
