package azuread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	khttp "github.com/microsoft/kiota-http-go"
	"go.uber.org/zap"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Retry settings of Graph requests. The total time is bounded by the
// config's retry_budget, not by a number of attempts.
const (
	// attemptTimeout bounds one attempt: connecting, sending and reading
	// the whole response body.
	attemptTimeout = 100 * time.Second
	// defaultBackoffBase is the first backoff delay when Graph gave no
	// Retry-After; it doubles with each retry of the same request.
	defaultBackoffBase = time.Second
	// maxBackoff caps one backoff delay.
	maxBackoff = 30 * time.Second
	// retryAttemptHeader tells Graph (and graphsim) which retry a request
	// is, as kiota's own retry handler does.
	retryAttemptHeader = "Retry-Attempt"
)

// retryMiddleware is the kiota middleware that retries Graph requests. It
// replaces kiota's RetryHandler (which must not also be in the pipeline,
// or retries would multiply) to control in one place:
//
//   - what is retried: 429, 502, 503 and 504 responses and transport
//     failures (connection resets, timeouts, a body cut short), except
//     those no retry can fix (untrusted certificates, unknown hosts,
//     answers beyond the response limits of limits.go);
//   - how long to wait: Graph's Retry-After in seconds (fractions
//     allowed) or as an HTTP date, else an exponential backoff with
//     jitter;
//   - for how long: the config's retry_budget bounds the time the whole
//     sync spends on failed attempts and the waits after them (a flaky
//     Graph must not stretch one sync over hours, one page at a time); a
//     wait that would end past the budget is not started and the request
//     fails at once;
//   - the access token: each retry carries a token fetched from the
//     credential just before it, so a long wait never sends an expired
//     token (azidentity returns its cached token until it is about to
//     expire, then a new one);
//   - the counters of Progress (requests, retries, throttle_wait_ms).
//
// Each attempt reads the whole response body under its own timeout, so a
// connection reset in the middle of a page is retried like one before the
// headers, and the request adapter is handed a buffered body. Error
// bodies that are not JSON (a proxy's HTML page) are dropped, so that the
// adapter reports the status instead of a parse error.
type retryMiddleware struct {
	budget time.Duration
	base   time.Duration // first backoff delay
	stats  *stats
	log    *zap.Logger
	// token returns a fresh bearer token for a retry, or "" to keep the
	// request's Authorization header.
	token func(ctx context.Context) (string, error)
	// sleep waits d or until ctx ends; replaceable in tests.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ khttp.Middleware = (*retryMiddleware)(nil)

// attemptInfo is filled by the middleware for the caller that put it in
// the request's context (withAttemptInfo): how the request's attempts
// went.
type attemptInfo struct {
	attempts  int
	elapsed   time.Duration
	exhausted bool          // the retry budget ran out: the result is the last failure
	nextWait  time.Duration // when exhausted: the wait that did not fit
	waitAsked bool          // nextWait was Graph's Retry-After
	// readOnly marks a request whose method is not GET but which only
	// reads (a JSON $batch of GETs), so it may be sent again.
	readOnly bool
}

type attemptInfoKey struct{}

// withAttemptInfo returns ctx carrying info for the retry middleware.
func withAttemptInfo(ctx context.Context, info *attemptInfo) context.Context {
	return context.WithValue(ctx, attemptInfoKey{}, info)
}

// Intercept implements khttp.Middleware.
func (m *retryMiddleware) Intercept(pipeline khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	info, _ := ctx.Value(attemptInfoKey{}).(*attemptInfo)
	if info == nil {
		info = &attemptInfo{}
	}
	start := time.Now()
	m.stats.requests.Add(1)
	// A body (a JSON $batch's) is read once and given to each attempt
	// anew: the middleware after this one (compression) consumes it.
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the request body: %w", err)
		}
		body = b
	}
	retrying := false
	for attempt := 1; ; attempt++ {
		attemptStart := time.Now()
		// Each attempt goes down the pipeline as a copy: the middleware
		// after this one changes the request it is given (compression
		// sets Content-Encoding and then leaves a body it thinks
		// compressed alone), which must not leak into the next attempt.
		r := req.Clone(ctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			r.ContentLength = int64(len(body))
		}
		if attempt > 1 {
			r.Header.Set(retryAttemptHeader, strconv.Itoa(attempt-1))
			if r.Header.Get("Authorization") != "" && m.token != nil {
				tok, err := m.token(ctx)
				if err != nil {
					return nil, fmt.Errorf("renewing the access token for a retry: %w", err)
				}
				if tok != "" {
					r.Header.Set("Authorization", "Bearer "+tok)
				}
			}
		}
		resp, err := m.attempt(pipeline, index, r)
		info.attempts = attempt
		info.elapsed = time.Since(start)
		if ctx.Err() != nil {
			// Canceled by the caller: no retry, whatever happened.
			if resp != nil {
				_ = resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		if !retryable(resp, err) || !(idempotent(req.Method) || info.readOnly) {
			if retrying {
				m.waveOver()
			}
			return resp, err
		}
		wait, throttled := m.delay(resp, attempt)
		if !retrying {
			retrying = true
			m.stats.retrying.begin(attemptStart)
			defer m.stats.retrying.end()
		}
		spent := m.stats.retrying.spent()
		if spent+wait > m.budget {
			info.exhausted, info.nextWait, info.waitAsked = true, wait, throttled
			m.log.Warn("giving up on a Graph request: the retry budget is spent",
				zap.String("path", req.URL.Path), zap.Int("attempts", attempt), zap.Duration("elapsed", info.elapsed),
				zap.Duration("nextWait", wait), zap.Duration("budget", m.budget), zap.String("last", outcome(resp, err)))
			return resp, err
		}
		if resp != nil {
			_ = resp.Body.Close()
		}
		m.stats.retries.Add(1)
		m.stats.throttleWaitMS.Add(wait.Milliseconds())
		m.announce(req, attempt, outcome(resp, err), wait, throttled, m.budget-spent)
		err = m.sleep(ctx, wait)
		m.stats.waiting.Add(-1)
		if err != nil {
			return nil, err
		}
	}
}

// announce records that a request waits before its next attempt. A wait
// that starts once the last announced one is over begins a retry wave:
// an outage must be visible while it lasts, in the log (warn) and in the
// host's progress, but once per wave, not once per request of a
// throttled burst.
func (m *retryMiddleware) announce(req *http.Request, attempt int, last string, wait time.Duration, retryAfter bool, budgetLeft time.Duration) {
	fields := []zap.Field{zap.String("path", req.URL.Path), zap.Int("attempt", attempt), zap.String("status", last),
		zap.Duration("wait", wait), zap.Bool("retryAfter", retryAfter), zap.Duration("budgetLeft", budgetLeft)}
	m.stats.waiting.Add(1)
	now := time.Now()
	m.stats.announceMu.Lock()
	wave := !now.Before(m.stats.announced)
	if wave {
		m.stats.announced = now.Add(wait)
	}
	m.stats.announceMu.Unlock()
	if !wave {
		m.log.Debug("retrying a Graph request", fields...)
		return
	}
	m.log.Warn(fmt.Sprintf("Graph answered %s; retrying in %s (attempt %d; %s of retry_budget %s left)",
		last, roundDuration(wait), attempt, roundDuration(budgetLeft), m.budget), fields...)
	if m.stats.onRetry != nil {
		m.stats.reported.Store(true)
		m.stats.onRetry(&connectorv1.Retrying{Cause: "Graph answered " + last, Attempt: int64(attempt),
			WaitMs: wait.Milliseconds(), BudgetLeftMs: max(budgetLeft, 0).Milliseconds()})
	}
}

// waveOver tells the host a retried request went through, once no other
// request is waiting: the wave it was told of has ended.
func (m *retryMiddleware) waveOver() {
	if m.stats.waiting.Load() == 0 && m.stats.onRetry != nil && m.stats.reported.CompareAndSwap(true, false) {
		m.stats.onRetry(nil)
	}
}

// roundDuration rounds a wait for people: 4s, 1.5s, 9m41s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// attempt sends one attempt through the rest of the pipeline and reads
// its body under attemptTimeout.
func (m *retryMiddleware) attempt(pipeline khttp.Pipeline, index int, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), attemptTimeout)
	defer cancel()
	resp, err := pipeline.Next(req.WithContext(ctx), index)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the response body: %w", err)
	}
	if resp.StatusCode >= 400 && len(body) > 0 && !isJSON(resp.Header.Get("Content-Type")) {
		body = nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// isJSON reports a JSON media type (application/json, ...+json).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// idempotent reports methods safe to send twice.
func idempotent(method string) bool {
	return method == "" || method == http.MethodGet || method == http.MethodHead
}

// retryable reports outcomes worth another attempt.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !isPermanentTransportError(err) && !errors.Is(err, context.Canceled)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// delay is the wait before the next attempt: Retry-After when the
// response has a usable one (fromHeader), else the backoff of attempt.
func (m *retryMiddleware) delay(resp *http.Response, attempt int) (wait time.Duration, fromHeader bool) {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return d, true
		}
	}
	return backoff(m.base, attempt, rand.Float64()), false
}

