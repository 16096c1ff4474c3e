package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

const testSecret = "webhook-secret-0123456789abcdef"

// receiver is a webhook receiver as a platform would write one: it
// checks the CloudEvents structured mode and the signature, and answers
// 503 while down; a 2xx is an event taken.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	down atomic.Bool
	// refuse answers 400 to the event with this ID (a receiver that
	// cannot take it, ever).
	refuse atomic.Value
	mu     sync.Mutex
	taken  map[string]int // event ID → 2xx answers
	types  map[string]string
	tries  int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, taken: map[string]int{}, types: map[string]string{}}
	r.refuse.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.tries++
		r.mu.Unlock()
		if ct := req.Header.Get("Content-Type"); ct != ContentType {
			t.Errorf("Content-Type %q; want %q", ct, ContentType)
		}
		if err := Verify([]byte(testSecret), body, req.Header.Get(SignatureHeader), time.Now(), 5*time.Minute); err != nil {
			t.Errorf("signature: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ce struct {
			SpecVersion string          `json:"specversion"`
			ID          string          `json:"id"`
			Type        string          `json:"type"`
			Source      string          `json:"source"`
			Data        json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ce); err != nil || ce.SpecVersion != "1.0" || ce.ID == "" || ce.Source == "" || len(ce.Data) == 0 {
			t.Errorf("not a CloudEvents 1.0 structured message (%v): %s", err, body)
		}
		if r.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if ce.ID == r.refuse.Load().(string) {
			http.Error(w, "cannot take this", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.taken[ce.ID]++
		r.types[ce.ID] = ce.Type
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) snapshot() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.taken {
		out[k] = v
	}
	return out, r.tries
}

type fixture struct {
	t    *testing.T
	js   *store.Store
	opts Options
	logs *observer.ObservedLogs
}

func newFixture(t *testing.T, url string, kinds ...string) *fixture {
	t.Helper()
	b := testenv.JetStream(t, t.TempDir())
	st, err := store.Open(context.Background(), b.JS, 1)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	return &fixture{t: t, js: st, logs: logs, opts: Options{JS: b.JS, Stream: store.StreamName,
		Webhooks:   []config.Webhook{{Name: "platform", URL: url, SecretFile: secret, Events: kinds}},
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, CheckEvery: 50 * time.Millisecond, Log: zap.New(core)}}
}

func (f *fixture) start() *Notifier {
	f.t.Helper()
	n, err := Start(context.Background(), f.opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(n.Stop)
	return n
}

func (f *fixture) append(evs ...events.Event) {
	f.t.Helper()
	if _, err := f.js.Append(context.Background(), evs); err != nil {
		f.t.Fatal(err)
	}
}

var at = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func syncState(job, state, reason string) events.Event {
	return events.New(events.TypeSyncState, events.SyncSubject("demo", job), "demo", job, 0, at,
		events.SyncState{JobID: job, Connector: "demo", State: state, Reason: reason})
}

func recipient(job, typ, id string) events.Event {
	r := events.Recipient{ID: "demo." + id, Connector: "demo", ObjectID: id, Email: id + "@contoso.com", Status: events.RecipientActive}
	return events.New(typ, events.RecipientSubject("demo", id), "demo", job, 0, at, events.RecipientChange{Recipient: r, Reason: "test"})
}

// TestOutageAndRestart: the receiver is down while a job's events are
// stored and while the notifier restarts; once it is back, every event
// of a chosen kind arrives, signed, exactly once as a 2xx, and events of
// other kinds never.
func TestOutageAndRestart(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.srv.URL, config.NotifyJobFailed, config.NotifyGuardTripped, config.NotifyRecipientCreated, config.NotifyRecipientArchived)
	rcv.down.Store(true)
	n := f.start()

	want := map[string]string{}
	batch1 := []events.Event{
		syncState("j1", events.StatePending, ""),
		recipient("j1", events.TypeRecipientCreated, "u1"),
		recipient("j1", events.TypeRecipientCreated, "u2"),
		recipient("j1", events.TypeRecipientUpdated, "u3"),
		syncState("j1", events.StateCompleted, ""),
		syncState("j2", events.StateFailed, "the client secret was rejected"),
	}
	f.append(batch1...)
	for _, i := range []int{1, 2, 5} {
		want[batch1[i].ID] = batch1[i].Type
	}
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Failed < 6 {
			return fmt.Errorf("%d failed attempts so far", st.Failed)
		}
		return nil
	})
	// A restart while the receiver is still down: the consumer keeps
	// its place; what is stored meanwhile waits too.
	n.Stop()
	batch2 := []events.Event{
		recipient("j3", events.TypeRecipientArchived, "u1"),
		syncState("j3", events.StateFailed, "this sync would remove 90 of 100 recipients, more than max_removals allows (10%); nothing was changed."),
	}
	f.append(batch2...)
	for _, e := range batch2 {
		want[e.ID] = e.Type
	}
	n = f.start()
	if st := n.Status(context.Background())[0]; st.Pending < uint64(len(want)) {
		t.Errorf("after the restart %d events pending; want at least %d", st.Pending, len(want))
	}
	rcv.down.Store(false)
	testenv.Eventually(t, time.Minute, func() error {
		got, _ := rcv.snapshot()
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d events arrived", len(got), len(want))
		}
		return nil
	})
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Pending != 0 {
			return fmt.Errorf("%d still pending", st.Pending)
		}
		return nil
	})
	got, _ := rcv.snapshot()
	for id, typ := range want {
		if got[id] != 1 {
			t.Errorf("event %s (%s) was taken %d times; want once", id, typ, got[id])
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s (%s) is of a kind the webhook did not choose", id, rcv.types[id])
		}
	}
	st := n.Status(context.Background())[0]
	if st.Delivered != int64(len(want)) || st.LastResult != "delivered" || st.LastError != "" {
		t.Errorf("status %+v", st)
	}
}

