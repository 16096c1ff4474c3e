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

// The start rows give the parts of a start the daemon's own log times.
func TestTookNote(t *testing.T) {
	log := `{"level":"info","msg":"embedded nats-server ready","url":"nats://x","took":2.3}
{"level":"info","logger":"projections","msg":"read models loaded from the checkpoint","seq":1000000,"tail":0,"took":1.004}
{"level":"info","logger":"projections","msg":"projections ready","seq":1000000,"replayed":0,"took":1.2}`
	want := "checkpoint: loaded at seq 1000000; the daemon's log times: embedded nats-server (JetStream recovery) 2.30 s, checkpoint load 1.00 s, read models, load or replay to ready 1.20 s"
	if got := startNote(log); got != want {
		t.Errorf("startNote =\n%s\nwant\n%s", got, want)
	}
}
