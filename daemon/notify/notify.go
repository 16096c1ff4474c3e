// Package notify delivers the events an admin must not miss to webhooks:
// a job that FAILED, a sync the mass-removal guard stopped, a connector
// that has not synced for too long, and recipients created or archived.
//
// Each webhook reads the event stream through its own durable JetStream
// consumer, so the stream is the queue: a receiver that is down keeps its
// events waiting (at most MaxAckPending in flight, each retried with
// backoff), and a restart of the daemon resumes where the consumer
// stopped. Every event is POSTed as the CloudEvents HTTP binding's
// structured mode (the stored envelope as the body) and signed with
// HMAC-SHA256. Delivery is at least once: a receiver deduplicates by the
// CloudEvents id, which is stable across retries and restarts.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
)

// ContentType is the CloudEvents structured mode's media type.
const ContentType = "application/cloudevents+json; charset=utf-8"

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// '<t>.<body>'>" keyed with the webhook's secret; the time lets a
// receiver refuse a replayed old request.
const SignatureHeader = "X-Dirsync-Signature"

// AttemptHeader says which delivery attempt of this event a request is
// (1 the first); WebhookHeader names the webhook block.
const (
	AttemptHeader = "X-Dirsync-Attempt"
	WebhookHeader = "X-Dirsync-Webhook"
)

// MaxAckPending bounds the events of one webhook in flight or waiting
// for a retry; the rest wait in the stream.
const MaxAckPending = 64

// Sign returns the signature header's value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header for body against secret, and that
// its time is within tolerance of now: what a receiver does.
func Verify(secret, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%s %q: want t=<unix seconds>,v1=<hex>", SignatureHeader, header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s old, more than %s: a replay, or a clock off", SignatureHeader, d.Round(time.Second), tolerance)
	}
	want := Sign(secret, body, time.Unix(sec, 0))
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("the signature does not match: a wrong secret, or the body was changed")
	}
	return nil
}

// Kind returns the notification kind of a stored event, or "" when it
// is none.
func Kind(e events.Event) string {
	switch e.Type {
	case events.TypeRecipientCreated:
		return config.NotifyRecipientCreated
	case events.TypeRecipientArchived:
		return config.NotifyRecipientArchived
	case events.TypeSyncState:
		var s events.SyncState
		if e.DecodeData(&s) != nil || s.State != events.StateFailed {
			return ""
		}
		if strings.Contains(s.Reason, jobs.GuardReason) {
			return config.NotifyGuardTripped
		}
		return config.NotifyJobFailed
	case TypeConnectorStale:
		return config.NotifyConnectorStale
	}
	return ""
}

// Options configure a Notifier.
type Options struct {
	JS     jetstream.JetStream
	Stream string
	// Webhooks, Emails and StaleAfter are the notify block's.
	Webhooks   []config.Webhook
	Emails     []config.Email
	StaleAfter time.Duration
	// LastSyncs returns each configured connector's last COMPLETED job's
	// time (nil: never), for connector.stale; nil turns staleness off.
	LastSyncs func() map[string]*time.Time
	// Source is the CloudEvents source of connector.stale events.
	Source string
	// MinBackoff and MaxBackoff bound the wait before a retry; defaults
	// 1s and 10m; a webhook's max_retry_wait caps it lower.
	MinBackoff, MaxBackoff time.Duration
	// CheckEvery is how often staleness is checked; default a minute.
	CheckEvery time.Duration
	Log        *zap.Logger
	Now        func() time.Time
	// Delivered, when set, is told of every attempt (for the metrics):
	// the webhook and the result, "delivered", "failed" or "rejected".
	Delivered func(webhook, result string)
}

