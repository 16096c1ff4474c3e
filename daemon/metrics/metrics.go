// Package metrics is the daemon's Prometheus instrumentation: what a
// monitoring system needs to alert on a sync that stopped working, a tenant
// that throttles, or read models that fall behind. It uses the official
// client (client_golang) with its own registry, so nothing is global.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dirsync/dirsync/events"
)

// Sources are the live values the metrics read at scrape time.
type Sources struct {
	// EventsPublished is the number of events the daemon has stored.
	EventsPublished func() uint64
	// ProjectionLag is how many stored events the read models have not yet
	// folded; it may fail when NATS is unreachable.
	ProjectionLag func(ctx context.Context) (uint64, error)
	// Connectors reports each connector's recipients and last sync.
	Connectors func() []ConnectorState
}

// ConnectorState is one connector's read model, as metrics show it.
type ConnectorState struct {
	Name       string
	Active     int
	Archived   int
	LastSyncAt *time.Time
	Running    bool
}

// Metrics holds the daemon's collectors.
type Metrics struct {
	reg *prometheus.Registry

	jobs        *prometheus.CounterVec
	jobDuration *prometheus.HistogramVec
	objects     *prometheus.CounterVec
	changes     *prometheus.CounterVec
	// directory counts the connectors' requests to their directories;
	// graph counts the same under the names they had when Entra was the
	// only directory, for the dashboards and alerts that read them.
	directory, graph requestCounters
	pluginStarts     *prometheus.CounterVec
	pluginCrashes    *prometheus.CounterVec
	pluginRestart    *prometheus.CounterVec
}

const ns = "dirsync"

