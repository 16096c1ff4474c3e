package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Notification kinds a notify block's sinks choose from.
const (
	// NotifyJobFailed: a sync job FAILED (not stopped by the guard).
	NotifyJobFailed = "job.failed"
	// NotifyGuardTripped: the mass-removal guard stopped a sync.
	NotifyGuardTripped = "guard.tripped"
	// NotifyConnectorStale: a connector has not completed a sync for
	// longer than stale_after.
	NotifyConnectorStale = "connector.stale"
	// NotifyRecipientCreated and NotifyRecipientArchived: recipient events.
	NotifyRecipientCreated  = "recipient.created"
	NotifyRecipientArchived = "recipient.archived"
)

// NotifyKinds lists every kind, in the order messages give them.
func NotifyKinds() []string {
	return []string{NotifyJobFailed, NotifyGuardTripped, NotifyConnectorStale, NotifyRecipientCreated, NotifyRecipientArchived}
}

// DefaultStaleAfter is stale_after's default: a daily schedule that
// missed one run and then some.
const DefaultStaleAfter = 26 * time.Hour

// Notify is the notify block: where dirsync sends what an admin must not
// miss. Each webhook has a durable JetStream consumer, so deliveries wait
// out a receiver's outage and a restart of the daemon.
type Notify struct {
	// StaleAfter is how long a connector may go without a COMPLETED job
	// before connector.stale is sent.
	StaleAfter time.Duration
	Webhooks   []Webhook
	Emails     []Email
}

// Email is a notify block's email "name" block: mail over SMTP with
// STARTTLS for the failure kinds.
type Email struct {
	Name string
	// SMTP is the server's host:port (submission, usually 587). The
	// connection must upgrade with STARTTLS: dirsync never sends the
	// password or a message in clear.
	SMTP string
	From string
	To   []string
	// AuthFile, optional, holds "user:password" for SMTP AUTH PLAIN
	// (owner-only).
	AuthFile string
	// CAFile, optional, is a PEM bundle the server's certificate is
	// checked against, beside the system's.
	CAFile       string
	Events       []string
	MaxRetryWait time.Duration
	Range        hcl.Range
}

// EmailKinds are the kinds an email block may choose: the failures.
func EmailKinds() []string {
	return []string{NotifyJobFailed, NotifyGuardTripped, NotifyConnectorStale}
}

// Webhook is a notify block's webhook "name" block.
type Webhook struct {
	Name string
	// URL receives a POST per event: the CloudEvents HTTP binding,
	// structured mode.
	URL string
	// SecretFile holds the HMAC-SHA256 key of the X-Dirsync-Signature
	// header (owner-only, like every secret file).
	SecretFile string
	// CAFile, optional, is a PEM bundle the receiver's certificate is
	// checked against, beside the system's.
	CAFile string
	// Events are the kinds this webhook receives.
	Events []string
	// MaxRetryWait caps the wait between retries of one event (the wait
	// doubles from a second); zero means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	Range        hcl.Range
}

// DefaultMaxRetryWait is max_retry_wait's default: a receiver back from
// an outage gets its events within ten minutes.
const DefaultMaxRetryWait = 10 * time.Minute

// Endpoint is the URL as messages, logs and the status show it: scheme
// and host only, with "/…" for a path or query. Webhook URLs often carry
// a token in their path (Slack's, Teams'), which must not be shown.
func (w Webhook) Endpoint() string { return redactURL(w.URL) }

func redactURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Wants reports whether w receives kind.
func (w Webhook) Wants(kind string) bool { return contains(w.Events, kind) }

func (ps *parser) notify(b *hclsyntax.Block) {
	if b == nil {
		return
	}
	const where = "notify block"
	n := &ps.cfg.Notify
	n.StaleAfter = DefaultStaleAfter
	attrs := ps.attrs(b.Body, where, []string{"stale_after"}, []string{"webhook", "email"})
	ps.duration(attrs, "stale_after", where, time.Minute, 365*24*time.Hour, "1m", `"26h"`, &n.StaleAfter)
	seen := map[string]hcl.Pos{}
	for _, wb := range b.Body.Blocks {
		if wb.Type != "webhook" && wb.Type != "email" {
			continue
		}
		if !ps.labels(wb, 1, "its name, e.g. "+wb.Type+" \"ops\" { … }") || !ps.name(wb, wb.Type) {
			continue
		}
		name := wb.Labels[0]
		// Webhooks and emails share one namespace: each name is a durable
		// consumer, dirsync_notify_<name>.
		if first, dup := seen[name]; dup {
			ps.at(wb.LabelRanges[0].Start, "duplicate notification name %q (webhooks and emails share names); it is first declared at %s", name, ps.where(first))
			continue
		}
		seen[name] = wb.LabelRanges[0].Start
		if wb.Type == "email" {
			if e, ok := ps.email(wb, name); ok {
				n.Emails = append(n.Emails, e)
			}
			continue
		}
		if w, ok := ps.webhook(wb, name); ok {
			n.Webhooks = append(n.Webhooks, w)
		}
	}
}

