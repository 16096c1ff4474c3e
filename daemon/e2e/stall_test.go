package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// TestStalledProjectorDetected: when the read models stop following the
// stream (here: NATS refuses every write to the jobs bucket, while the
// stream takes events), /healthz turns 503 naming the stall once
// stall_timeout has passed, and the daemon stops feeding systemd's
// watchdog, so systemd would restart it; /readyz says not ready. When the
// cause goes before a restart, the daemon recovers by itself: the read
// models catch up, /healthz is 200, the watchdog is fed again, and the
// sync that waited completes and converges.
func TestStalledProjectorDetected(t *testing.T) {
	ns := testenv.StartNATS(t, "stall")
	f := newFixture(t, fmt.Sprintf("nats { url = %q }", ns.URL()))
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	write(t, f.config, strings.Replace(string(cfg), `  data_dir = "./data"`,
		`  data_dir      = "./data"
  stall_timeout = "5s"`, 1), 0o644)
	sock, msgs := notifySocket(t)
	// A 2 s watchdog: the daemon feeds it every second while it works.
	f.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=2000000"}
	f.start()
	if _, err := awaitNotify(msgs, "WATCHDOG=1", time.Minute); err != nil {
		t.Fatal(err)
	}
	f.syncJob()

	_, js := connectJS(t, ns.URL())
	ctx := context.Background()
	jobsKV := "KV_" + projections.BucketJobs
	setMaxMsgSize := func(n int32) {
		t.Helper()
		s, err := js.Stream(ctx, jobsKV)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		c.MaxMsgSize = n
		if _, err := js.UpdateStream(ctx, c); err != nil {
			t.Fatalf("updating %s: %v", jobsKV, err)
		}
	}
	setMaxMsgSize(1)
	began := time.Now()

	// A sync request: its PENDING event is stored, the read models cannot
	// mirror it. The request may fail (its job state is not seen in time).
	reqErr := make(chan error, 1)
	go func() {
		_, err := f.api().Sync(ctx, "demo", api.SyncRequest{})
		reqErr <- err
	}()

	health := unixHTTP(filepath.Join(f.dir, "data", "dirsyncd.sock"))
	testenv.Eventually(t, time.Minute, func() error {
		code, h := health("/healthz")
		if code != http.StatusServiceUnavailable || h.Status != "stalled" || !strings.Contains(h.Reason, "have not advanced for") {
			return fmt.Errorf("/healthz: %d %+v; want 503 stalled, naming the projections", code, h)
		}
		return nil
	})
	if code, h := health("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the stall: %d %+v; want 503", code, h)
	}
	// Each tick while stalled sends a status saying so, and no WATCHDOG=1.
	if _, err := awaitNotify(msgs, "STATUS=stalled: ", time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		select {
		case m := <-msgs:
			if strings.Contains(m, "WATCHDOG=1") || !strings.Contains(m, "STATUS=stalled: ") {
				t.Fatalf("notify message %d during the stall: %q; want a stalled status and no WATCHDOG=1", i, m)
			}
		case <-time.After(time.Minute):
			t.Fatal("the daemon stopped telling systemd anything during the stall")
		}
	}
	if !strings.Contains(f.log.String(), "dirsyncd has stalled") {
		t.Error("the stall was not logged")
	}
	detected := time.Since(began)

	// The cause goes: the daemon recovers by itself.
	setMaxMsgSize(-1)
	if _, err := awaitNotify(msgs, "WATCHDOG=1", time.Minute); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, func() error {
		if code, h := health("/healthz"); code != http.StatusOK {
			return fmt.Errorf("/healthz after the stall: %d %+v", code, h)
		}
		return nil
	})
	select {
	case err := <-reqErr:
		if err != nil {
			t.Logf("the sync requested during the stall failed (its state was not seen within 30 s): %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the sync request during the stall never returned")
	}
	j := f.syncJob()
	if j.State != events.StateCompleted {
		t.Fatalf("sync after the stall: %s %s", j.State, j.Reason)
	}
	report(t, faultRow{Case: "stall/read-models", Seed: "-", Fault: "NATS refuses every write to the jobs bucket (max_msg_size 1), stall_timeout 5s",
		AtFault: "a sync requested", Recovery: detected})
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	convergedIn(t, js, expectedRecipients(f.sim))
	assertEventLog(t, js)
}

// unixHTTP returns a GET of the daemon's health routes over its control
// socket.
func unixHTTP(sock string) func(path string) (int, api.Health) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	return func(path string) (int, api.Health) {
		resp, err := c.Get("http://dirsyncd" + path)
		if err != nil {
			return 0, api.Health{Reason: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var h api.Health
		_ = json.Unmarshal(b, &h)
		return resp.StatusCode, h
	}
}