// New registers every collector, reading live values from src.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "jobs_total",
		Help: "Sync jobs that reached a final state, by connector and state (COMPLETED, FAILED, CANCELED)."},
		[]string{"connector", "state"})
	m.jobDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "job_duration_seconds",
		Help:    "Time from a job's start to its final state, by connector and state.",
		Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}},
		[]string{"connector", "state"})
	m.objects = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "directory_objects_retrieved_total",
		Help: "Directory objects read by sync jobs, by connector and kind (user, group, membership)."},
		[]string{"connector", "kind"})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "recipient_changes_total",
		Help: "Recipient changes stored by sync jobs, by connector and kind (created, updated, archived, restored, deleted)."},
		[]string{"connector", "kind"})
	m.directory = newRequestCounters(ns, "directory", "their directories (Graph requests, LDAP searches)", "")
	m.graph = newRequestCounters(ns, "graph", "their directories", "Deprecated: the same count as dirsync_directory_%s, whatever the directory. ")
	m.pluginStarts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "plugin_starts_total",
		Help: "Connector plugin processes started (one per job and connection test), by plugin."}, []string{"plugin"})
	m.pluginCrashes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "plugin_crashes_total",
		Help: "Connector plugin processes that exited on their own before the daemon stopped them, by plugin."}, []string{"plugin"})
	m.pluginRestart = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "plugin_restarts_total",
		Help: "Connector plugins started again after their previous process crashed, by plugin."}, []string{"plugin"})
	m.reg.MustRegister(m.jobs, m.jobDuration, m.objects, m.changes,
		m.directory.requests, m.directory.retries, m.directory.wait, m.graph.requests, m.graph.retries, m.graph.wait,
		m.pluginStarts, m.pluginCrashes, m.pluginRestart,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.EventsPublished != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "events_published_total",
			Help: "Events this daemon process stored in the DIRSYNC stream."},
			func() float64 { return float64(src.EventsPublished()) }))
	}
	if src.ProjectionLag != nil || src.Connectors != nil {
		m.reg.MustRegister(&stateCollector{src: src})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format. A source that
// fails (NATS down) drops its metric, not the scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry the collectors live in (for tests and for
// adding collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Declare creates the series of the configured connectors and plugins at
// zero, so that a dashboard or an alert on rate() or increase() sees them
// before the first job, crash or throttle happens. Call it again after a
// reload; series of removed connectors stay until the process restarts.
func (m *Metrics) Declare(connectors, plugins []string) {
	for _, c := range connectors {
		for _, st := range []string{events.StateCompleted, events.StateFailed, events.StateCanceled} {
			m.jobs.WithLabelValues(c, st)
		}
		for _, k := range []string{"user", "group", "membership"} {
			m.objects.WithLabelValues(c, k)
		}
		for _, k := range []string{"created", "updated", "archived", "restored", "deleted"} {
			m.changes.WithLabelValues(c, k)
		}
		m.directory.with(c)
		m.graph.with(c)
	}
	for _, p := range plugins {
		m.pluginStarts.WithLabelValues(p)
		m.pluginCrashes.WithLabelValues(p)
		m.pluginRestart.WithLabelValues(p)
	}
}

// JobFinished counts a job that reached a final state, with what its
// summary says it read and changed.
func (m *Metrics) JobFinished(connector, state string, sum *events.Summary, took time.Duration) {
	m.jobs.WithLabelValues(connector, state).Inc()
	m.jobDuration.WithLabelValues(connector, state).Observe(took.Seconds())
	if sum == nil {
		return
	}
	m.objects.WithLabelValues(connector, "user").Add(float64(sum.UsersRetrieved))
	m.objects.WithLabelValues(connector, "group").Add(float64(sum.GroupsRetrieved))
	m.objects.WithLabelValues(connector, "membership").Add(float64(sum.MembershipsRetrieved))
	m.directory.add(connector, sum)
	m.graph.add(connector, sum)
	if sum.DryRun || state != events.StateCompleted {
		// Nothing was stored: the change counts are what would have been.
		return
	}
	for kind, n := range map[string]int{"created": sum.RecipientsCreated, "updated": sum.RecipientsUpdated,
		"archived": sum.RecipientsArchived, "restored": sum.RecipientsRestored, "deleted": sum.RecipientsRemoved} {
		m.changes.WithLabelValues(connector, kind).Add(float64(n))
	}
}

// PluginStarted counts a plugin process start; restart means the plugin's
// previous process had crashed.
func (m *Metrics) PluginStarted(plugin string, restart bool) {
	m.pluginStarts.WithLabelValues(plugin).Inc()
	if restart {
		m.pluginRestart.WithLabelValues(plugin).Inc()
	}
}

// PluginCrashed counts a plugin process that exited on its own.
func (m *Metrics) PluginCrashed(plugin string) { m.pluginCrashes.WithLabelValues(plugin).Inc() }

// stateCollector reads the read models and the stream at scrape time.
type stateCollector struct{ src Sources }

var (
	lagDesc = prometheus.NewDesc(ns+"_projection_lag_events",
		"Stored events the read models have not folded yet; stays near 0 when healthy.", nil, nil)
	recipientsDesc = prometheus.NewDesc(ns+"_recipients",
		"Recipients in the read model, by connector and status (active, archived).", []string{"connector", "status"}, nil)
	lastSyncDesc = prometheus.NewDesc(ns+"_last_sync_timestamp_seconds",
		"Unix time of the connector's last COMPLETED sync; alert when it grows old.", []string{"connector"}, nil)
	runningDesc = prometheus.NewDesc(ns+"_job_running",
		"1 while a job of the connector is queued or running.", []string{"connector"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- recipientsDesc
	ch <- lastSyncDesc
	ch <- runningDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.ProjectionLag != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lag, err := c.src.ProjectionLag(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(lagDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag))
		}
	}
	if c.src.Connectors == nil {
		return
	}
	for _, s := range c.src.Connectors() {
		ch <- prometheus.MustNewConstMetric(recipientsDesc, prometheus.GaugeValue, float64(s.Active), s.Name, events.RecipientActive)
		ch <- prometheus.MustNewConstMetric(recipientsDesc, prometheus.GaugeValue, float64(s.Archived), s.Name, events.RecipientArchived)
		if s.LastSyncAt != nil {
			ch <- prometheus.MustNewConstMetric(lastSyncDesc, prometheus.GaugeValue, float64(s.LastSyncAt.Unix()), s.Name)
		}
		running := 0.0
		if s.Running {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, running, s.Name)
	}
}

// requestCounters are the three counters of a connector's requests to its
// directory, by connector.
type requestCounters struct {
	requests, retries, wait *prometheus.CounterVec
}

// newRequestCounters names the counters <ns>_<prefix>_requests_total,
// _retries_total and _throttle_wait_seconds_total; deprecated, when set,
// starts each help text (with %s for the neutral counter's suffix).
func newRequestCounters(ns, prefix, what, deprecated string) requestCounters {
	c := func(name, help string) *prometheus.CounterVec {
		if deprecated != "" {
			help = fmt.Sprintf(deprecated, name) + help
		}
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: prefix + "_" + name, Help: help}, []string{"connector"})
	}
	return requestCounters{
		requests: c("requests_total", "Requests sync jobs' connectors made to "+what+", by connector."),
		retries:  c("retries_total", "Requests to their directories that connectors retried (throttling, transient errors), by connector."),
		wait:     c("throttle_wait_seconds_total", "Time sync jobs waited because their directory throttled them (Graph's 429/503 Retry-After, an LDAP server busy), by connector."),
	}
}

// with creates connector's series, so that they read 0 before its first job.
func (c requestCounters) with(connector string) {
	c.requests.WithLabelValues(connector)
	c.retries.WithLabelValues(connector)
	c.wait.WithLabelValues(connector)
}

// add counts a finished job's requests.
func (c requestCounters) add(connector string, sum *events.Summary) {
	c.requests.WithLabelValues(connector).Add(float64(sum.Requests()))
	c.retries.WithLabelValues(connector).Add(float64(sum.Retries))
	c.wait.WithLabelValues(connector).Add(float64(sum.ThrottleWaitMS) / 1000)
}
