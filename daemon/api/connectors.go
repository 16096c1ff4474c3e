package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/agext/levenshtein"

	"github.com/dirsync/dirsync/projections"
)

// unknownConnector says a connector name is not configured, lists the
// ones that are, and suggests the closest when a typo is likely.
func (s *Server) unknownConnector(name string) string {
	known := slices.Sorted(slices.Values(s.runner.Connectors()))
	if name != "" && s.knownConnector(name) {
		// Gone from plugins.hcl, but not from the read models.
		return fmt.Sprintf("connector %q is no longer in plugins.hcl (configured: %s); its active recipients stay until it is retired: dirsync connector retire %s",
			name, strings.Join(known, ", "), name)
	}
	msg := fmt.Sprintf("unknown connector %q", name)
	if best := closest(name, known); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	if len(known) == 0 {
		return msg + " (no connector is configured; connectors are declared in plugins.hcl)"
	}
	return msg + fmt.Sprintf(" (configured in plugins.hcl: %s)", strings.Join(known, ", "))
}

// closest returns the name among known nearest to name, when it is near
// enough to be a typo (at most a third of its letters, at least 2, off).
func closest(name string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		d := levenshtein.Distance(strings.ToLower(name), strings.ToLower(k), nil)
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD < 0 || bestD > max(2, len(name)/3) {
		return ""
	}
	return best
}

// knownConnector reports whether a filter's connector exists: configured
// now, or still holding recipients or a directory in the read models (a
// connector removed from plugins.hcl keeps its history).
func (s *Server) knownConnector(name string) bool {
	if name == "" || slices.Contains(s.runner.Connectors(), name) {
		return true
	}
	found := false
	s.proj.View(func(ps *projections.State) {
		found = ps.Recipients[name] != nil || ps.Directories[name] != nil
	})
	return found
}

// checkConnectorFilter answers 404 for a ?connector= that names no
// connector, rather than an empty list that reads as "no recipients".
func (s *Server) checkConnectorFilter(w http.ResponseWriter, r *http.Request) bool {
	name := r.URL.Query().Get("connector")
	if s.knownConnector(name) {
		return true
	}
	writeErr(w, http.StatusNotFound, s.unknownConnector(name))
	return false
}
