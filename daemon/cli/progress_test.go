package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/projections"
)

// Off a terminal, progress is plain lines: no carriage returns or escape
// codes in a log, at most one line a second, and only when it changed.
func TestLineView(t *testing.T) {
	var out bytes.Buffer
	v := newProgressView(&out) // a bytes.Buffer is no terminal
	if _, ok := v.(*lineView); !ok {
		t.Fatalf("newProgressView on a buffer = %T; want *lineView", v)
	}
	v.state(projections.StateChange{State: "RETRIEVING", At: time.Now()})
	v.progress(jobs.Progress{Phase: "users and groups", Users: 1000, Requests: 2, ExpectedUsers: 3000})
	v.progress(jobs.Progress{Phase: "users and groups", Users: 2000, Requests: 3, ExpectedUsers: 3000}) // within the second: dropped
	v.done()
	got := out.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("plain output holds control characters: %q", got)
	}
	if !strings.Contains(got, "RETRIEVING") || !strings.Contains(got, "users and groups: 1000 users") || strings.Contains(got, "2000 users") {
		t.Errorf("output:\n%s", got)
	}
}

// On a terminal, a bar: a count against the total once it is known.
func TestBarView(t *testing.T) {
	var out bytes.Buffer
	v := &barView{out: &out}
	v.state(projections.StateChange{State: "RETRIEVING", At: time.Now()})
	v.progress(jobs.Progress{Phase: "users and groups", Users: 1500, ExpectedUsers: 3000})
	v.progress(jobs.Progress{Phase: "users and groups", Users: 1500, ExpectedUsers: 3000})
	if got := out.String(); !strings.Contains(got, "1500/3000") {
		t.Errorf("retrieving bar lacks 1500/3000: %q", got)
	}
	out.Reset()
	v.progress(jobs.Progress{Phase: "saving", Events: 4000, Saved: 1000})
	v.progress(jobs.Progress{Phase: "saving", Events: 4000, Saved: 2000})
	if got := out.String(); !strings.Contains(got, "2000/4000") || !strings.Contains(got, "saving: 2000 of 4000 events stored") {
		t.Errorf("saving bar: %q", got)
	}
	v.done()
}