func (ps *parser) webhook(b *hclsyntax.Block, name string) (Webhook, bool) {
	where := "webhook " + name
	w := Webhook{Name: name, Range: b.DefRange()}
	attrs := ps.attrs(b.Body, where, []string{"url", "secret_file", "ca_file", "events", "max_retry_wait"}, nil)
	ok := true
	raw, set, good := ps.str(attrs, "url", where)
	switch {
	case !good:
		ok = false
	case !set:
		ps.at(b.TypeRange.Start, "%s needs url, the address that receives the events, e.g. url = \"https://hooks.example.com/dirsync\"", where)
		ok = false
	default:
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			ps.at(attrs["url"].Expr.Range().Start, "url %s in %s must be an http(s) URL with a host and no user:password, e.g. \"https://hooks.example.com/dirsync\"", redactURL(raw), where)
			ok = false
		} else if u.Scheme == "http" && !loopback(u.Host) && !loopback(u.Host+":80") {
			ps.at(attrs["url"].Expr.Range().Start, "url %s in %s is plain http to another machine: the events name people; use https (ca_file trusts a private CA)", redactURL(raw), where)
			ok = false
		}
		w.URL = strings.TrimSpace(raw)
	}
	if attrs["secret_file"] == nil {
		ps.at(b.TypeRange.Start, "%s needs secret_file, the HMAC key receivers check the X-Dirsync-Signature header with "+
			"(create one with `(umask 077; head -c 32 /dev/urandom | base64 > webhook-secret)`)", where)
		ok = false
	}
	w.SecretFile, _ = ps.path(attrs, "secret_file", where)
	w.CAFile, _ = ps.path(attrs, "ca_file", where)
	w.MaxRetryWait = DefaultMaxRetryWait
	ps.duration(attrs, "max_retry_wait", where, time.Second, 24*time.Hour, "1s", `"10m"`, &w.MaxRetryWait)
	var kindsOK bool
	w.Events, kindsOK = ps.kinds(b, attrs, where, NotifyKinds())
	return w, ok && kindsOK
}

// kinds reads a notification block's events, each one of allowed.
func (ps *parser) kinds(b *hclsyntax.Block, attrs map[string]*hclsyntax.Attribute, where string, allowed []string) ([]string, bool) {
	items, set := ps.list(attrs, "events", where)
	if !set {
		ps.at(b.TypeRange.Start, "%s needs events, the kinds it receives: any of %s", where, strings.Join(allowed, ", "))
		return nil, false
	}
	ok := true
	var out []string
	for _, it := range items {
		if !contains(allowed, it.s) {
			ps.at(it.pos, "events item %d of %s is %q; give any of %s", it.n, where, it.s, strings.Join(allowed, ", "))
			ok = false
			continue
		}
		if !contains(out, it.s) {
			out = append(out, it.s)
		}
	}
	if len(items) == 0 {
		ps.at(attrs["events"].Expr.Range().Start, "events in %s lists no kind; give any of %s, or remove the block", where, strings.Join(allowed, ", "))
		ok = false
	}
	return out, ok
}

func (ps *parser) email(b *hclsyntax.Block, name string) (Email, bool) {
	where := "email " + name
	e := Email{Name: name, Range: b.DefRange()}
	attrs := ps.attrs(b.Body, where, []string{"smtp", "from", "to", "auth_file", "ca_file", "events", "max_retry_wait"}, nil)
	ok := true
	if smtp, set, good := ps.str(attrs, "smtp", where); !good {
		ok = false
	} else if !set {
		ps.at(b.TypeRange.Start, "%s needs smtp, the submission server's host:port, e.g. smtp = \"smtp.example.com:587\"", where)
		ok = false
	} else if msg := checkHostPort(smtp); msg != "" {
		ps.at(attrs["smtp"].Expr.Range().Start, "smtp in %s must be host:port, e.g. \"smtp.example.com:587\": %s", where, msg)
		ok = false
	} else {
		e.SMTP = smtp
	}
	if from, set, good := ps.str(attrs, "from", where); !good || !set || !strings.Contains(from, "@") || strings.ContainsAny(from, "\r\n<>") {
		if good {
			ps.at(b.TypeRange.Start, "%s needs from, a bare address such as \"dirsync@example.com\"", where)
		}
		ok = false
	} else {
		e.From = from
	}
	items, set := ps.list(attrs, "to", where)
	for _, it := range items {
		if !strings.Contains(it.s, "@") || strings.ContainsAny(it.s, "\r\n<>,") {
			ps.at(it.pos, "to item %d of %s is %q; give bare addresses such as \"ops@example.com\"", it.n, where, it.s)
			ok = false
			continue
		}
		e.To = append(e.To, it.s)
	}
	if !set || len(items) == 0 {
		ps.at(b.TypeRange.Start, "%s needs to, the addresses that receive the mail, e.g. to = [\"ops@example.com\"]", where)
		ok = false
	}
	e.AuthFile, _ = ps.path(attrs, "auth_file", where)
	e.CAFile, _ = ps.path(attrs, "ca_file", where)
	e.MaxRetryWait = DefaultMaxRetryWait
	ps.duration(attrs, "max_retry_wait", where, time.Second, 24*time.Hour, "1s", `"10m"`, &e.MaxRetryWait)
	var good bool
	e.Events, good = ps.kinds(b, attrs, where, EmailKinds())
	return e, ok && good
}
