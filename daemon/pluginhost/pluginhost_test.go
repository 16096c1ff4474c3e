package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/internal/testenv"
)

// fakeBin is the fake connector plugin and faultyBin the faulty one
// (connectors/faulty), built once by TestMain.
var fakeBin, faultyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBin = filepath.Join(dir, "fakeconnector")
	faultyBin = filepath.Join(dir, "dirsync-faulty")
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./testdata/fakeconnector", "../../connectors/cmd/dirsync-faulty")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the test plugins:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// installFake copies the fake plugin into a fresh folder under the given
// file name and returns its plugins.hcl entry.
func installFake(t *testing.T, name string) *config.Plugin {
	t.Helper()
	return &config.Plugin{Name: "fake", Path: installBin(t, fakeBin, filepath.Join(t.TempDir(), name))}
}

// installBin copies the binary src to path and returns path.
func installBin(t *testing.T, srcPath, path string) string {
	t.Helper()
	src, err := os.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// startedPID returns the pid the fake wrote at start, or 0 if it never ran.
func startedPID(t *testing.T, p *config.Plugin) int {
	t.Helper()
	b, err := os.ReadFile(p.Path + ".started")
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits for process pid to be gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("plugin process %d still running", pid)
		}
		return nil
	})
}

func launch(t *testing.T, h *Host, p *config.Plugin) *Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := h.Launch(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	return inst
}

