package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProcStatus reads a field of /proc/PID/status in KiB (VmRSS, VmHWM).
func ProcStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// CPUTime is the user+system CPU time a process has used.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// Children lists the PIDs whose parent is pid.
func Children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// sampleEvery calls sample now, then every d, and once more when the
// returned stop is called; stop returns after that last call.
func sampleEvery(d time.Duration, sample func()) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	sample()
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// PeakWatcher samples the peak RSS (VmHWM) of a process and of its
// children (the plugin processes) until stopped: a child's peak must be
// read before it exits.
type PeakWatcher struct {
	pid  int
	stop func()

	mu    sync.Mutex
	self  int64 // KiB
	child int64 // KiB, the largest any child reached
}

// WatchPeaks starts sampling pid every 50 ms.
func WatchPeaks(pid int) *PeakWatcher {
	w := &PeakWatcher{pid: pid}
	w.stop = sampleEvery(50*time.Millisecond, w.sample)
	return w
}

func (w *PeakWatcher) sample() {
	self, _ := ProcStatus(w.pid, "VmHWM")
	var child int64
	for _, c := range Children(w.pid) {
		if v, err := ProcStatus(c, "VmHWM"); err == nil {
			child = max(child, v)
		}
	}
	w.mu.Lock()
	w.self = max(w.self, self)
	w.child = max(w.child, child)
	w.mu.Unlock()
}

// Stop ends sampling and returns the peaks in MiB: the process's and the
// largest child's.
func (w *PeakWatcher) Stop() (selfMiB, childMiB float64) {
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	return float64(w.self) / 1024, float64(w.child) / 1024
}
