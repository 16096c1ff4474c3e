package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
)

// runMarkerName is the file in the data directory that says a daemon
// runs there: written when it is ready, removed when it has stopped and
// closed its stores. Found at the next start, it says the last run ended
// without a stop (killed, crashed, died of a signal, power lost).
const runMarkerName = "dirsyncd.running"

// uncleanStopMsg is what the next start logs about such a run.
const uncleanStopMsg = "the last run on this data directory did not stop cleanly"

// runMarker keeps runMarkerName: an operator reading the log of a start
// learns whether the last run was stopped or killed, which otherwise
// shows nowhere (JetStream and the read models recover silently).
type runMarker struct {
	path string
	log  *zap.Logger
	// armed is set once this process wrote the marker: a daemon that
	// fails before it is ready (another one runs on the data directory)
	// must not remove that one's marker.
	armed bool
}

func newRunMarker(dataDir string, log *zap.Logger) *runMarker {
	return &runMarker{path: filepath.Join(dataDir, runMarkerName), log: log}
}

// arm reports a marker left by the last run, then writes this run's.
// The data directory exists by then: the service created and checked it.
func (m *runMarker) arm() {
	if b, err := os.ReadFile(m.path); err == nil {
		m.log.Warn(uncleanStopMsg+" (killed, crashed or the power failed): what JetStream acknowledged is kept, a job it left unfinished is FAILED, and the next completed sync repairs any partial change",
			zap.String("last_run", strings.TrimSpace(string(b))))
	} else if !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("cannot read the run marker", zap.String("path", m.path), zap.Error(err))
	}
	line := fmt.Sprintf("pid %d, ready at %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(m.path, []byte(line), 0o600); err != nil {
		m.log.Warn("cannot write the run marker: the next start cannot tell whether this run stopped cleanly", zap.String("path", m.path), zap.Error(err))
		return
	}
	m.armed = true
}

// disarm removes the marker once the stores are closed.
func (m *runMarker) disarm() {
	if !m.armed {
		return
	}
	if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("cannot remove the run marker: the next start will report an unclean stop", zap.String("path", m.path), zap.Error(err))
	}
}

// markingSupervisor is the systemd supervisor that also arms the run marker when the daemon is ready.
type markingSupervisor struct {
	*systemdSupervisor
	marker *runMarker
}

// Ready implements service.Supervisor.
func (s markingSupervisor) Ready(status string) {
	s.marker.arm()
	s.systemdSupervisor.Ready(status)
}