// parseRetryAfter reads a Retry-After value: delay-seconds, which Graph
// sends with a fraction ("2.128"), or an HTTP date. A date in the past
// means now. ok is false when the header is absent or unreadable.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(s) || s < 0 {
			return 0, false
		}
		if s > maxRetryBudget.Seconds() {
			return maxRetryBudget, true
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// backoff is the exponential backoff of the attempt-th retry (1-based):
// base·2^(attempt-1), capped at maxBackoff, scaled into [½, 1] by jitter
// (a number in [0, 1)), so that clients throttled together do not come
// back together.
func backoff(base time.Duration, attempt int, jitter float64) time.Duration {
	d := maxBackoff
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 30 {
		if e := base << (attempt - 1); e > 0 && e < maxBackoff {
			d = e
		}
	}
	return time.Duration(float64(d) * (0.5 + jitter/2))
}

// outcome describes an attempt's result for logs (never the URL, whose
// delta and skip tokens are long).
func outcome(resp *http.Response, err error) string {
	if err != nil {
		return transportDetail(err)
	}
	return resp.Status
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryBudgetError is the failure of a Graph request that was retried
// until the config's retry_budget was spent. Err is the last attempt's
// failure (a Graph error response or a transport error).
type RetryBudgetError struct {
	// Budget is retry_budget.
	Budget time.Duration
	// Attempts were made over Elapsed.
	Attempts int
	Elapsed  time.Duration
	// RetryAfter is set when Graph asked (Retry-After) for a wait longer
	// than what was left of the budget.
	RetryAfter time.Duration
	Err        error
}

// Error says what failed last and for how long it was retried. It does
// not print Err itself when Graph answered (the SDK's error value may
// panic when printed); explain gives the full story.
func (e *RetryBudgetError) Error() string {
	last := "a transport error"
	if ge, ok := asGraphError(e.Err); ok {
		last = ge.Error()
	} else if e.Err != nil {
		last = transportDetail(e.Err)
	}
	return last + ", " + e.retried()
}

// retried says how long the request was retried and why it stopped.
func (e *RetryBudgetError) retried() string {
	s := fmt.Sprintf("still after %s over %s", attempts(e.Attempts), e.Elapsed.Round(time.Millisecond))
	if e.RetryAfter > 0 {
		return s + fmt.Sprintf(", and Graph asked to wait %s more (Retry-After), beyond the retry budget (retry_budget %s)", e.RetryAfter.Round(time.Millisecond), e.Budget)
	}
	return s + fmt.Sprintf(", when the retry budget (retry_budget %s) was spent", e.Budget)
}

// Unwrap returns the last attempt's failure.
func (e *RetryBudgetError) Unwrap() error { return e.Err }
