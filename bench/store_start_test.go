package bench

import (
	"strings"
	"testing"
)

// The start rows say what the daemon's log says about a checkpoint, and
// claim a loaded one only when the daemon's line says so.
func TestStartNote(t *testing.T) {
	for _, tc := range []struct {
		name, log, want string
	}{
		{"no line", `{"level":"info","msg":"projections ready","seq":1000}`, "no checkpoint used (no line"},
		{"loaded", `{"level":"info","logger":"projections","msg":"read models loaded from the checkpoint","seq":990000,"tail":10000}`, "checkpoint: loaded at seq 990000"},
		{"replayed", `{"level":"warn","msg":"replaying the whole stream: no read-model checkpoint to start from","events":12,"error":"no usable read-model checkpoint: none written yet"}`,
			`no checkpoint used (daemon log: "replaying the whole stream`},
		{"written, not loaded", `{"level":"info","msg":"read-model checkpoint written","seq":12}`, `no checkpoint used (daemon log: "read-model checkpoint written`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := startNote(tc.log); !strings.HasPrefix(got, tc.want) {
				t.Errorf("startNote = %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

// Rebuild rows go to the longest stream up to the 1,000,000
// events, or to the shortest when every stream is longer.
func TestRebuildLength(t *testing.T) {
	for _, tc := range []struct {
		lengths []int
		want    int
	}{
		{[]int{100_000, 1_000_000, 5_000_000}, 1_000_000},
		{[]int{200_000, 1_000_000}, 1_000_000},
		{[]int{500, 2_000, 5_000}, 5_000},
		{[]int{2_000_000, 5_000_000}, 2_000_000},
	} {
		if got := rebuildLength(tc.lengths); got != tc.want {
			t.Errorf("rebuildLength(%v) = %d, want %d", tc.lengths, got, tc.want)
		}
	}
}
