// Package api is the daemon's HTTP/JSON interface: the operations the CLI
// (and later remote callers) use. The daemon serves it on a 0600 unix
// socket in its data directory, so only its own user can reach it.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// Job is a job as the API shows it: the read model plus live progress
// while it runs.
type Job struct {
	projections.Job
	Progress *jobs.Progress `json:"progress,omitempty"`
}

// Status is the answer to GET /v1/status.
type Status struct {
	Connectors []projections.SyncStatus `json:"connectors"`
	// EventSeq is the last event folded into the read models.
	EventSeq uint64 `json:"eventSeq"`
}

// Check is one step of a connection test.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy,omitempty"`
	Code   string `json:"code,omitempty"`
}

// TestResult is the answer to POST /v1/connectors/{name}/test.
type TestResult struct {
	Connector string  `json:"connector"`
	OK        bool    `json:"ok"`
	Checks    []Check `json:"checks"`
}

// SyncRequest is the body of POST /v1/connectors/{name}/sync.
type SyncRequest struct {
	Full bool `json:"full"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Server answers API requests from the runner and the read models.
type Server struct {
	runner *jobs.Runner
	proj   *projections.Projector
	log    *zap.Logger
	mux    *http.ServeMux
}

// NewServer builds the API handler.
func NewServer(runner *jobs.Runner, proj *projections.Projector, log *zap.Logger) *Server {
	s := &Server{runner: runner, proj: proj, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("GET /v1/connectors", s.connectors)
	s.mux.HandleFunc("POST /v1/connectors/{name}/test", s.test)
	s.mux.HandleFunc("POST /v1/connectors/{name}/sync", s.sync)
	s.mux.HandleFunc("GET /v1/jobs", s.jobs)
	s.mux.HandleFunc("GET /v1/jobs/{id}", s.job)
	s.mux.HandleFunc("GET /v1/recipients", s.recipients)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, Error{Error: msg})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{Connectors: []projections.SyncStatus{}}
	names := s.runner.Connectors()
	s.proj.View(func(ps *projections.State) {
		seen := map[string]bool{}
		for _, n := range names {
			seen[n] = true
			st.Connectors = append(st.Connectors, ps.SyncStatus(n))
		}
		for n := range ps.Status {
			if !seen[n] {
				st.Connectors = append(st.Connectors, ps.SyncStatus(n))
			}
		}
		st.EventSeq = ps.LastSeq
	})
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
		s.fail(w, err)
		return
	}
	out := TestResult{Connector: name, OK: resp.GetOk(), Checks: []Check{}}
	for _, c := range resp.GetChecks() {
		out.Checks = append(out.Checks, Check{Name: c.GetName(), OK: c.GetOk(), Detail: c.GetDetail(), Remedy: c.GetRemedy(), Code: c.GetCode()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, "invalid sync request body: "+err.Error())
			return
		}
	}
	by := r.Header.Get("X-Dirsync-Requested-By")
	if by == "" {
		by = "api"
	}
	id, err := s.runner.Request(r.Context(), r.PathValue("name"), jobs.Request{Full: req.Full, RequestedBy: by})
	if err != nil {
		s.fail(w, err)
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

func (s *Server) recipients(w http.ResponseWriter, r *http.Request) {
	connector := r.URL.Query().Get("connector")
	list := []events.Recipient{}
	s.proj.View(func(ps *projections.State) {
		for c, m := range ps.Recipients {
			if connector != "" && c != connector {
				continue
			}
			for _, rc := range m {
				list = append(list, rc)
			}
		}
	})
	sort.Slice(list, func(a, b int) bool {
		ea, eb := strings.ToLower(list[a].Email), strings.ToLower(list[b].Email)
		if ea != eb {
			return ea < eb
		}
		return list[a].ID < list[b].ID
	})
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, jobs.ErrUnknownConnector):
		writeErr(w, http.StatusNotFound, err.Error()+" (connectors are declared in plugins.hcl)")
	case errors.Is(err, jobs.ErrStopping):
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Warn("api request failed", zap.Error(err))
		writeErr(w, http.StatusInternalServerError, err.Error())
	}
}
