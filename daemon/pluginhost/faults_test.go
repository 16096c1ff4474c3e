package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/config"
)

// installFaulty copies the faulty plugin into a fresh folder and returns
// its plugins.hcl entry.
func installFaulty(t *testing.T) *config.Plugin {
	t.Helper()
	path := installBin(t, faultyBin, filepath.Join(t.TempDir(), "dirsync-faulty"))
	return &config.Plugin{Name: "faulty", Path: path, IdleTimeout: config.DefaultIdleTimeout}
}

// syncMode runs one sync of the faulty plugin in mode and returns the
// batches received and the error.
func syncMode(inst *Instance, json string) (int, error) {
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := inst.Connector().Sync(ctx, &connectorv1.SyncRequest{Config: &connectorv1.Config{Json: []byte(json)}},
		func(*connectorv1.SyncBatch) error {
			n++
			return nil
		})
	return n, err
}

// counter is an Observer that counts.
type counter struct {
	mu       sync.Mutex
	restarts []bool
	crashes  int
}

func (c *counter) PluginStarted(_ string, restart bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.restarts = append(c.restarts, restart)
}

func (c *counter) PluginCrashed(string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashes++
}

func (c *counter) get() ([]bool, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.restarts...), c.crashes
}

// TestFaults checks a plugin that dies or hangs ends the call promptly
// with an error that names it and says what happened, and leaves no
// process behind.
func TestFaults(t *testing.T) {
	const hint = "check its log lines above; the next job starts it again"
	tests := []struct {
		name string
		sync string // faulty config; "" for a plugin that dies before the handshake
		idle time.Duration
		sent int // batches received before the fault
		// sentAtMost: a SIGKILL right after a send may drop batches still
		// in the plugin's buffers.
		sentAtMost bool
		kind       error
		msg        string // exact; PATH stands for the binary's path
		crashes    int
	}{
		{
			name: "exit at start", sync: `{"mode":"exit_at_start"}`, kind: ErrPluginExited, crashes: 1,
			msg: `plugin "faulty" exited during the sync (exit status 3); ` + hint,
		},
		{
			name: "crash mid stream", sync: `{"mode":"crash_mid_stream","after":2}`, sent: 2, sentAtMost: true, kind: ErrPluginExited, crashes: 1,
			msg: `plugin "faulty" exited during the sync (signal: killed); ` + hint,
		},
		{
			name: "hang", sync: `{"mode":"hang","after":1}`, idle: time.Second, sent: 1, kind: ErrPluginHung, crashes: 1,
			msg: `plugin "faulty" sent nothing for 1s during the sync (idle_timeout in plugins.hcl): it looks hung and was stopped; check its log lines above, raise idle_timeout if Graph is slow`,
		},
		{
			name: "exit before the handshake", kind: ErrPluginExited, crashes: 1,
			msg: `plugin "faulty" at PATH: exited before the plugin handshake (exit status 1); check its log lines above; is it a dirsync connector plugin built from this version? run ` + "`make build`",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(nil)
			obs := &counter{}
			h.Observe(obs)
			p := installFaulty(t)
			if tt.idle != 0 {
				p.IdleTimeout = tt.idle
			}
			var pid, sent int
			var err error
			if tt.sync == "" {
				script := "#!/bin/sh\necho $$ > \"$0.pid\"\necho 'cannot start: no config' >&2\nexit 1\n"
				if err := os.WriteFile(p.Path, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				_, err = h.Launch(context.Background(), p)
				b, rerr := os.ReadFile(p.Path + ".pid")
				if rerr != nil {
					t.Fatal(rerr)
				}
				pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			} else {
				inst := launch(t, h, p)
				pid = inst.proc.pid()
				sent, err = syncMode(inst, tt.sync)
				// Gone before Kill: it died, or the watchdog killed it.
				waitGone(t, pid)
				inst.Kill()
			}
			// No bound on the call's time: the kind and the exact message
			// say which path ended it (the watchdog after idle_timeout, the
			// exit seen); a hang would meet the test's own timeout.
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v; want %v", err, tt.kind)
			}
			if want := strings.ReplaceAll(tt.msg, "PATH", p.Path); err.Error() != want {
				t.Errorf("err = %s\nwant  %s", err, want)
			}
			if sent != tt.sent && !(tt.sentAtMost && sent < tt.sent) {
				t.Errorf("%d batches before the fault; want %d", sent, tt.sent)
			}
			if pid == 0 {
				t.Fatal("no pid")
			}
			waitGone(t, pid)
			if _, crashes := obs.get(); crashes != tt.crashes {
				t.Errorf("%d crashes observed; want %d", crashes, tt.crashes)
			}
		})
	}
}

