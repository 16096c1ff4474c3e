package azuread

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// logEntry is one JSON line of logBuffer's logger.
type logEntry struct {
	Level      string  `json:"level"`
	Msg        string  `json:"msg"`
	Status     string  `json:"status"`
	Attempt    int     `json:"attempt"`
	Wait       float64 `json:"wait"`
	BudgetLeft float64 `json:"budgetLeft"`
}

func logEntries(t *testing.T, logs string) []logEntry {
	t.Helper()
	var out []logEntry
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var e logEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// TestRetryWaveReported: while Graph is failing, each wait is told at
// once, in a warn line with the status, the wait and what is left of the
// retry budget, and in a batch with no objects whose progress says so;
// once a retry goes through, a batch says the wave is over. The sync
// reads the same as without the outage.
func TestRetryWaveReported(t *testing.T) {
	g := startCanned(t, cannedDirectory())
	// The first users/delta page fails twice, then answers; groups are
	// never faulted, so each users wait begins a wave of its own.
	g.fault = func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
		if key != "users:initial" || attempt > 1 {
			return false
		}
		w.Header().Set("Retry-After", "0.05")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":{"code":"serviceNotAvailable","message":"Service unavailable"}}`)
		return true
	}
	log, logs := logBuffer()
	r := mustSync(t, New(log), &connectorv1.SyncRequest{Config: g.config(t, map[string]any{"retry_budget": "5m"}), GroupTypes: []string{"unified", "security"}})
	checkCannedFull(t, r)

	want := regexp.MustCompile(`^Graph answered 503 Service Unavailable; retrying in 50ms \(attempt ([12]); (\S+) of retry_budget 5m0s left\)$`)
	var attempts []int
	for _, e := range logEntries(t, logs.String()) {
		m := want.FindStringSubmatch(e.Msg)
		if m == nil {
			continue
		}
		if e.Level != "warn" || e.Status != "503 Service Unavailable" || e.Wait != 0.05 || e.BudgetLeft <= 0 || e.BudgetLeft > 300 {
			t.Errorf("retry line %+v", e)
		}
		attempts = append(attempts, e.Attempt)
	}
	if len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 {
		t.Errorf("warn lines for attempts %v; want [1 2]:\n%s", attempts, logs.String())
	}

	// The host hears of both waits, each at once (in a batch that also
	// carries what was pending, if anything), and of the end of the wave
	// before the final batch.
	var reports []string
	for _, b := range r.batches {
		rt := b.GetProgress().GetRetrying()
		switch {
		case rt != nil && (reports == nil || reports[len(reports)-1] != rt.String()):
			if rt.GetCause() != "Graph answered 503 Service Unavailable" || rt.GetWaitMs() != 50 || rt.GetBudgetLeftMs() <= 0 || rt.GetBudgetLeftMs() > 300_000 {
				t.Errorf("retrying %v", rt)
			}
			reports = append(reports, rt.String())
		case rt == nil && len(reports) > 0 && reports[len(reports)-1] != "over":
			reports = append(reports, "over")
		}
	}
	if len(reports) != 3 || !strings.Contains(reports[0], "attempt:1") || !strings.Contains(reports[1], "attempt:2") || reports[2] != "over" {
		t.Errorf("retry reports %q; want attempt 1, attempt 2, over", reports)
	}
	if r.last.GetProgress().GetRetrying() != nil {
		t.Errorf("the final batch still reports a retry: %v", r.last.GetProgress())
	}
	if p := r.last.GetProgress(); p.GetRetries() != 2 {
		t.Errorf("%d retries counted; want 2", p.GetRetries())
	}
}

// TestRetryWaveOnce: a wait that starts while an announced one lasts
// (the other reader meeting the same outage, the rest of a throttled
// burst) is part of that wave: logged at debug level, not reported again.
// Once the announced wait is over, the next one is a new wave.
func TestRetryWaveOnce(t *testing.T) {
	log, logs := logBuffer()
	var reports []*connectorv1.Retrying
	st := &stats{onRetry: func(r *connectorv1.Retrying) { reports = append(reports, r) }}
	m := &retryMiddleware{budget: 10 * time.Minute, stats: st, log: log}
	req := httptest.NewRequest(http.MethodGet, "https://graph.example/v1.0/users/delta", nil)

	m.announce(req, 1, "429 Too Many Requests", time.Hour, true, 10*time.Minute) // a wave
	m.announce(req, 1, "429 Too Many Requests", time.Hour, true, 10*time.Minute) // within it
	st.announceMu.Lock()
	st.announced = time.Now().Add(-time.Second) // the announced wait is over
	st.announceMu.Unlock()
	m.announce(req, 2, "503 Service Unavailable", 2*time.Second, false, 90*time.Second) // a new wave

	var levels []string
	for _, e := range logEntries(t, logs.String()) {
		levels = append(levels, e.Level+" "+e.Msg)
	}
	want := []string{
		"warn Graph answered 429 Too Many Requests; retrying in 1h0m0s (attempt 1; 10m0s of retry_budget 10m0s left)",
		"debug retrying a Graph request",
		"warn Graph answered 503 Service Unavailable; retrying in 2s (attempt 2; 1m30s of retry_budget 10m0s left)",
	}
	if strings.Join(levels, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(levels, "\n"), strings.Join(want, "\n"))
	}
	if len(reports) != 2 || reports[0].GetAttempt() != 1 || reports[0].GetWaitMs() != 3_600_000 ||
		reports[1].GetCause() != "Graph answered 503 Service Unavailable" || reports[1].GetBudgetLeftMs() != 90_000 {
		t.Errorf("reports %v", reports)
	}

	// The wave ends when a retried request goes through and no other
	// waits: the host is told once.
	m.waveOver()
	if len(reports) != 2 {
		t.Fatalf("wave over while 3 requests wait: reports %v", reports)
	}
	st.waiting.Store(0)
	m.waveOver()
	m.waveOver()
	if len(reports) != 3 || reports[2] != nil {
		t.Errorf("reports after the wave: %v; want one nil", reports)
	}
}