// Notifier runs the webhooks' deliveries.
type Notifier struct {
	o      Options
	sinks  []*sink
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// sink is one webhook or email: cfg holds its name, events and retry
// cap (an email's URL is smtp://host:port), mail is set for an email.
type sink struct {
	cfg    config.Webhook
	secret []byte
	client *http.Client
	mail   *mailer
	cons   jetstream.Consumer

	mu    sync.Mutex
	stat  SinkStatus
	stale map[string]staleEvent // by connector, waiting for delivery
}

// SinkStatus is what `dirsync notify status` shows of a webhook.
type SinkStatus struct {
	Name string `json:"name"`
	// URL is the webhook's scheme and host ("/…" for the rest: it may
	// hold a token), or smtp://host:port for an email.
	URL string `json:"url"`
	// Events are the kinds it receives.
	Events []string `json:"events"`
	// Delivered counts events the receiver took (2xx); Failed counts
	// attempts that will be retried; Rejected counts events dropped
	// because the receiver refused them for good (see refusedForGood;
	// an SMTP 5xx for an email).
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	Rejected  int64 `json:"rejected"`
	// Pending counts events waiting: in the stream after the consumer,
	// in flight or waiting for a retry.
	Pending     uint64     `json:"pending"`
	LastAttempt *time.Time `json:"lastAttempt,omitempty"`
	LastResult  string     `json:"lastResult,omitempty"`
	LastError   string     `json:"lastError,omitempty"`
	LastEvent   string     `json:"lastEvent,omitempty"`
	NextRetry   *time.Time `json:"nextRetry,omitempty"`
}

// ConsumerName is the durable consumer of a webhook.
func ConsumerName(webhook string) string { return "dirsync_notify_" + webhook }

// readPrivate reads a secret file; it must be owner-only.
func readPrivate(what, path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is accessible by other users (mode %04o); run chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return bytes.TrimSpace(b), nil
}

// readSecret reads a webhook's HMAC key.
func readSecret(w config.Webhook) ([]byte, error) {
	b, err := readPrivate("webhook "+w.Name+": secret_file", w.SecretFile)
	if err != nil {
		return nil, err
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("webhook %s: secret_file %s holds fewer than 16 characters; create one with `head -c 32 /dev/urandom | base64`",
			w.Name, w.SecretFile)
	}
	return b, nil
}

// caPool returns the system's certificate pool with the PEM bundle at
// path added; what names the setting in errors.
func caPool(what, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", what, path)
	}
	return pool, nil
}

