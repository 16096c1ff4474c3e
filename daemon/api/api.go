// Package api is the daemon's HTTP/JSON interface: the operations the CLI
// and remote callers use. The daemon serves it on a 0600 unix socket in its
// data directory, so only its own user can reach it (Server.ServeHTTP, no
// token), and, when the api block of plugins.hcl sets listen, on TCP behind
// a bearer token (Server.Authenticated). Every route is in one table
// (Routes), documented in openapi.yaml beside this file, which a test keeps
// equal to the table and which the API serves at /v1/openapi.yaml.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"time"

	"go.uber.org/zap"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/safetext"
	"github.com/dirsync/dirsync/projections"
)

// Job is a job as the API shows it: the read model plus live progress
// while it runs.
type Job struct {
	projections.Job
	Progress *jobs.Progress `json:"progress,omitempty"`
}

// ConnectorStatus is one connector's status with its schedule.
type ConnectorStatus struct {
	projections.SyncStatus
	// NextRun is the next scheduled sync, absent without a schedule.
	NextRun *time.Time `json:"nextRun,omitempty"`
	// Configured is false for a connector removed or renamed in
	// plugins.hcl that the read models still hold: its active recipients
	// stay until it is retired (POST /v1/connectors/{name}/retire).
	Configured bool `json:"configured"`
	// Holder is the replica that runs the connector's jobs now (its
	// lease), absent while none does (a failover).
	Holder *Holder `json:"holder,omitempty"`
}

// Holder is the replica holding a connector's lease.
type Holder struct {
	Replica string    `json:"replica"`
	Epoch   uint64    `json:"epoch"`
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
}

// Status is the answer to GET /v1/status.
type Status struct {
	Connectors []ConnectorStatus `json:"connectors"`
	// EventSeq is the last event folded into the read models.
	EventSeq uint64 `json:"eventSeq"`
	// Replica names the dirsyncd that answered; Replicas lists every
	// replica sharing its NATS deployment that is alive.
	Replica  string   `json:"replica,omitempty"`
	Replicas []string `json:"replicas,omitempty"`
}

// Check is one step of a connection test.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy,omitempty"`
	Code   string `json:"code,omitempty"`
	// Warning marks a passed check that found something to fix though
	// syncs work without it; Remedy says what.
	Warning bool `json:"warning,omitempty"`
}

// TestResult is the answer to POST /v1/connectors/{name}/test.
type TestResult struct {
	Connector string  `json:"connector"`
	OK        bool    `json:"ok"`
	Checks    []Check `json:"checks"`
}

// SyncRequest is the body of POST /v1/connectors/{name}/sync: a full
// read, and the one-time options of the job.
type SyncRequest struct {
	Full bool `json:"full"`
	events.JobOptions
}

// Changes is the answer to GET /v1/jobs/{id}/changes.
type Changes struct {
	Job     Job                  `json:"job"`
	Changes []projections.Change `json:"changes"`
	// Total counts every change of the job; Changes holds the window
	// that offset and limit asked for (all of them by default).
	Total int `json:"total"`
}

// MaxChangeLimit is the largest window of a job's changes one request
// may ask for.
const MaxChangeLimit = 10000

// changeWindow reads the offset and limit of GET /v1/jobs/{id}/changes;
// limit is -1 when absent (every change from offset on).
func changeWindow(q url.Values) (offset, limit int, err error) {
	limit = -1
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset must be a number of changes to skip, 0 or more, not %q", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxChangeLimit {
			return 0, 0, fmt.Errorf("limit must be a number from 1 to %d, not %q", MaxChangeLimit, v)
		}
	}
	return offset, limit, nil
}

