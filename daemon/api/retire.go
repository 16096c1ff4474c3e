package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/dirsync/dirsync/daemon/jobs"
)

// RetireRequest is the body of POST /v1/connectors/{name}/retire.
type RetireRequest struct {
	// OnRemoved is what becomes of the connector's recipients: "archive"
	// (the default, "" too) or "delete". The connector's own on_removed
	// went with its block in plugins.hcl.
	OnRemoved string `json:"onRemoved,omitempty"`
	// AllowMassRemoval confirms a retire that removes more recipients
	// than the default max_removals rule allows.
	AllowMassRemoval bool `json:"allowMassRemoval,omitempty"`
}

// Retirer runs retire jobs for connectors no longer in plugins.hcl;
// *jobs.Runner implements it.
type Retirer interface {
	RetireConnector(ctx context.Context, connector string, ret jobs.Retire, allowMassRemoval bool, requestedBy string) (string, error)
}

// WithRetire lets POST /v1/connectors/{name}/retire run retire jobs;
// without it the route answers 501.
func (s *Server) WithRetire(r Retirer) *Server {
	s.retirer = r
	return s
}

func (s *Server) retire(w http.ResponseWriter, r *http.Request) {
	if s.retirer == nil {
		writeErr(w, http.StatusNotImplemented, "this dirsyncd cannot retire connectors")
		return
	}
	var req RetireRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid retire request body: "+err.Error())
		return
	}
	by := r.Header.Get("X-Dirsync-Requested-By")
	if by == "" {
		by = "api"
	}
	name := r.PathValue("name")
	id, err := s.retirer.RetireConnector(r.Context(), name, jobs.Retire{OnRemoved: req.OnRemoved}, req.AllowMassRemoval, by)
	switch {
	case errors.Is(err, jobs.ErrConfigured):
		writeErr(w, http.StatusConflict, err.Error())
		return
	case errors.Is(err, jobs.ErrInvalidRetire):
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, jobs.ErrUnknownConnector):
		writeErr(w, http.StatusNotFound, err.Error()+"; retire takes a connector removed from plugins.hcl whose recipients `dirsync status` still shows")
		return
	case err != nil:
		s.fail(w, err, name)
		return
	}
	j, _ := s.lookup(id)
	writeJSON(w, http.StatusAccepted, j)
}

// Retire asks the daemon to retire a connector no longer in plugins.hcl
// and returns the queued job.
func (c *Client) Retire(ctx context.Context, connector string, req RetireRequest) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodPost, "/v1/connectors/"+url.PathEscape(connector)+"/retire", req, &j)
	return j, err
}