// TestSlowSendIsNotHung: idle_timeout counts the plugin's silence, not
// the daemon's own time spent on a batch.
func TestSlowSendIsNotHung(t *testing.T) {
	p := installFaulty(t)
	p.IdleTimeout = time.Second
	inst := launch(t, New(nil), p)
	n := 0
	err := inst.Connector().Sync(context.Background(), &connectorv1.SyncRequest{Config: &connectorv1.Config{Json: []byte(`{"users":20}`)}},
		func(*connectorv1.SyncBatch) error {
			n++
			if n == 1 {
				// The behaviour under test: the daemon is slower with a
				// batch than idle_timeout (1s) while the plugin, done
				// sending, is silent. A sleep never ends early, so the
				// pause always exceeds the timeout.
				time.Sleep(1500 * time.Millisecond)
			}
			return nil
		})
	if err != nil || n != 3 {
		t.Fatalf("err = %v after %d batches; want nil after 3", err, n)
	}
	if inst.Exited() {
		t.Error("the plugin was stopped")
	}
}

// TestCanceledSyncIsNoFailure: a job canceled by the daemon gets its own
// context error back and does not count against the plugin.
func TestCanceledSyncIsNoFailure(t *testing.T) {
	h := New(nil)
	p := installFaulty(t)
	inst := launch(t, h, p)
	ctx, cancel := context.WithCancel(context.Background())
	err := inst.Connector().Sync(ctx, &connectorv1.SyncRequest{Config: &connectorv1.Config{Json: []byte(`{"mode":"hang"}`)}},
		func(*connectorv1.SyncBatch) error {
			cancel()
			return nil
		})
	if err == nil || errors.Is(err, ErrPluginHung) || errors.Is(err, ErrPluginExited) {
		t.Fatalf("err = %v; want the cancellation", err)
	}
	inst.Kill()
	if f := h.failures[p.Name]; f != nil && f.n != 0 {
		t.Errorf("%d failures recorded", f.n)
	}
}

func TestBackoffDelay(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{6, 32 * time.Second}, {7, time.Minute}, {1000, time.Minute},
	} {
		if got := backoffDelay(tt.n, BackoffBase, BackoffMax); got != tt.want {
			t.Errorf("backoffDelay(%d) = %s; want %s", tt.n, got, tt.want)
		}
	}
}

// fakeClock is the Host's clock in the backoff test: After records the
// wait and fires at once, or never when blocked.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
	block bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if c.block {
		return nil
	}
	ch := make(chan time.Time, 1)
	ch <- c.now.Add(d)
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestRestartBackoff checks the next launch after a crash or hang waits
// 1s, 2s, 4s… from the failure, a normal stop resets that, a canceled
// launch does not wait, and the Observer hears of restarts and crashes.
func TestRestartBackoff(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	h := New(zap.New(core))
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.now, h.after = clock.Now, clock.After
	obs := &counter{}
	h.Observe(obs)
	starts := 0
	h.beforeStart = func(*config.Plugin) { starts++ }
	p := installFaulty(t)
	p.IdleTimeout = time.Second

	run := func(mode string, want error) {
		t.Helper()
		inst := launch(t, h, p)
		if _, err := syncMode(inst, fmt.Sprintf(`{"mode":%q,"users":20}`, mode)); !errors.Is(err, want) && err != want {
			t.Fatalf("%s: err = %v; want %v", mode, err, want)
		}
		inst.Kill()
	}
	run("crash_mid_stream", ErrPluginExited) // no wait: the first start
	run("crash_mid_stream", ErrPluginExited) // waits 1s
	clock.advance(500 * time.Millisecond)
	run("exit_at_start", ErrPluginExited) // waits 2s counted from the failure: 1.5s
	run("ok", nil)                        // waits 4s; a normal stop resets the count
	run("hang", ErrPluginHung)            // no wait
	want := []time.Duration{time.Second, 1500 * time.Millisecond, 4 * time.Second}
	if fmt.Sprint(clock.waits) != fmt.Sprint(want) {
		t.Errorf("waits %v; want %v", clock.waits, want)
	}
	if logs.FilterMessage(`restarting plugin "faulty" in 4s after 3 consecutive failures`).Len() != 1 ||
		logs.FilterMessage(`restarting plugin "faulty" in 1s after a failure`).Len() != 1 {
		t.Errorf("no restart log lines; have %v", messages(logs))
	}
	restarts, crashes := obs.get()
	if fmt.Sprint(restarts) != "[false true true true false]" || crashes != 4 {
		t.Errorf("restarts %v, crashes %d; want [false true true true false], 4", restarts, crashes)
	}

	// After the hang the next launch waits 1s; a launch canceled meanwhile
	// returns at once and starts nothing.
	clock.block = true
	before := starts
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := h.Launch(ctx, p)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `plugin "faulty" at `+p.Path+": not restarted: it was waiting 1s after a failure") {
		t.Errorf("err = %v", err)
	}
	if starts != before {
		t.Error("a process started during the backoff")
	}
}

