package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dirsync/dirsync/internal/testenv"
)

// recorder records callbacks.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	badCtx int // callbacks given a nil or canceled context
	ch     chan string
}

func newRecorder() *recorder { return &recorder{ch: make(chan string, 100)} }

func (r *recorder) fire(ctx context.Context, connector string) {
	r.mu.Lock()
	if ctx == nil || ctx.Err() != nil {
		r.badCtx++
	}
	r.calls = append(r.calls, connector)
	r.mu.Unlock()
	r.ch <- connector
}

// tickGuard bounds waits for a tick of "@every 1s": far above a second,
// so a loaded machine's late tick is no failure; it only tells "fired"
// from "never fires".
const tickGuard = 30 * time.Second

// wait returns the next connector fired, failing after d.
func (r *recorder) wait(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(d):
		t.Fatalf("no callback within %v", d)
		return ""
	}
}

func (r *recorder) count(connector string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c == connector {
			n++
		}
	}
	return n
}

func TestFires(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop())
	r := newRecorder()
	if err := s.Set([]Entry{{Connector: "demo", Spec: "@every 1s"}, {Connector: "manual"}}, r.fire); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()
	if got := r.wait(t, tickGuard); got != "demo" {
		t.Errorf("fired %q; want demo", got)
	}
	r.mu.Lock()
	if r.badCtx != 0 {
		t.Error("callback given a nil or canceled context")
	}
	r.mu.Unlock()
	if _, ok := s.Next("manual"); ok {
		t.Error("Next(manual) = true for an entry without a spec")
	}
}

func TestNextTimezone(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	plus5 := time.FixedZone("UTC+5", 5*3600)
	s := New(zap.NewNop(), WithLocation(plus5))
	entries := []Entry{
		{Connector: "berlin", Spec: "0 3 * * *", Timezone: "Europe/Berlin"},
		{Connector: "daily", Spec: "@daily"}, // the scheduler's location
		{Connector: "interval", Spec: "@every 30m", Timezone: "Asia/Tokyo"},
	}
	if err := s.Set(entries, func(context.Context, string) {}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		now := time.Now()
		next, ok := s.Next("berlin")
		b := next.In(berlin)
		if !ok || b.Hour() != 3 || b.Minute() != 0 || b.Second() != 0 || !next.After(now) || next.Sub(now) > 25*time.Hour {
			t.Errorf("%s: Next(berlin) = %v (%v in Berlin), %v; want the next 03:00 Berlin time", when, next, b, ok)
		}
		next, ok = s.Next("daily")
		d := next.In(plus5)
		if !ok || d.Hour() != 0 || d.Minute() != 0 || !next.After(now) || next.Sub(now) > 24*time.Hour {
			t.Errorf("%s: Next(daily) = %v (%v in UTC+5), %v; want the next midnight UTC+5", when, next, d, ok)
		}
		next, ok = s.Next("interval")
		if !ok || next.Before(now) || next.Sub(now) > 30*time.Minute+time.Second {
			t.Errorf("%s: Next(interval) = %v, %v; want within 30m of %v", when, next, ok, now)
		}
		if _, ok := s.Next("nope"); ok {
			t.Errorf("%s: Next(nope) = true", when)
		}
	}
	check("before Start")
	s.Start()
	check("running")
	s.Stop()
	if next, ok := s.Next("berlin"); ok {
		t.Errorf("after Stop: Next(berlin) = %v, true", next)
	}
}

func TestSetReplaces(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop())
	old := newRecorder()
	if err := s.Set([]Entry{{Connector: "a", Spec: "@hourly"}, {Connector: "b", Spec: "@every 1h"}}, old.fire); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()
	if _, ok := s.Next("a"); !ok {
		t.Fatal("Next(a) = false after Set")
	}
	bNext, _ := s.Next("b")

	cur := newRecorder()
	if err := s.Set([]Entry{{Connector: "b", Spec: "@every 1s"}, {Connector: "c", Spec: "@every 1s"}}, cur.fire); err != nil {
		t.Fatal(err)
	}
	if next, ok := s.Next("a"); ok {
		t.Errorf("Next(a) = %v, true after a Set without a", next)
	}
	if next, ok := s.Next("b"); !ok || !next.Before(bNext) || time.Until(next) > 1100*time.Millisecond {
		t.Errorf("Next(b) = %v, %v; want the new 1s schedule", next, ok)
	}
	seen := map[string]bool{}
	for !seen["b"] || !seen["c"] {
		seen[cur.wait(t, tickGuard)] = true
	}
	if n := old.count("a") + old.count("b"); n != 0 {
		t.Errorf("replaced callback called %d times", n)
	}

	// Clearing.
	if err := s.Set(nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b", "c"} {
		if _, ok := s.Next(c); ok {
			t.Errorf("Next(%s) = true after Set(nil)", c)
		}
	}
}