func httpClient(w config.Webhook) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if w.CAFile != "" {
		pool, err := caPool("webhook "+w.Name+": ca_file", w.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	// A receiver's redirect is not followed: the signature is for the
	// configured URL, and a redirect may leave the receiver's control.
	return &http.Client{Transport: tr, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// subjects are the stream subjects that can carry w's kinds.
func subjects(w config.Webhook) []string {
	var out []string
	if w.Wants(config.NotifyJobFailed) || w.Wants(config.NotifyGuardTripped) {
		out = append(out, events.SubjectRoot+".sync.>")
	}
	if w.Wants(config.NotifyRecipientCreated) || w.Wants(config.NotifyRecipientArchived) {
		out = append(out, events.SubjectRoot+".recipients.>")
	}
	return out
}

// Start creates or resumes each webhook's consumer and starts delivering.
// A webhook's consumer starts at the events stored after it was first
// created: a new webhook gets what happens from now on, not the history.
func Start(ctx context.Context, o Options) (*Notifier, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Minute
	}
	n := &Notifier{o: o}
	for _, w := range o.Webhooks {
		secret, err := readSecret(w)
		if err != nil {
			return nil, err
		}
		client, err := httpClient(w)
		if err != nil {
			return nil, err
		}
		s := &sink{cfg: w, secret: secret, client: client, stale: map[string]staleEvent{},
			stat: SinkStatus{Name: w.Name, URL: w.Endpoint(), Events: w.Events}}
		if subj := subjects(w); len(subj) > 0 {
			if s.cons, err = n.consumer(ctx, w, subj); err != nil {
				return nil, err
			}
		}
		n.sinks = append(n.sinks, s)
	}
	for _, e := range o.Emails {
		m, err := newMailer(e)
		if err != nil {
			return nil, err
		}
		w := config.Webhook{Name: e.Name, URL: "smtp://" + e.SMTP, Events: e.Events, MaxRetryWait: e.MaxRetryWait}
		s := &sink{cfg: w, mail: m, stale: map[string]staleEvent{}, stat: SinkStatus{Name: e.Name, URL: w.URL, Events: e.Events}}
		if subj := subjects(w); len(subj) > 0 {
			if s.cons, err = n.consumer(ctx, w, subj); err != nil {
				return nil, err
			}
		}
		n.sinks = append(n.sinks, s)
	}
	ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range n.sinks {
		if s.cons == nil {
			continue
		}
		cc, err := s.cons.Consume(func(m jetstream.Msg) { n.handle(ctx, s, m) }, jetstream.PullMaxMessages(MaxAckPending))
		if err != nil {
			n.cancel()
			return nil, fmt.Errorf("webhook %s: consuming: %w", s.cfg.Name, err)
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			<-ctx.Done()
			cc.Drain()
			<-cc.Closed()
		}()
	}
	if o.LastSyncs != nil && o.StaleAfter > 0 {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.watchStale(ctx)
		}()
	}
	return n, nil
}

// consumer creates or resumes the durable consumer of a sink.
func (n *Notifier) consumer(ctx context.Context, w config.Webhook, subj []string) (jetstream.Consumer, error) {
	c, err := n.o.JS.CreateOrUpdateConsumer(ctx, n.o.Stream, jetstream.ConsumerConfig{
		Durable: ConsumerName(w.Name), Description: "dirsync notify " + w.Name,
		FilterSubjects: subj, DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxDeliver: -1, MaxAckPending: MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("notify %s: creating its consumer %s on stream %s: %w", w.Name, ConsumerName(w.Name), n.o.Stream, err)
	}
	return c, nil
}

// Stop ends the deliveries; events not yet acknowledged are delivered
// after the next start.
func (n *Notifier) Stop() {
	n.cancel()
	n.wg.Wait()
}

// handle delivers one stored event to s, or acknowledges it when s does
// not want it.
func (n *Notifier) handle(ctx context.Context, s *sink, m jetstream.Msg) {
	e, err := events.Decode(m.Data())
	if err != nil {
		// Not an event dirsync can read: nothing to notify of.
		_ = m.Ack()
		return
	}
	if !s.cfg.Wants(Kind(e)) {
		_ = m.Ack()
		return
	}
	attempt := uint64(1)
	if md, err := m.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	res, err := n.post(ctx, s, e, m.Data(), attempt)
	var se *statusError
	switch res {
	case resultDelivered:
		_ = m.DoubleAck(ctx)
	case resultRejected:
		_ = m.Term()
	default:
		wait := n.backoff(s, attempt)
		if errors.As(err, &se) && se.retryAfter > wait {
			// The receiver said when to come back (429, 503), within
			// the webhook's cap.
			wait = min(se.retryAfter, n.retryCap(s))
		}
		n.retryAt(s, wait)
		_ = m.NakWithDelay(wait)
	}
}

const (
	resultDelivered = "delivered"
	resultFailed    = "failed"
	resultRejected  = "rejected"
)

// post sends one event to s and records the attempt.
func (n *Notifier) post(ctx context.Context, s *sink, e events.Event, body []byte, attempt uint64) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	id := e.ID
	err := func() error {
		if s.mail != nil {
			return s.mail.send(ctx, s.mail.message(Kind(e), e, n.o.Now()))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ContentType)
		// Signed at the wall clock the receiver checks it against.
		req.Header.Set(SignatureHeader, Sign(s.secret, body, time.Now()))
		req.Header.Set(AttemptHeader, strconv.FormatUint(attempt, 10))
		req.Header.Set(WebhookHeader, s.cfg.Name)
		req.Header.Set("User-Agent", "dirsync-notify")
		resp, err := s.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode/100 == 2 {
			return nil
		}
		se := &statusError{code: resp.StatusCode, status: resp.Status}
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs > 0 {
			se.retryAfter = time.Duration(secs) * time.Second
		}
		return se
	}()
	res := resultDelivered
	var se *statusError
	switch {
	case err == nil:
	case errors.As(err, &se) && refusedForGood(se.code):
		res = resultRejected
	case s.mail != nil && permanentMail(err):
		res = resultRejected
	default:
		res = resultFailed
	}
	now := n.o.Now()
	s.mu.Lock()
	s.stat.LastAttempt, s.stat.LastResult, s.stat.LastEvent, s.stat.LastError, s.stat.NextRetry = &now, res, id, "", nil
	switch res {
	case resultDelivered:
		s.stat.Delivered++
	case resultRejected:
		s.stat.Rejected++
	default:
		s.stat.Failed++
	}
	if err != nil {
		s.stat.LastError = describe(err)
	}
	s.mu.Unlock()
	if n.o.Delivered != nil {
		n.o.Delivered(s.cfg.Name, res)
	}
	switch res {
	case resultRejected:
		n.o.Log.Warn("webhook refused an event for good; it is dropped: fix the receiver or the webhook's url",
			zap.String("webhook", s.cfg.Name), zap.String("event", id), zap.String("error", describe(err)))
	case resultFailed:
		n.o.Log.Info("webhook delivery failed; it will be retried", zap.String("webhook", s.cfg.Name), zap.String("event", id),
			zap.Uint64("attempt", attempt), zap.String("error", describe(err)))
	}
	return res, err
}

// describe says what went wrong without the request's headers (the
// signature) or body.
func describe(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return "the receiver answered " + se.status
	}
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// refusedForGood reports an HTTP answer that refuses this one event for
// good: a 4xx but 408 and 429 (try later), and but 401, 403 and 404,
// which say the receiver or its configuration is wrong (a rotated
// secret, a moved URL) and would refuse every event alike: those are
// retried, so that fixing the receiver loses nothing.
func refusedForGood(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return false
	}
	return code/100 == 4
}