func messages(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Message)
	}
	return out
}

// TestPinnedBinaryRunsAsVerified swaps the binary between its sha256
// check and the process start: a pinned plugin still runs the bytes that
// were checked; an unpinned one (the control) runs the swapped file.
func TestPinnedBinaryRunsAsVerified(t *testing.T) {
	tests := []struct {
		name     string
		pinned   bool
		noMemfd  bool
		swap     bool
		want     string // Describe name of what runs
		fallback bool   // a warning names the remaining window
	}{
		{name: "pinned", pinned: true, swap: true, want: "faulty"},
		{name: "not pinned", swap: true, want: "fake"},
		{name: "pinned without memfd", pinned: true, noMemfd: true, want: "faulty", fallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			h := New(zap.New(core))
			if tt.noMemfd {
				h.newImage = func(string) (*os.File, error) { return nil, fmt.Errorf("memfd_create: %w", unix.ENOSYS) }
			}
			p := installFaulty(t)
			if tt.pinned {
				sum, err := fileSHA256(p.Path)
				if err != nil {
					t.Fatal(err)
				}
				p.SHA256 = fmt.Sprintf("%x", sum)
			}
			impostor := installBin(t, fakeBin, filepath.Join(filepath.Dir(p.Path), "impostor"))
			swapped := false
			h.beforeStart = func(*config.Plugin) {
				if tt.swap && !swapped {
					swapped = true
					if err := os.Rename(impostor, p.Path); err != nil {
						t.Error(err)
					}
				}
			}
			inst := launch(t, h, p)
			if got := inst.Describe().GetName(); got != tt.want {
				t.Errorf("the plugin that runs is %q; want %q", got, tt.want)
			}
			if tt.swap && !swapped {
				t.Error("the binary was never swapped")
			}
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", inst.proc.pid()))
			if err != nil {
				t.Fatal(err)
			}
			if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 != p.Path {
				t.Errorf("argv[0] = %q; want %q", argv0, p.Path)
			}
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", inst.proc.pid()))
			if err != nil {
				t.Fatal(err)
			}
			if fromMemory := strings.HasPrefix(exe, "/memfd:"); fromMemory != (tt.pinned && !tt.noMemfd) {
				t.Errorf("the plugin runs %s", exe)
			}
			if fds := memfds(t); len(fds) > 0 {
				t.Errorf("the daemon still holds %v", fds)
			}
			warned := logs.FilterMessageSnippet("a binary swapped in the instant between that check and exec would run unverified").Len() > 0
			if warned != tt.fallback {
				t.Errorf("fallback warning logged: %v; want %v (logs %v)", warned, tt.fallback, messages(logs))
			}
		})
	}
}

// memfds returns the daemon's open in-memory files.
func memfds(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(target, "/memfd:") {
			out = append(out, target)
		}
	}
	return out
}

// TestAutoMTLS checks the plugin's gRPC server refuses a client without
// the host's TLS certificate, while the host's own calls work.
func TestAutoMTLS(t *testing.T) {
	inst := launch(t, New(nil), installFake(t, "dirsync-fake"))
	rc := inst.client.ReattachConfig()
	if rc == nil || rc.Addr == nil {
		t.Fatal("no plugin address")
	}
	addr := rc.Addr
	conn, err := grpc.NewClient("passthrough:///plugin",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, addr.Network(), addr.String())
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := connectorv1.NewConnectorClient(conn).Describe(ctx, &connectorv1.DescribeRequest{}); err == nil {
		t.Error("the plugin answered a client without TLS")
	}
	if _, err := inst.Connector().Describe(ctx); err != nil {
		t.Errorf("the host's own call failed: %v", err)
	}
}
