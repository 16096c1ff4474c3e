package api

import (
	"context"
	_ "embed" // openapi.yaml
	"net/http"
	"time"
)

// Health is the answer to GET /healthz and GET /readyz.
type Health struct {
	// Status is "ok" or "stalled" (healthz), "ready" or "not ready"
	// (readyz).
	Status string `json:"status"`
	// Reason says why the daemon is stalled or not ready.
	Reason string `json:"reason,omitempty"`
}

// readinessTimeout bounds one readiness check.
const readinessTimeout = 5 * time.Second

// openAPIDocument is openapi.yaml, the API's description, served at
// GET /v1/openapi.yaml.
//
//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPI returns the API's OpenAPI 3.1 document (YAML).
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// WithLiveness sets the check behind GET /healthz: the daemon is alive
// (200) while live returns nil, and stalled (503: restart it) otherwise.
// Unlike readiness, a NATS outage is not a stall; a restart would not
// end it. Called per request with a context that ends after
// readinessTimeout.
func (s *Server) WithLiveness(live func(ctx context.Context) error) *Server {
	s.live = live
	return s
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.live != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		if err := s.live(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, Health{Status: "stalled", Reason: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readinessTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, Health{Status: "not ready", Reason: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, Health{Status: "ready"})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		writeErr(w, http.StatusNotFound, "this daemon exports no metrics (no metrics handler is set)")
		return
	}
	s.metrics.ServeHTTP(w, r)
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument)
}