type statusError struct {
	code   int
	status string
	// retryAfter is the receiver's Retry-After in seconds, if it sent one.
	retryAfter time.Duration
}

func (e *statusError) Error() string { return "the receiver answered " + e.status }

// backoff is the wait before the retry after attempt: doubling from
// MinBackoff up to MaxBackoff, with a fifth of jitter so that a
// receiver coming back is not hit by every retry at once.
func (n *Notifier) backoff(s *sink, attempt uint64) time.Duration {
	top := n.retryCap(s)
	d := min(n.o.MinBackoff, top)
	for i := uint64(1); i < attempt && d < top; i++ {
		d *= 2
	}
	d = min(d, top)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// retryCap is the longest wait before a retry to s.
func (n *Notifier) retryCap(s *sink) time.Duration {
	if s.cfg.MaxRetryWait > 0 {
		return min(n.o.MaxBackoff, s.cfg.MaxRetryWait)
	}
	return n.o.MaxBackoff
}

func (n *Notifier) retryAt(s *sink, wait time.Duration) {
	t := n.o.Now().Add(wait)
	s.mu.Lock()
	s.stat.NextRetry = &t
	s.mu.Unlock()
}

// Status reports every webhook's deliveries and what waits for them.
func (n *Notifier) Status(ctx context.Context) []SinkStatus {
	out := make([]SinkStatus, 0, len(n.sinks))
	for _, s := range n.sinks {
		var pending uint64
		if s.cons != nil {
			if info, err := s.cons.Info(ctx); err == nil {
				pending = info.NumPending + uint64(info.NumAckPending)
			}
		}
		s.mu.Lock()
		st := s.stat
		st.Pending = pending + uint64(len(s.stale))
		s.mu.Unlock()
		out = append(out, st)
	}
	return out
}