// TestKinds: the kind each stored event is notified as.
func TestKinds(t *testing.T) {
	tests := []struct {
		e    events.Event
		want string
	}{
		{syncState("j", events.StateFailed, "the token was refused"), config.NotifyJobFailed},
		{syncState("j", events.StateFailed, "this sync would remove 9 of 10 recipients, more than max_removals allows (10%)"), config.NotifyGuardTripped},
		{syncState("j", events.StateCompleted, ""), ""},
		{syncState("j", events.StateCanceled, "a newer job"), ""},
		{recipient("j", events.TypeRecipientCreated, "u"), config.NotifyRecipientCreated},
		{recipient("j", events.TypeRecipientArchived, "u"), config.NotifyRecipientArchived},
		{recipient("j", events.TypeRecipientRestored, "u"), ""},
		{StaleEvent("demo", at, time.Hour, at.Add(2*time.Hour)), config.NotifyConnectorStale},
	}
	for _, tt := range tests {
		// Through the wire format, as the consumer reads it.
		b, err := tt.e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := Kind(e); got != tt.want {
			t.Errorf("%s %v: kind %q; want %q", tt.e.Type, tt.e.Data, got, tt.want)
		}
	}
}

// TestRefusedForGood: an event the receiver refuses with a 4xx is
// dropped and counted, not retried for ever, and the next one flows.
func TestRefusedForGood(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.srv.URL, config.NotifyRecipientCreated)
	n := f.start()
	bad, good := recipient("j1", events.TypeRecipientCreated, "bad"), recipient("j1", events.TypeRecipientCreated, "good")
	rcv.refuse.Store(bad.ID)
	f.append(bad, good)
	testenv.Eventually(t, time.Minute, func() error {
		st := n.Status(context.Background())[0]
		if st.Rejected != 1 || st.Delivered != 1 || st.Pending != 0 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if got, tries := rcv.snapshot(); got[good.ID] != 1 || got[bad.ID] != 0 || tries != 2 {
		t.Errorf("taken %v after %d requests; want the good one once, the refused one tried once", got, tries)
	}
	if f.logs.FilterMessageSnippet("refused an event for good").Len() != 1 {
		t.Error("the refusal was not logged")
	}
}

// TestStale: a connector without a completed sync for longer than
// stale_after is notified once per stale spell, with an ID that a
// restart (or another replica) derives again; a connector that synced
// recently is not.
func TestStale(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv.srv.URL, config.NotifyConnectorStale)
	old, recent := at.Add(-30*time.Hour), at.Add(-time.Hour)
	f.opts.StaleAfter = 26 * time.Hour
	began := time.Now()
	f.opts.Now = func() time.Time { return at.Add(time.Since(began)) } // at, then running
	f.opts.LastSyncs = func() map[string]*time.Time {
		return map[string]*time.Time{"old": &old, "recent": &recent, "never": nil}
	}
	rcv.down.Store(true)
	n := f.start()
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Failed < 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	rcv.down.Store(false)
	testenv.Eventually(t, time.Minute, func() error {
		if got, _ := rcv.snapshot(); len(got) != 1 {
			return fmt.Errorf("taken %v", got)
		}
		return nil
	})
	first, _ := rcv.snapshot()
	n.Stop()
	f.start()
	testenv.Eventually(t, time.Minute, func() error {
		got, _ := rcv.snapshot()
		for id, c := range got {
			if c == 2 && first[id] == 1 {
				return nil
			}
		}
		return fmt.Errorf("after a restart: taken %v", got)
	})
	got, _ := rcv.snapshot()
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) != 1 || rcv.types[ids[0]] != TypeConnectorStale || ids[0] != StaleEvent("old", old, time.Hour, at).ID {
		t.Errorf("stale events %v (%v); want one, about connector old", ids, rcv.types)
	}
}