func TestSetInvalid(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop())
	r := newRecorder()
	if err := s.Set([]Entry{{Connector: "keep", Spec: "@daily"}}, r.fire); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		entries []Entry
		want    string
	}{
		{[]Entry{{Connector: "x", Spec: "@every 0x"}}, `schedule: connector "x": schedule "@every 0x": failed to parse duration @every 0x: time: unknown unit "x" in duration "0x"`},
		{[]Entry{{Connector: "x", Spec: "@every 0s"}}, `schedule: connector "x": schedule "@every 0s": the interval must be at least 1s`},
		{[]Entry{{Connector: "x", Spec: "0 0 3 * * *"}}, `schedule: connector "x": schedule "0 0 3 * * *": expected exactly 5 fields, found 6: [0 0 3 * * *]`},
		{[]Entry{{Connector: "x", Spec: "CRON_TZ=UTC @daily"}}, `schedule: connector "x": schedule "CRON_TZ=UTC @daily": give the time zone as the timezone, not as a prefix`},
		{[]Entry{{Connector: "x", Spec: "TZ=UTC"}}, `schedule: connector "x": schedule "TZ=UTC": give the time zone as the timezone, not as a prefix`},
		{[]Entry{{Connector: "x", Spec: "@daily", Timezone: "Europe/Berlln"}}, `schedule: connector "x": timezone "Europe/Berlln": unknown time zone Europe/Berlln`},
		{[]Entry{{Connector: "x", Timezone: "UTC"}}, `schedule: connector "x": timezone "UTC" without a schedule`},
		{[]Entry{{Spec: "@daily"}}, `schedule: an entry (spec "@daily") names no connector`},
		{[]Entry{{Connector: "x", Spec: "@daily"}, {Connector: "x", Spec: "@hourly"}}, `schedule: connector "x" is listed twice`},
		{[]Entry{{Connector: "x", Spec: "@daily"}}, ``}, // nil callback, below
		{[]Entry{{Connector: "x", Spec: "@nope"}, {Connector: "y", Spec: "* *"}}, `schedule: connector "x": schedule "@nope": unrecognized descriptor: @nope` + "\n" +
			`schedule: connector "y": schedule "* *": expected exactly 5 fields, found 2: [* *]`},
	}
	for _, tt := range tests {
		fire := r.fire
		want := tt.want
		if want == "" {
			fire, want = nil, "schedule: no callback"
		}
		err := s.Set(tt.entries, fire)
		if err == nil || err.Error() != want {
			t.Errorf("Set(%+v) = %v; want %s", tt.entries, err, want)
		}
		if _, ok := s.Next("keep"); !ok {
			t.Fatalf("Set(%+v) failed but dropped the previous entries", tt.entries)
		}
		if _, ok := s.Next("x"); ok {
			t.Fatalf("Set(%+v) failed but added x", tt.entries)
		}
	}
}

