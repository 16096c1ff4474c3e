package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/internal/testenv"
)

const webhookSecret = "e2e-webhook-secret-0123456789abcdef"

// TestNotifyThroughAnOutage: a platform's webhook receiver is down for
// the whole of two jobs (one that fails on a wrong secret, one that
// creates every recipient) and for a restart of the daemon. While it is
// down, `dirsync notify status` shows the attempts failing and the
// events waiting; once it is back, every chosen event arrives signed,
// in CloudEvents structured mode, and each is taken exactly once.
func TestNotifyThroughAnOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	taken := map[string]int{}
	types := map[string]string{}
	var bad []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ce struct {
			SpecVersion, ID, Type, Source string
			Data                          json.RawMessage
		}
		err := notify.Verify([]byte(webhookSecret), body, r.Header.Get(notify.SignatureHeader), time.Now(), 5*time.Minute)
		if err == nil {
			err = json.Unmarshal(body, &ce)
		}
		if err == nil && (r.Header.Get("Content-Type") != notify.ContentType || ce.SpecVersion != "1.0" || ce.ID == "" || len(ce.Data) == 0) {
			err = fmt.Errorf("not CloudEvents structured mode: %s %s", r.Header.Get("Content-Type"), body)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad = append(bad, err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		taken[ce.ID]++
		types[ce.ID] = ce.Type
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)

	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
notify {
  webhook "platform" {
    url         = %q
    secret_file = "./webhook-secret"
    events      = ["job.failed", "guard.tripped", "recipient.created", "recipient.archived"]
    max_retry_wait = "2s"
  }
}`, rcv.URL))
	write(t, filepath.Join(f.dir, "webhook-secret"), webhookSecret+"\n", 0o600)
	f.start()

	if _, _, code := f.cli("sync", "wrong", "--wait"); code == 0 {
		t.Fatal("the sync of the connector with a wrong secret succeeded")
	}
	if out, errOut, code := f.cli("sync", "demo", "--wait"); code != 0 {
		t.Fatalf("sync demo: exit %d\n%s%s", code, out, errOut)
	}
	want := len(expectedRecipients(f.sim)) + 1 // every recipient created, and the failed job
	var st struct {
		Webhooks []notify.SinkStatus `json:"webhooks"`
	}
	testenv.Eventually(t, 2*time.Minute, func() error {
		f.cliJSON(&st, "notify", "status")
		if len(st.Webhooks) != 1 || st.Webhooks[0].Failed == 0 || st.Webhooks[0].Pending < uint64(want) {
			return fmt.Errorf("notify status while the receiver is down: %+v; want failures and %d waiting", st.Webhooks, want)
		}
		return nil
	})
	if s := st.Webhooks[0]; s.LastResult != "failed" || !strings.Contains(s.LastError, "503") || s.Delivered != 0 {
		t.Errorf("while down: %+v", s)
	}
	out, _, _ := f.cli("notify", "status")
	if !strings.Contains(out, "platform") || !strings.Contains(out, "503 Service Unavailable") {
		t.Errorf("dirsync notify status does not show the failing webhook:\n%s", out)
	}

	// A restart while the receiver is still down loses nothing.
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	f.start()
	down.Store(false)
	testenv.Eventually(t, 3*time.Minute, func() error {
		mu.Lock()
		n := len(taken)
		mu.Unlock()
		if n < want {
			return fmt.Errorf("%d of %d events arrived", n, want)
		}
		return nil
	})
	testenv.Eventually(t, time.Minute, func() error {
		f.cliJSON(&st, "notify", "status")
		if st.Webhooks[0].Pending != 0 {
			return fmt.Errorf("%d still waiting", st.Webhooks[0].Pending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	count := map[string]int{}
	for id, n := range taken {
		count[types[id]]++
		if n != 1 {
			t.Errorf("event %s (%s) was taken %d times", id, types[id], n)
		}
	}
	if count["io.dirsync.recipient.created.v1"] != want-1 || count["io.dirsync.sync.state.v1"] != 1 || len(count) != 2 {
		t.Errorf("events taken by type: %v; want %d recipients created and 1 failed job", count, want-1)
	}
	if len(bad) > 0 {
		t.Errorf("the receiver refused malformed or unsigned requests: %v", bad)
	}
	// The metrics say the same.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(f.dir, "data", config.SocketName))
	}}}
	resp, err := hc.Get("http://dirsyncd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`dirsync_notify_deliveries_total{result="delivered",webhook="platform"} ` + fmt.Sprint(want),
		`dirsync_notify_pending{webhook="platform"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("the metrics lack %q", want)
		}
	}
	if strings.Contains(f.log.String(), webhookSecret) || strings.Contains(out, webhookSecret) {
		t.Error("the webhook secret shows in the log or the CLI")
	}
}