func TestLaunchDescribeSync(t *testing.T) {
	p := installFake(t, "dirsync-fake")
	inst := launch(t, New(zap.NewNop()), p)
	if inst.Describe().GetName() != "fake" || inst.Plugin() != p {
		t.Errorf("Describe() = %v, Plugin() = %v", inst.Describe(), inst.Plugin())
	}
	conn := inst.Connector()
	ctx := context.Background()
	desc, err := conn.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetName() != "fake" || desc.GetVersion() != "0.0.1" || len(desc.GetConfigFields()) != 1 {
		t.Errorf("Describe = %v", desc)
	}

	var batches []*connectorv1.SyncBatch
	err = conn.Sync(ctx, &connectorv1.SyncRequest{
		Config: &connectorv1.Config{Json: []byte(`{"batches":4}`)},
		Cursor: "c0",
		JobId:  "job-1",
	}, func(b *connectorv1.SyncBatch) error {
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 4 {
		t.Fatalf("%d batches; want 4", len(batches))
	}
	for i, b := range batches {
		last := i == len(batches)-1
		if got, want := b.GetUsers()[0].GetId(), "user-"+strconv.Itoa(i+1); got != want || b.GetDone() != last {
			t.Errorf("batch %d: user %q done %v; want %q, %v", i, got, b.GetDone(), want, last)
		}
	}
	if last := batches[3]; last.GetCursor() != "cursor-c0+1" || !last.GetComplete() {
		t.Errorf("last batch cursor %q complete %v", last.GetCursor(), last.GetComplete())
	}
	if inst.Exited() {
		t.Error("Exited() = true while running")
	}
}

func TestSHA256(t *testing.T) {
	t.Run("mismatch refused before start", func(t *testing.T) {
		p := installFake(t, "dirsync-fake")
		p.SHA256 = strings.Repeat("0", 64)
		sum, err := fileSHA256(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		h := New(zap.NewNop())
		starts := 0
		h.beforeStart = func(*config.Plugin) { starts++ }
		_, err = h.Launch(context.Background(), p)
		want := fmt.Sprintf("plugin %q at %s: sha256 mismatch: plugins.hcl says %s, the file is %x; rebuild or update sha256", "fake", p.Path, p.SHA256, sum)
		if err == nil || err.Error() != want {
			t.Fatalf("err = %v\nwant %s", err, want)
		}
		// The host's own hook, called right before a process starts, says
		// none did; no wait for a process that might write its pid later.
		if pid := startedPID(t, p); pid != 0 || starts != 0 {
			t.Errorf("the plugin ran (pid %d) despite the mismatch", pid)
		}
	})
	t.Run("match accepted", func(t *testing.T) {
		p := installFake(t, "dirsync-fake")
		sum, err := fileSHA256(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		p.SHA256 = fmt.Sprintf("%x", sum)
		inst := launch(t, New(zap.NewNop()), p)
		if inst.Describe().GetName() != "fake" {
			t.Errorf("Describe() = %v", inst.Describe())
		}
		if startedPID(t, p) == 0 {
			t.Error("the plugin did not run")
		}
	})
}

func TestBadPath(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct{ path, want string }{
		"missing": {
			path: filepath.Join(dir, "bin", "dirsync-azuread"),
			want: `plugin "azuread" at ` + filepath.Join(dir, "bin", "dirsync-azuread") + ": no such file; run `make build` to build the plugins, or fix path in plugins.hcl: stat ",
		},
		"directory": {
			path: dir,
			want: `plugin "azuread" at ` + dir + ": not a regular file; path in plugins.hcl must name the plugin binary (run `make build` to build it)",
		},
		"not executable": {
			path: notExec,
			want: `plugin "azuread" at ` + notExec + ": not executable; run `make build` to rebuild it, or chmod +x it",
		},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(nil).Launch(context.Background(), &config.Plugin{Name: "azuread", Path: tt.path})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
	_, err := New(nil).Launch(context.Background(), &config.Plugin{Name: "azuread", Path: filepath.Join(dir, "nope")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestNotAPlugin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "true")
	if err := os.WriteFile(path, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := New(nil).Launch(ctx, &config.Plugin{Name: "bogus", Path: path})
	if err == nil || !strings.Contains(err.Error(), `plugin "bogus" at `+path+": starting: ") {
		t.Errorf("err = %v", err)
	}
}

func TestDescribeFailureStopsPlugin(t *testing.T) {
	p := installFake(t, "dirsync-fake-baddescribe")
	_, err := New(nil).Launch(context.Background(), p)
	want := fmt.Sprintf("plugin %q at %s: did not answer Describe: ", "fake", p.Path)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "describe is broken") {
		t.Fatalf("err = %v\nwant prefix %s", err, want)
	}
	pid := startedPID(t, p)
	if pid == 0 {
		t.Fatal("the plugin never ran")
	}
	waitGone(t, pid)
}

func TestCanceledContext(t *testing.T) {
	p := installFake(t, "dirsync-fake")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(nil).Launch(ctx, p)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if startedPID(t, p) != 0 {
		t.Error("the plugin ran with a canceled context")
	}
}

func TestKill(t *testing.T) {
	p := installFake(t, "dirsync-fake")
	inst := launch(t, New(nil), p)
	pid := startedPID(t, p)
	if pid == 0 {
		t.Fatal("no pid")
	}
	inst.Kill()
	if !inst.Exited() {
		t.Error("Exited() = false after Kill")
	}
	waitGone(t, pid)
	if _, err := inst.Connector().Describe(context.Background()); err == nil {
		t.Error("Describe after Kill succeeded")
	}
	inst.Kill() // a second Kill is harmless
}

func TestPluginEnvironment(t *testing.T) {
	t.Setenv("DIRSYNC_TEST_SECRET", "hunter2")
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	t.Setenv("no_proxy", "localhost")
	t.Setenv("TZ", "Europe/Amsterdam")
	t.Setenv("HOME", "/root")
	inst := launch(t, New(nil), installFake(t, "dirsync-fake"))
	resp, err := inst.Connector().TestConnection(context.Background(), &connectorv1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, c := range resp.GetChecks() {
		env[c.GetName()] = c.GetDetail()
	}
	for _, c := range resp.GetChecks() {
		if strings.Contains(c.GetDetail(), "hunter2") {
			t.Errorf("the plugin sees the secret in %s", c.GetName())
		}
	}
	for _, key := range []string{"DIRSYNC_TEST_SECRET", "PATH", "HOME", "USER"} {
		if _, ok := env[key]; ok {
			t.Errorf("the plugin sees %s", key)
		}
	}
	for key, want := range map[string]string{
		"HTTPS_PROXY": "http://proxy.example:3128",
		"no_proxy":    "localhost",
		"TZ":          "Europe/Amsterdam",
	} {
		if env[key] != want {
			t.Errorf("plugin's %s = %q; want %q", key, env[key], want)
		}
	}
	allowed := []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "TZ", "GODEBUG"}
	for k := range env {
		if !strings.HasPrefix(k, "PLUGIN_") && k != connector.Handshake.MagicCookieKey && !slices.Contains(allowed, k) {
			t.Errorf("the plugin sees %s, which is not on the allowlist", k)
		}
	}
}

func TestPluginLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p := installFake(t, "dirsync-fake")
	p.Name = "fakeplug"
	inst := launch(t, New(zap.New(core)), p)
	if err := inst.Connector().Sync(context.Background(), &connectorv1.SyncRequest{
		Config: &connectorv1.Config{Json: []byte(`{"batches":1}`)},
		JobId:  "job-7",
	}, func(*connectorv1.SyncBatch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	find := func(msg string) observer.LoggedEntry {
		t.Helper()
		var entry observer.LoggedEntry
		testenv.Eventually(t, 30*time.Second, func() error {
			if found := logs.FilterMessage(msg).All(); len(found) > 0 {
				entry = found[0]
				return nil
			}
			var all []string
			for _, e := range logs.All() {
				all = append(all, fmt.Sprintf("%s %q %v", e.Level, e.Message, e.ContextMap()))
			}
			return fmt.Errorf("no log entry %q; have:\n%s", msg, strings.Join(all, "\n"))
		})
		return entry
	}
	for _, tt := range []struct {
		msg    string
		level  zapcore.Level
		fields map[string]any
	}{
		{"fake connector starting", zapcore.InfoLevel, nil},
		{"describe called", zapcore.InfoLevel, map[string]any{"answer": "fake", "fields": int64(1)}},
		{"describe detail", zapcore.DebugLevel, nil},
		{"sync starting", zapcore.WarnLevel, map[string]any{"batches": int64(1), "job": "job-7"}},
	} {
		e := find(tt.msg)
		ctx := e.ContextMap()
		if e.Level != tt.level || ctx["plugin"] != "fakeplug" {
			t.Errorf("%q: level %s, plugin %v; want %s, fakeplug", tt.msg, e.Level, ctx["plugin"], tt.level)
		}
		for k, want := range tt.fields {
			if ctx[k] != want {
				t.Errorf("%q: field %s = %#v; want %#v", tt.msg, k, ctx[k], want)
			}
		}
	}
	for _, e := range logs.All() {
		if got := e.ContextMap()["plugin"]; got != "fakeplug" {
			t.Errorf("entry %q has plugin = %v; want fakeplug", e.Message, got)
		}
	}
	if e := find("connector plugin ready"); e.ContextMap()["plugin"] != "fakeplug" || e.ContextMap()["version"] != "0.0.1" {
		t.Errorf("plugin started entry: %v", e.ContextMap())
	}
}

// TestPluginLogLevel checks the daemon's level filters plugin lines.
func TestPluginLogLevel(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	inst := launch(t, New(zap.New(core)), installFake(t, "dirsync-fake"))
	testenv.Eventually(t, 30*time.Second, func() error {
		if logs.FilterMessage("describe called").Len() == 0 {
			return errors.New("no describe called entry")
		}
		return nil
	})
	inst.Kill()
	for _, e := range logs.All() {
		if e.Level < zapcore.InfoLevel {
			t.Errorf("entry below info: %s %q", e.Level, e.Message)
		}
	}
}
