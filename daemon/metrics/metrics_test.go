package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dirsync/dirsync/events"
)

func TestJobFinished(t *testing.T) {
	last := time.Unix(1_790_000_000, 0)
	m := New(Sources{
		EventsPublished: func() uint64 { return 42 },
		ProjectionLag:   func(context.Context) (uint64, error) { return 3, nil },
		Connectors: func() []ConnectorState {
			return []ConnectorState{{Name: "demo", Active: 240, Archived: 10, LastSyncAt: &last, Running: true}}
		},
	})
	sum := &events.Summary{UsersRetrieved: 250, GroupsRetrieved: 12, MembershipsRetrieved: 300, DirectoryRequests: 13, GraphRequests: 13,
		Retries: 2, ThrottleWaitMS: 1500, RecipientsCreated: 240, RecipientsArchived: 1}
	m.JobFinished("demo", events.StateCompleted, sum, 2*time.Second)
	m.JobFinished("demo", events.StateFailed, &events.Summary{DirectoryRequests: 1, GraphRequests: 1, RecipientsCreated: 99}, time.Second)
	m.JobFinished("demo", events.StateCompleted, &events.Summary{DryRun: true, RecipientsCreated: 7}, time.Second)
	m.PluginStarted("azuread", false)
	m.PluginCrashed("azuread")
	m.PluginStarted("azuread", true)

	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"completed jobs", testutil.ToFloat64(m.jobs.WithLabelValues("demo", "COMPLETED")), 2},
		{"failed jobs", testutil.ToFloat64(m.jobs.WithLabelValues("demo", "FAILED")), 1},
		{"users retrieved", testutil.ToFloat64(m.objects.WithLabelValues("demo", "user")), 250},
		{"directory requests", testutil.ToFloat64(m.directory.requests.WithLabelValues("demo")), 14},
		{"directory throttle wait", testutil.ToFloat64(m.directory.wait.WithLabelValues("demo")), 1.5},
		// The deprecated names count the same.
		{"graph requests", testutil.ToFloat64(m.graph.requests.WithLabelValues("demo")), 14},
		{"graph retries", testutil.ToFloat64(m.graph.retries.WithLabelValues("demo")), 2},
		{"graph throttle wait", testutil.ToFloat64(m.graph.wait.WithLabelValues("demo")), 1.5},
		// Neither a failed job nor a dry run stored a change.
		{"created", testutil.ToFloat64(m.changes.WithLabelValues("demo", "created")), 240},
		{"archived", testutil.ToFloat64(m.changes.WithLabelValues("demo", "archived")), 1},
		{"plugin starts", testutil.ToFloat64(m.pluginStarts.WithLabelValues("azuread")), 2},
		{"plugin restarts", testutil.ToFloat64(m.pluginRestart.WithLabelValues("azuread")), 1},
		{"plugin crashes", testutil.ToFloat64(m.pluginCrashes.WithLabelValues("azuread")), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`dirsync_jobs_total{connector="demo",state="COMPLETED"} 2`,
		`dirsync_job_duration_seconds_count{connector="demo",state="COMPLETED"} 2`,
		`dirsync_events_published_total 42`,
		`dirsync_projection_lag_events 3`,
		`dirsync_recipients{connector="demo",status="active"} 240`,
		`dirsync_recipients{connector="demo",status="archived"} 10`,
		`dirsync_last_sync_timestamp_seconds{connector="demo"} 1.79e+09`,
		`dirsync_job_running{connector="demo"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Declared series exist at zero before anything happens.
func TestDeclare(t *testing.T) {
	m := New(Sources{})
	m.Declare([]string{"demo"}, []string{"azuread"})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`dirsync_jobs_total{connector="demo",state="FAILED"} 0`,
		`dirsync_recipient_changes_total{connector="demo",kind="created"} 0`,
		`dirsync_directory_requests_total{connector="demo"} 0`,
		`dirsync_directory_throttle_wait_seconds_total{connector="demo"} 0`,
		`dirsync_graph_throttle_wait_seconds_total{connector="demo"} 0`,
		`dirsync_plugin_crashes_total{plugin="azuread"} 0`,
		`dirsync_plugin_restarts_total{plugin="azuread"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// A scrape while NATS is down still answers; only the lag is missing.
func TestLagErrorKeepsScrapeUp(t *testing.T) {
	m := New(Sources{ProjectionLag: func(context.Context) (uint64, error) { return 0, errors.New("nats: timeout") }})
	m.JobFinished("demo", events.StateCompleted, nil, time.Second)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `dirsync_jobs_total{connector="demo",state="COMPLETED"} 1`) {
		t.Fatalf("scrape with a failing lag source: %d\n%s", rec.Code, body)
	}
}