// History is the answer to GET /v1/recipients/history.
type History struct {
	Recipients []events.Recipient              `json:"recipients"`
	Changes    map[string][]projections.Change `json:"changes"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// JobRunner is what the API needs of the job runner; *jobs.Runner
// implements it.
type JobRunner interface {
	// Connectors lists the configured connector names, sorted.
	Connectors() []string
	// Progress returns the live progress of a running job.
	Progress(jobID string) (jobs.Progress, bool)
	// Request queues a sync job and returns its sync ID.
	Request(ctx context.Context, connector string, req jobs.Request) (string, error)
	// Cancel cancels a queued or running job.
	Cancel(ctx context.Context, jobID string) error
	// DryRunChanges returns the changes a recent dry run would have made
	// (false: no longer kept; an error: the store could not be read).
	DryRunChanges(ctx context.Context, jobID string) ([]projections.Change, bool, error)
	// TestConnection runs a connector's connection test.
	TestConnection(ctx context.Context, connector string) (*connectorv1.TestConnectionResponse, error)
}

// ReadModels is what the API needs of the projections: a consistent view
// of the folded state. *projections.Projector implements it.
type ReadModels interface {
	// View calls fn with the state under a read lock; fn must not keep
	// references to the state's maps after it returns.
	View(fn func(*projections.State))
	// JobChanges reads the recipient changes a job made, in order.
	JobChanges(ctx context.Context, jobID string) ([]projections.Change, error)
	// History returns the recipients that have or had an email and the
	// changes of each, in order.
	History(ctx context.Context, email string) ([]events.Recipient, map[string][]projections.Change, error)
}

// Server answers API requests from the runner and the read models.
type Server struct {
	runner  JobRunner
	proj    ReadModels
	log     *zap.Logger
	mux     *http.ServeMux
	public  map[string]bool // mux patterns that need no token
	nextRun func(connector string) (time.Time, bool)
	holders func() (replica string, replicas []string, holders map[string]Holder)
	ready   func(context.Context) error
	live    func(context.Context) error
	metrics http.Handler
	retirer Retirer
	notify  func(context.Context) []notify.SinkStatus
}

// WithNotify lets GET /v1/notify show the notify block's webhooks.
func (s *Server) WithNotify(status func(context.Context) []notify.SinkStatus) *Server {
	s.notify = status
	return s
}

// NotifyStatus is the answer to GET /v1/notify.
type NotifyStatus struct {
	Webhooks []notify.SinkStatus `json:"webhooks"`
}

func (s *Server) notifyStatus(w http.ResponseWriter, r *http.Request) {
	out := NotifyStatus{Webhooks: []notify.SinkStatus{}}
	if s.notify != nil {
		out.Webhooks = append(out.Webhooks, s.notify(r.Context())...)
	}
	writeJSON(w, http.StatusOK, out)
}

// WithSchedule lets status show each connector's next scheduled run.
func (s *Server) WithSchedule(next func(connector string) (time.Time, bool)) *Server {
	s.nextRun = next
	return s
}

// WithHolders lets status show which replica holds each connector.
func (s *Server) WithHolders(h func() (replica string, replicas []string, holders map[string]Holder)) *Server {
	s.holders = h
	return s
}

// WithReadiness sets the check behind GET /readyz: the daemon is ready
// when ready returns nil (a nil check means always ready). It is called
// per request with a context that ends after readinessTimeout.
func (s *Server) WithReadiness(ready func(ctx context.Context) error) *Server {
	s.ready = ready
	return s
}

// WithMetrics sets the handler behind GET /metrics (typically the
// Prometheus registry's handler); without one, /metrics answers 404.
func (s *Server) WithMetrics(h http.Handler) *Server {
	s.metrics = h
	return s
}

// NewServer builds the API handler: every route of Routes, served as is
// by ServeHTTP (the unix socket) and behind a bearer token by
// Authenticated (TCP).
func NewServer(runner JobRunner, proj ReadModels, log *zap.Logger) *Server {
	s := &Server{runner: runner, proj: proj, log: log, mux: http.NewServeMux(), public: map[string]bool{}}
	for _, rt := range routeTable() {
		pattern := rt.Method + " " + rt.Pattern
		h := rt.handle
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
		if rt.Public {
			s.public[pattern] = true
		}
	}
	return s
}

// ServeHTTP serves every route without authentication: it is the handler
// of the 0600 unix socket, whose file permissions admit only the daemon's
// user. Use Authenticated for a TCP listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // JSON for programs and terminals, not HTML
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{Connectors: []ConnectorStatus{}}
	names := s.runner.Connectors()
	s.proj.View(func(ps *projections.State) {
		seen := map[string]bool{}
		for _, n := range names {
			seen[n] = true
			st.Connectors = append(st.Connectors, ConnectorStatus{SyncStatus: ps.SyncStatus(n), Configured: true})
		}
		// Connectors gone from plugins.hcl show too, while the read
		// models hold their jobs or recipients.
		for _, n := range ps.Connectors() {
			if !seen[n] {
				st.Connectors = append(st.Connectors, ConnectorStatus{SyncStatus: ps.SyncStatus(n)})
			}
		}
		st.EventSeq = ps.LastSeq
	})
	if s.nextRun != nil {
		for i := range st.Connectors {
			if t, ok := s.nextRun(st.Connectors[i].Connector); ok {
				st.Connectors[i].NextRun = &t
			}
		}
	}
	if s.holders != nil {
		var held map[string]Holder
		st.Replica, st.Replicas, held = s.holders()
		for i := range st.Connectors {
			if h, ok := held[st.Connectors[i].Connector]; ok {
				st.Connectors[i].Holder = &h
			}
		}
	}
	sort.Slice(st.Connectors, func(i, j int) bool { return st.Connectors[i].Connector < st.Connectors[j].Connector })
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) connectors(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.runner.Connectors())
}

func (s *Server) test(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	resp, err := s.runner.TestConnection(ctx, name)
	if err != nil {
		s.fail(w, err, name)
		return
	}
	out := TestResult{Connector: name, OK: resp.GetOk(), Checks: []Check{}}
	for _, c := range resp.GetChecks() {
		out.Checks = append(out.Checks, Check{Name: c.GetName(), OK: c.GetOk(), Detail: c.GetDetail(), Remedy: c.GetRemedy(), Code: c.GetCode(), Warning: c.GetWarning()})
	}
	writeJSON(w, http.StatusOK, out)
}

// MaxBodyBytes bounds a request's JSON body. A sync request, the largest
// body the API takes, is a few KiB even with MaxJobTags tags of
// MaxTagRunes characters each.
const MaxBodyBytes = 64 << 10

// decodeBody reads r's JSON body into v, or says why it is no request:
// larger than MaxBodyBytes, not JSON, a field v does not have, or
// anything but white space after the one JSON value (a second object is
// refused rather than ignored: the client meant something by it). An
// empty body leaves v as it is. The error text is for a 400 answer.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return nil // a chunked body with nothing in it
	}
	if err == nil {
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil {
			err = errors.New("more JSON follows the request; send one JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return fmt.Errorf("request body is larger than %d KiB", MaxBodyBytes>>10)
	}
	// encoding/json names an unknown field as the client wrote it.
	return errors.New(safetext.Printable(err.Error()))
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid sync request body: "+err.Error())
		return
	}
	opts, err := req.JobOptions.Validated()
	if err != nil {
		writeErr(w, http.StatusBadRequest, "invalid sync request: "+err.Error())
		return
	}
	by := r.Header.Get("X-Dirsync-Requested-By")
	if by == "" {
		by = "api"
	}
	var o *events.JobOptions
	if !reflect.ValueOf(opts).IsZero() {
		o = &opts
	}
	id, err := s.runner.Request(r.Context(), r.PathValue("name"), jobs.Request{Full: req.Full, RequestedBy: by, Options: o})
	if err != nil {
		s.fail(w, err, r.PathValue("name"))
		return
	}
	j, _ := s.lookup(id)
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) lookup(id string) (Job, bool) {
	var out Job
	found := false
	s.proj.View(func(ps *projections.State) {
		if j, ok := ps.Jobs[id]; ok {
			out.Job = *j
			out.History = append([]projections.StateChange(nil), j.History...)
			found = true
		}
	})
	if found && !events.Final(out.State) {
		if p, ok := s.runner.Progress(id); ok {
			out.Progress = &p
		}
	}
	return out, found
}

func (s *Server) job(w http.ResponseWriter, r *http.Request) {
	j, ok := s.lookup(r.PathValue("id"))
	if !ok {
		writeErr(w, http.StatusNotFound, "no job with sync ID "+strconv.Quote(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) jobs(w http.ResponseWriter, r *http.Request) {
	if !s.checkConnectorFilter(w, r) || !noCursor(w, r) {
		return
	}
	connector := r.URL.Query().Get("connector")
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeErr(w, http.StatusBadRequest, "limit must be a number from 1 to 10000")
			return
		}
		limit = n
	}
	var list []Job
	s.proj.View(func(ps *projections.State) {
		for _, j := range ps.Jobs {
			if connector == "" || j.Connector == connector {
				list = append(list, Job{Job: *j})
			}
		}
	})
	sort.Slice(list, func(a, b int) bool { return list[a].ID > list[b].ID })
	if len(list) > limit {
		list = list[:limit]
	}
	for i := range list {
		if !events.Final(list[i].State) {
			if p, ok := s.runner.Progress(list[i].ID); ok {
				list[i].Progress = &p
			}
		}
	}
	if list == nil {
		list = []Job{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) jobChanges(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	offset, limit, err := changeWindow(r.URL.Query())
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	j, ok := s.lookup(id)
	if !ok {
		writeErr(w, http.StatusNotFound, "no job with sync ID "+strconv.Quote(id))
		return
	}
	out := Changes{Job: j, Changes: []projections.Change{}}
	if j.DryRun() {
		c, ok, err := s.runner.DryRunChanges(r.Context(), id)
		if err != nil {
			s.log.Warn("reading a dry run's changes", zap.String("job", id), zap.Error(err))
			writeErr(w, http.StatusServiceUnavailable, "cannot read the changes of dry run "+id+" now: "+err.Error()+"; check that NATS is reachable (dirsync status, /readyz) and try again")
			return
		}
		if !ok && events.Final(j.State) {
			writeErr(w, http.StatusGone, fmt.Sprintf("the changes of dry run %s are no longer kept (the last %d dry runs are, fewer if their change lists fill the dry-run store); run it again",
				id, jobs.KeptDryRuns))
			return
		}
		out.Changes = append(out.Changes, c...)
	} else {
		c, err := s.proj.JobChanges(r.Context(), id)
		if err != nil {
			s.log.Warn("cannot read a job's changes from the event stream", zap.String("job", id), zap.Error(err))
			writeErr(w, http.StatusServiceUnavailable, "cannot read the changes of job "+id+" from the event stream ("+err.Error()+"); check that NATS is reachable (dirsync status) and try again")
			return
		}
		out.Changes = append(out.Changes, c...)
	}
	out.Total = len(out.Changes)
	end := out.Total
	if limit > 0 {
		end = min(offset+limit, out.Total)
	}
	out.Changes = out.Changes[min(offset, end):end]
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.runner.Cancel(r.Context(), id); err != nil {
		// A job that has ended is no unknown job: say what became of it.
		if j, ok := s.lookup(id); ok && errors.Is(err, jobs.ErrUnknownJob) && events.Final(j.State) {
			writeErr(w, http.StatusConflict, fmt.Sprintf("job %s is already %s: there is nothing to cancel", id, j.State))
			return
		}
		s.fail(w, err, "")
		return
	}
	j, _ := s.lookup(id)
	writeJSON(w, http.StatusOK, j)
}

// fail answers a runner's error; connector is the connector the request
// named, for the message that lists the configured ones.
func (s *Server) fail(w http.ResponseWriter, err error, connector string) {
	switch {
	case errors.Is(err, jobs.ErrUnknownJob), errors.Is(err, jobs.ErrNoSuchUser):
		writeErr(w, http.StatusNotFound, err.Error())
	case errors.Is(err, jobs.ErrNotCancelable):
		writeErr(w, http.StatusConflict, err.Error())
	case errors.Is(err, jobs.ErrUnknownConnector):
		writeErr(w, http.StatusNotFound, s.unknownConnector(connector))
	case errors.Is(err, jobs.ErrStopping):
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, jobs.ErrNotHolder):
		// No replica holds the connector right now (a failover): it will.
		w.Header().Set("Retry-After", "5")
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, jobs.ErrPluginBusy):
		w.Header().Set("Retry-After", strconv.Itoa(int(jobs.TestSlotWait/time.Second)))
		writeErr(w, http.StatusTooManyRequests, err.Error())
	default:
		s.log.Warn("api request failed", zap.Error(err))
		writeErr(w, http.StatusInternalServerError, err.Error())
	}
}