func TestStopWaits(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop())
	started := make(chan struct{}, 10)
	var done atomic.Bool
	err := s.Set([]Entry{{Connector: "slow", Spec: "@every 1s"}}, func(ctx context.Context, _ string) {
		started <- struct{}{}
		<-ctx.Done() // Stop cancels
		// The behaviour under test: a callback that takes a while to wind
		// down. Stop must wait for it however long that is; no assertion
		// depends on the pause's length.
		time.Sleep(200 * time.Millisecond)
		done.Store(true)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	select {
	case <-started:
	case <-time.After(tickGuard):
		t.Fatal("no callback within the guard")
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(tickGuard):
		t.Fatal("Stop did not cancel the callback's context")
	}
	if !done.Load() {
		t.Error("Stop returned before the running callback")
	}
	s.Stop() // again: at once
	s.Start()
	if _, ok := s.Next("slow"); ok {
		t.Error("Start after Stop restarted the scheduler")
	}
}

func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	s := New(nil)
	var fired atomic.Bool
	if err := s.Set([]Entry{{Connector: "a", Spec: "@every 1s"}}, func(context.Context, string) { fired.Store(true) }); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Start()
	// A control scheduler started now ticks twice: by then the stopped
	// one would have fired at least once.
	control := New(nil)
	r := newRecorder()
	if err := control.Set([]Entry{{Connector: "control", Spec: "@every 1s"}}, r.fire); err != nil {
		t.Fatal(err)
	}
	control.Start()
	defer control.Stop()
	r.wait(t, tickGuard)
	r.wait(t, tickGuard)
	if fired.Load() {
		t.Error("a stopped scheduler fired")
	}
}

func TestSkipIfStillRunning(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	s := New(zap.New(core))
	var running, maxRunning, calls atomic.Int32
	release := make(chan struct{})
	err := s.Set([]Entry{{Connector: "busy", Spec: "@every 1s"}}, func(ctx context.Context, _ string) {
		n := running.Add(1)
		defer running.Add(-1)
		if n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		if calls.Add(1) == 1 {
			select { // longer than the interval
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()

	// The first call blocks; the ticks at about 2s and 3s are skipped.
	testenv.Eventually(t, tickGuard, func() error {
		if n := logs.FilterMessage(SkippedMessage).Len(); n < 2 {
			return fmt.Errorf("%d skips logged; calls %d; logs %v", n, calls.Load(), logs.All())
		}
		return nil
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("callback entered %d times while the first still ran; want 1", n)
	}
	skip := logs.FilterMessage(SkippedMessage).All()[0]
	if skip.Level != zapcore.InfoLevel || skip.ContextMap()["connector"] != "busy" {
		t.Errorf("skip logged as %v %v; want info with connector=busy", skip.Level, skip.ContextMap())
	}
	close(release)
	// Once the first returns, ticks reach the callback again.
	testenv.Eventually(t, tickGuard, func() error {
		if calls.Load() < 2 {
			return errors.New("no callback after the first returned")
		}
		return nil
	})
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d callbacks ran at once; want 1", m)
	}
}

func TestSkipAcrossSet(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	s := New(zap.New(core))
	var calls atomic.Int32
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	fire := func(ctx context.Context, _ string) {
		entered <- struct{}{}
		if calls.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	}
	if err := s.Set([]Entry{{Connector: "a", Spec: "@every 1s"}}, fire); err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()
	select {
	case <-entered:
	case <-time.After(tickGuard):
		t.Fatal("no callback within the guard")
	}
	// A reload while the callback runs keeps the guard.
	before := logs.FilterMessage(SkippedMessage).Len()
	if err := s.Set([]Entry{{Connector: "a", Spec: "@every 1s"}}, fire); err != nil {
		t.Fatal(err)
	}
	// Two ticks after the reload are skipped, not run.
	testenv.Eventually(t, tickGuard, func() error {
		if n := logs.FilterMessage(SkippedMessage).Len() - before; n < 2 {
			return fmt.Errorf("%d skips logged since the reload", n)
		}
		return nil
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("callback entered %d times across a Set while the first still ran; want 1", n)
	}
	close(release)
}

func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	s := New(zap.New(core))
	r := newRecorder()
	var calls atomic.Int32
	err := s.Set([]Entry{{Connector: "boom", Spec: "@every 1s"}}, func(ctx context.Context, c string) {
		if calls.Add(1) == 1 {
			panic("kaboom")
		}
		r.fire(ctx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()
	r.wait(t, tickGuard) // the second tick still reaches the callback
	panics := logs.FilterMessage("scheduled request panicked").All()
	if len(panics) != 1 || panics[0].Level != zapcore.ErrorLevel ||
		!strings.Contains(panics[0].ContextMap()["error"].(string), "kaboom") || panics[0].ContextMap()["connector"] != "boom" {
		t.Errorf("panic logs = %+v", panics)
	}
}
