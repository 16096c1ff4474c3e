package service

import (
	"context"
	"reflect"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
	"github.com/nats-io/nats.go/jetstream"
)

// startNotify starts the notify block's webhooks (nil without any), and
// registers their metrics: dirsync_notify_deliveries_total{webhook,
// result} and dirsync_notify_pending{webhook}.
func startNotify(ctx context.Context, cfg *config.Config, js jetstream.JetStream, proj *projections.Projector, runner *jobs.Runner,
	reg prometheus.Registerer, log *zap.Logger) (*notify.Notifier, error) {
	if len(cfg.Notify.Webhooks)+len(cfg.Notify.Emails) == 0 {
		return nil, nil
	}
	lastSyncs := func() map[string]*time.Time {
		out := map[string]*time.Time{}
		names := runner.Connectors()
		proj.View(func(s *projections.State) {
			for _, n := range names {
				out[n] = s.SyncStatus(n).LastSyncAt
			}
		})
		return out
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "dirsync", Name: "notify_deliveries_total",
		Help: "Webhook delivery attempts by result: delivered (2xx), failed (retried), rejected (a 4xx other than 401, 403, 404, 408 and 429, or an SMTP 5xx: dropped)."},
		[]string{"webhook", "result"})
	var names []string
	for _, w := range cfg.Notify.Webhooks {
		names = append(names, w.Name)
	}
	for _, e := range cfg.Notify.Emails {
		names = append(names, e.Name)
	}
	for _, name := range names {
		for _, r := range []string{"delivered", "failed", "rejected"} {
			deliveries.WithLabelValues(name, r)
		}
	}
	n, err := notify.Start(ctx, notify.Options{JS: js, Stream: store.StreamName, Webhooks: cfg.Notify.Webhooks, Emails: cfg.Notify.Emails,
		StaleAfter: cfg.Notify.StaleAfter, LastSyncs: lastSyncs, Log: log,
		Delivered: func(webhook, result string) { deliveries.WithLabelValues(webhook, result).Inc() }})
	if err != nil {
		return nil, err
	}
	pending := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "dirsync", Name: "notify_pending",
		Help: "Events waiting for a webhook: not yet delivered, in flight, or waiting for a retry."}, []string{"webhook"})
	if err := reg.Register(deliveries); err != nil {
		n.Stop()
		return nil, err
	}
	if err := reg.Register(&pendingCollector{n: n, desc: pending}); err != nil {
		n.Stop()
		return nil, err
	}
	for _, w := range cfg.Notify.Webhooks {
		log.Info("notifying a webhook", zap.String("webhook", w.Name), zap.String("url", w.Endpoint()), zap.Strings("events", w.Events))
	}
	for _, e := range cfg.Notify.Emails {
		log.Info("notifying by email", zap.String("email", e.Name), zap.String("smtp", e.SMTP), zap.Strings("to", e.To), zap.Strings("events", e.Events))
	}
	return n, nil
}

// pendingCollector reads each webhook's pending count at scrape time.
type pendingCollector struct {
	n    *notify.Notifier
	desc *prometheus.GaugeVec
}

func (c *pendingCollector) Describe(ch chan<- *prometheus.Desc) { c.desc.Describe(ch) }

func (c *pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range c.n.Status(ctx) {
		c.desc.WithLabelValues(s.Name).Set(float64(s.Pending))
	}
	c.desc.Collect(ch)
}

// notifyEqual compares two notify blocks, ignoring where they are in
// the file.
func notifyEqual(a, b config.Notify) bool {
	strip := func(n config.Notify) config.Notify {
		n.Webhooks = append([]config.Webhook(nil), n.Webhooks...)
		n.Emails = append([]config.Email(nil), n.Emails...)
		for i := range n.Webhooks {
			n.Webhooks[i].Range = hcl.Range{}
		}
		for i := range n.Emails {
			n.Emails[i].Range = hcl.Range{}
		}
		return n
	}
	return reflect.DeepEqual(strip(a), strip(b))
}
