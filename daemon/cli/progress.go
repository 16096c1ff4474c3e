package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/projections"
)

// progressView shows a job's progress while `dirsync sync --wait` follows
// it: a live bar on a terminal, plain lines otherwise (logs, pipes, CI).
type progressView interface {
	// state prints a state change.
	state(h projections.StateChange)
	// progress shows the retrieval or saving progress.
	progress(p jobs.Progress)
	// done removes anything transient before the outcome is printed.
	done()
}

// newProgressView picks the bar for a terminal and plain lines otherwise.
func newProgressView(out io.Writer) progressView {
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barView{out: out}
	}
	return &lineView{out: out}
}

func printState(out io.Writer, h projections.StateChange) {
	fmt.Fprintf(out, "  %s  %s\n", h.At.Local().Format("15:04:05.000"), h.State)
}

// progressLine describes p in words.
func progressLine(p jobs.Progress) string {
	if p.Events > 0 {
		return fmt.Sprintf("saving: %d of %d events stored", p.Saved, p.Events)
	}
	return fmt.Sprintf("%s: %d users, %d groups, %d memberships, %d directory requests", p.Phase, p.Users, p.Groups, p.Memberships, p.Requests)
}

// retryLine describes a connector's wait to retry its directory, or ""
// when it is not waiting.
func retryLine(r *jobs.Retrying) string {
	if r == nil {
		return ""
	}
	s := fmt.Sprintf("retrying: %s (attempt %d); next attempt in %s", r.Cause, r.Attempt, roundMS(r.WaitMS))
	if r.BudgetLeftMS > 0 {
		s += fmt.Sprintf("; %s of the retry budget left, then the job fails", roundMS(r.BudgetLeftMS))
	}
	return s
}

// roundMS rounds milliseconds for people: 4s, 1.5s, 9m41s, 300ms.
func roundMS(ms int64) time.Duration {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	}
	return d
}

// lineView prints a progress line at most once a second, and only when
// it changed, so a log stays readable.
type lineView struct {
	out       io.Writer
	last      string
	lastPrint time.Time
	// lastRetry is the retry wave printed last: each new one is printed
	// at once, whatever the once-a-second limit, since it is the news an
	// operator waits for during an outage.
	lastRetry string
	// now is the clock of the once-a-second limit (nil: time.Now), so a
	// test does not depend on how fast the machine runs it.
	now func() time.Time
}

func (v *lineView) state(h projections.StateChange) { printState(v.out, h) }

func (v *lineView) progress(p jobs.Progress) {
	if r := retryLine(p.Retrying); r != v.lastRetry {
		if v.lastRetry = r; r != "" {
			fmt.Fprintln(v.out, "           "+r)
		}
	}
	now := time.Now
	if v.now != nil {
		now = v.now
	}
	if p.Phase == "" || now().Sub(v.lastPrint) < time.Second {
		return
	}
	line := "           " + progressLine(p)
	if line != v.last {
		fmt.Fprintln(v.out, line)
		v.last, v.lastPrint = line, now()
	}
}

func (v *lineView) done() {}

// barView draws a progress bar: a spinner with counts while the total is
// unknown, a bar once it is (the users of the last full read while
// retrieving, the planned events while saving).
type barView struct {
	out   io.Writer
	bar   *progressbar.ProgressBar
	total int64
}

func (v *barView) state(h projections.StateChange) {
	v.clear()
	printState(v.out, h)
}

func (v *barView) progress(p jobs.Progress) {
	if p.Phase == "" {
		return
	}
	total, cur := int64(-1), p.Users
	switch {
	case p.Events > 0:
		total, cur = int64(p.Events), int64(p.Saved)
	case p.ExpectedUsers > 0:
		total = max(p.ExpectedUsers, p.Users)
	}
	if v.bar == nil || total != v.total {
		v.clear()
		v.total = total
		v.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(v.out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionSetPredictTime(total > 0),
		)
	}
	// No throttle: follow polls every 200 ms, and each update redraws.
	line := progressLine(p)
	if r := retryLine(p.Retrying); r != "" {
		line = r
	}
	v.bar.Describe("           " + line)
	_ = v.bar.Set64(cur)
}

func (v *barView) clear() {
	if v.bar != nil {
		_ = v.bar.Clear()
		v.bar = nil
	}
}

func (v *barView) done() { v.clear() }