// TestSecretsNeverShown: the HMAC secret is in no status, log line or
// error.
func TestSecretsNeverShown(t *testing.T) {
	rcv := newReceiver(t)
	rcv.down.Store(true)
	// A webhook URL may carry a token in its path, as Slack's do.
	const urlToken = "sekrit-url-token-42"
	f := newFixture(t, rcv.srv.URL+"/services/"+urlToken, config.NotifyRecipientCreated)
	n := f.start()
	f.append(recipient("j1", events.TypeRecipientCreated, "u1"))
	testenv.Eventually(t, time.Minute, func() error {
		if st := n.Status(context.Background())[0]; st.Failed < 2 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	b, _ := json.Marshal(n.Status(context.Background()))
	var all strings.Builder
	all.Write(b)
	for _, e := range f.logs.All() {
		fmt.Fprintf(&all, "%s %v\n", e.Message, e.ContextMap())
	}
	if strings.Contains(all.String(), testSecret) || strings.Contains(all.String(), urlToken) {
		t.Errorf("the secret shows:\n%s", all.String())
	}
	// A secret file others can read is refused, naming the fix.
	if err := os.Chmod(f.opts.Webhooks[0].SecretFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), f.opts)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), testSecret) {
		t.Errorf("a readable secret file: %v", err)
	}
}

// TestSignature: what a receiver checks, including a replay and a
// changed body.
func TestSignature(t *testing.T) {
	body := []byte(`{"specversion":"1.0"}`)
	h := Sign([]byte(testSecret), body, at)
	tests := []struct {
		name   string
		secret string
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"good", testSecret, body, at.Add(time.Minute), true},
		{"wrong secret", "another-secret-0000000000", body, at, false},
		{"changed body", testSecret, []byte(`{"specversion":"1.1"}`), at, false},
		{"replayed an hour later", testSecret, body, at.Add(time.Hour), false},
	}
	for _, tt := range tests {
		if err := Verify([]byte(tt.secret), tt.body, h, tt.now, 5*time.Minute); (err == nil) != tt.ok {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// Which answers drop an event and which are retried.
func TestRefusedForGoodCodes(t *testing.T) {
	for code, want := range map[int]bool{400: true, 410: true, 413: true, 422: true,
		401: false, 403: false, 404: false, 408: false, 429: false, 500: false, 503: false} {
		if got := refusedForGood(code); got != want {
			t.Errorf("%d: refused for good %v; want %v", code, got, want)
		}
	}
}

// A receiver's Retry-After sets the wait before the retry, within the
// webhook's cap.
func TestRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	f := newFixture(t, srv.URL, config.NotifyRecipientCreated)
	f.opts.Now = func() time.Time { return at }
	f.opts.Webhooks[0].MaxRetryWait = 90 * time.Second
	f.opts.MaxBackoff = time.Hour
	n := f.start()
	f.append(recipient("j1", events.TypeRecipientCreated, "u1"))
	testenv.Eventually(t, time.Minute, func() error {
		st := n.Status(context.Background())[0]
		if st.Failed < 1 || st.NextRetry == nil {
			return fmt.Errorf("status %+v", st)
		}
		if got := st.NextRetry.Sub(at); got != 90*time.Second {
			return fmt.Errorf("next retry in %s; want Retry-After's 120s capped at max_retry_wait 90s", got)
		}
		return nil
	})
}
