package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// How a daemon's start grows with the log. For each stream length the
// rebuild scenario writes the stream with the daemon stopped (as an
// appliance that has run for a long time would hold it), then measures
// three starts: the first, which finds read models that do not reflect
// the stream and replays it all, and two restarts after a clean stop
// (SIGTERM, exit awaited): one right away, while the writes are inside
// JetStream's duplicate window, and one once they are older (see
// startOn). Read-model checkpoints, written at a clean stop and
// periodically and loaded at start (DESIGN.md, "Read models"), make the
// restart replay only the tail: the restart is what the targets judge,
// since its time and memory must not grow with the log. What each start
// did is taken from the daemon's own log (a line that mentions a
// checkpoint), never assumed.

// Targets of the issue for a start.
const (
	targetReady       = 3 * time.Second
	targetReadyRSSMiB = 200
)

// rebuildMaxEvents bounds the stream projections.Rebuild is measured on:
// the 1,000,000. Rebuild holds the read models in the bench
// process, beside the daemon that holds its own.
const rebuildMaxEvents = 1_000_000

// rebuildLength is the length of lengths (sorted) that gets the
// projections.Rebuild row: the longest up to rebuildMaxEvents, else the
// shortest.
func rebuildLength(lengths []int) int {
	at := lengths[0]
	for _, n := range lengths {
		if n <= rebuildMaxEvents {
			at = n
		}
	}
	return at
}

// startRun is one measured daemon start on a stream.
type startRun struct {
	// ready is from exec to /readyz answering.
	ready time.Duration
	// rssMiB is VmRSS right after ready, hwmMiB VmHWM (the peak so far).
	rssMiB, hwmMiB float64
	// checkpoint says what the daemon's log says about a checkpoint at
	// start ("checkpoint: loaded at seq N" or "no checkpoint used …").
	checkpoint string
	// logAt is how much of the daemon's log was read at ready.
	logAt int
}

// startResult is everything measured on one stream length.
type startResult struct {
	n              int
	log            *storeLog
	wrote          time.Duration
	first, restart startRun
	// soon is a restart right after the first daemon stopped, while the
	// stream's writes are inside store.DuplicateWindow; restart comes
	// after it, on the log at rest, if rested (Sizes.RestWait).
	soon   startRun
	rested bool
	// stopTook is the first daemon's exit after SIGTERM, and stopSaid
	// what its log says about a checkpoint meanwhile.
	stopTook time.Duration
	stopSaid string
	// raw is the raw ordered consumer's read of the stream (zero unless
	// the rebuild row was measured on this length).
	raw time.Duration
}

// runRebuild is scenario 5: a daemon's start on streams of every length
// of s.Events, and folding the stream with projections.Rebuild on one.
func runRebuild(ctx context.Context, env *Env, s Sizes) ([]Row, error) {
	lengths := slices.Clone(s.Events)
	slices.Sort(lengths)
	lengths = slices.Compact(lengths)
	if len(lengths) == 0 {
		return nil, fmt.Errorf("rebuild: no stream lengths (-events)")
	}
	if err := checkDisk(env, lengths[len(lengths)-1], s.Users); err != nil {
		return nil, err
	}
	at := rebuildLength(lengths)
	// The rebuild row first, as before the start rows existed; then the
	// start rows from the shortest stream to the longest.
	var rebuilt, started []Row
	var base startResult
	for i, n := range lengths {
		res, rb, err := startOn(ctx, env, s, n, n == at)
		if err != nil {
			return nil, fmt.Errorf("%d events: %w", n, err)
		}
		if i == 0 {
			base = res
		}
		one := s
		one.Events = []int{n}
		for _, r := range rb {
			r.Command = one.Command("rebuild")
			rebuilt = append(rebuilt, r)
		}
		for _, r := range res.rows(base) {
			r.Command = one.Command("rebuild")
			started = append(started, r)
		}
	}
	return append(rebuilt, started...), nil
}

// checkDisk fails unless env.Dir's file system has room for a stream of
// n events, with a margin for JetStream's own overhead and the KV buckets
// (the streams of the lengths are written one after the other, each
// deleted after its rows).
func checkDisk(env *Env, n, maxUsers int) error {
	log, err := newStoreLog(n, maxUsers)
	if err != nil {
		return err
	}
	sample, err := log.marshal(0, min(n, 2_000))
	if err != nil {
		return err
	}
	need := uint64(float64(storeBytes(sample))/float64(len(sample))*float64(n)*1.5) + 512<<20
	var st syscall.Statfs_t
	if err := syscall.Statfs(env.Dir, &st); err != nil {
		return fmt.Errorf("free disk of %s: %w", env.Dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	env.Logf("free disk in %s: %.1f GB; the %d-event stream needs about %.1f GB", env.Dir, float64(free)/1e9, n, float64(need)/1e9)
	if free < need {
		return fmt.Errorf("%w: %s has %.1f GB free, a %d-event stream needs about %.1f GB: free some, set TMPDIR elsewhere or pass a shorter -events",
			errStoreCheck, env.Dir, float64(free)/1e9, n, float64(need)/1e9)
	}
	return nil
}

// startOn writes a stream of n events into a fresh daemon's data
// directory, measures a first start and a restart on it, and (rebuild)
// projections.Rebuild beside a raw consumer; it deletes the data after.
func startOn(ctx context.Context, env *Env, s Sizes, n int, rebuild bool) (startResult, []Row, error) {
	res := startResult{n: n}
	log, err := newStoreLog(n, s.Users)
	if err != nil {
		return res, nil, err
	}
	res.log = log
	dir := filepath.Join(env.Dir, fmt.Sprintf("start-%d", n))
	defer func() { _ = os.RemoveAll(dir) }()
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		return res, nil, err
	}
	if err := writeConfig(env, dir, nil, daemonConfig{LogLevel: "info", NATSListen: addr}); err != nil {
		return res, nil, err
	}
	// A first start lays out the data directory: the nkey, the stream and
	// the KV buckets.
	d, err := StartDaemon(ctx, env, dir, addr)
	if err != nil {
		return res, nil, err
	}
	if err := d.Stop(); err != nil {
		return res, nil, err
	}

	env.Logf("writing %d events into %s (%d jobs of a tenant of %d users and %d groups), dirsyncd stopped",
		log.n, store.StreamName, len(log.jobs), log.users, log.groups)
	t0 := time.Now()
	if err := rebuildWrite(ctx, env, filepath.Join(dir, "data"), addr, log); err != nil {
		return res, nil, err
	}
	res.wrote = time.Since(t0)
	env.Logf("wrote %d events in %.1f s", log.n, res.wrote.Seconds())

	env.Logf("first start of dirsyncd on the %d-event stream", n)
	d, err = StartDaemon(ctx, env, dir, addr)
	if err != nil {
		return res, nil, err
	}
	if res.first, err = measureStart(ctx, env, d, n); err != nil {
		storeStop(env, d)
		return res, nil, err
	}
	var rows []Row
	if rebuild {
		rows, res.raw, err = rebuildRows(ctx, env, d, log)
		if err != nil {
			storeStop(env, d)
			return res, nil, err
		}
	}
	t1 := time.Now()
	if err := d.Stop(); err != nil {
		return res, nil, fmt.Errorf("stopping the first daemon: %w", err)
	}
	res.stopTook = time.Since(t1)
	res.stopSaid = stopNote(d.Log()[res.first.logAt:])
	env.Logf("dirsyncd stopped %.2f s after SIGTERM (%s)", res.stopTook.Seconds(), res.stopSaid)

	wrote := time.Now() // the first daemon's stop flushed KV and wrote a checkpoint: the last big write

	env.Logf("restarting dirsyncd on the same data, within JetStream's duplicate window of the writes")
	if res.soon, err = restartOn(ctx, env, dir, addr, n); err != nil {
		return res, nil, err
	}
	// An appliance restarts on a log written over months: nats-server
	// reloads the event IDs of only the last store.DuplicateWindow of it
	// (and of the KV buckets' writes) to keep deduplicating. Here the
	// whole log was written minutes ago, so the restart above paid for
	// all of it; the restart the target judges comes once it has passed.
	res.rested = s.RestWait
	if wait := store.DuplicateWindow + 5*time.Second - time.Since(wrote); wait > 0 && s.RestWait {
		env.Logf("waiting %.0f s until the writes are older than the duplicate window (%s)", wait.Seconds(), store.DuplicateWindow)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return res, nil, ctx.Err()
		}
	}
	env.Logf("restarting dirsyncd on the same data, the log at rest")
	if res.restart, err = restartOn(ctx, env, dir, addr, n); err != nil {
		return res, nil, err
	}
	return res, rows, nil
}

// restartOn starts a daemon on dir, measures its start, and stops it.
func restartOn(ctx context.Context, env *Env, dir, addr string, n int) (startRun, error) {
	d, err := StartDaemon(ctx, env, dir, addr)
	if err != nil {
		return startRun{}, err
	}
	r, err := measureStart(ctx, env, d, n)
	if err != nil {
		storeStop(env, d)
		return r, err
	}
	if err := d.Stop(); err != nil {
		return r, fmt.Errorf("stopping the restarted daemon: %w", err)
	}
	return r, nil
}

// measureStart reads a just-ready daemon's start time and memory, checks
// that its read models reflect the whole stream of n events, and reads
// what its log says about a checkpoint.
func measureStart(ctx context.Context, env *Env, d *Daemon, n int) (startRun, error) {
	var r startRun
	r.ready = d.Ready.Sub(d.Started)
	pid := d.Cmd.Process.Pid
	r.rssMiB = storeRSSMiB(pid)
	hwm, _ := ProcStatus(pid, "VmHWM")
	r.hwmMiB = float64(hwm) / 1024
	status, err := d.Client.Status(ctx)
	if err != nil {
		return r, err
	}
	if status.EventSeq < uint64(n) {
		return r, fmt.Errorf("%w: the daemon is ready at event %d of %d", errStoreCheck, status.EventSeq, n)
	}
	log := d.Log()
	r.logAt = len(log)
	r.checkpoint = startNote(log)
	env.Logf("dirsyncd ready in %.2f s, RSS %.0f MiB, VmHWM %.0f MiB; %s", r.ready.Seconds(), r.rssMiB, r.hwmMiB, r.checkpoint)
	return r, nil
}

// rebuildRows measures, on the ready daemon's stream, a raw ordered
// consumer and projections.Rebuild, and returns the rebuild's row and the
// raw read's time.
func rebuildRows(ctx context.Context, env *Env, d *Daemon, log *storeLog) ([]Row, time.Duration, error) {
	nc, js, err := storeConnect(d)
	if err != nil {
		return nil, 0, err
	}
	defer nc.Close()
	st, err := store.Open(ctx, js, 1)
	if err != nil {
		return nil, 0, err
	}
	last := uint64(log.n)
	env.Logf("raw: reading the %d events with an ordered consumer", last)
	t1 := time.Now()
	nbytes := 0
	n, err := storeReadAll(ctx, js, store.StreamName, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		nbytes += len(m.Data())
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	raw := time.Since(t1)
	if uint64(n) != last {
		return nil, 0, fmt.Errorf("%w: raw consumer read %d of %d events", errStoreCheck, n, last)
	}
	env.Logf("raw: %d events (%.0f MB) in %.2f s", n, float64(nbytes)/1e6, raw.Seconds())

	env.Logf("dirsync: projections.Rebuild over the same stream")
	rebuild, err := rebuildTimed(ctx, env, st, log, last)
	if err != nil {
		return nil, 0, err
	}
	rate := float64(last) / rebuild.Seconds()
	rawRate := float64(last) / raw.Seconds()
	return []Row{{
		Scenario: "projection rebuild", Metric: "events/s, projections.Rebuild",
		Value: rate, Floor: rawRate, Unit: "events/s", HigherIsBetter: true,
		Target: fmt.Sprintf("≥ %.1f× raw", targetRebuildRatio), Met: rate >= targetRebuildRatio*rawRate,
		Note: fmt.Sprintf("dirsync: projections.Rebuild (store.Follow, events.Decode, State.Apply) over %s, %.0f B each on average: %.2f s. Floor: an ordered consumer with the same batch size (2048) reading the same stream and discarding it: %.2f s. Both from the bench process over loopback TCP to the ready, idle daemon's embedded server (after its first start)",
			log.mix(), float64(nbytes)/float64(last), rebuild.Seconds(), raw.Seconds()),
	}}, raw, nil
}

// mix describes the log's content.
func (l *storeLog) mix() string {
	return fmt.Sprintf("%d events: %d jobs of one connector over a tenant of %d users and %d groups (a full sync, then incremental syncs changing %d users each: user changed + recipient updated), every job PENDING…COMPLETED",
		l.n, len(l.jobs), l.users, l.groups, l.window)
}

// rows are the start rows of one stream length; base is the shortest
// stream's result, to show the growth.
func (r startResult) rows(base startResult) []Row {
	scenario := fmt.Sprintf("start to ready, %d events", r.n)
	growth := func(v, b float64, unit string) string {
		if base.n == r.n || b == 0 {
			return ""
		}
		return fmt.Sprintf("; %.2f× the %d-event stream's (%.2f %s)", v/b, base.n, b, unit)
	}
	raw := ""
	if r.raw > 0 {
		raw = fmt.Sprintf(" The raw ordered consumer reads the stream in %.2f s.", r.raw.Seconds())
	}
	first, again, soon := r.first, r.restart, r.soon
	return []Row{
		{
			Scenario: scenario, Metric: "first start → ready",
			Value: first.ready.Seconds(), Unit: "s",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("dirsyncd started on a stream of %s, written in %.1f s with the daemon stopped; from exec to /readyz answering, polled every 20 ms: JetStream recovery, the projector's replay, then KV reconciled (this start also writes every read model to KV); at start: %s.%s The restart below is what the target judges",
				r.log.mix(), r.wrote.Seconds(), first.checkpoint, raw),
		},
		{
			Scenario: scenario, Metric: "daemon RSS when ready, first start",
			Value: first.rssMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetReadyRSSMiB), Met: first.rssMiB < targetReadyRSSMiB,
			Note: fmt.Sprintf("VmRSS of dirsyncd right after ready; peak during the start (VmHWM) %.0f MiB%s", first.hwmMiB, growth(first.rssMiB, base.first.rssMiB, "MiB")),
		},
		{
			Scenario: scenario, Metric: "restart → ready, after a clean stop",
			Value: again.ready.Seconds(), Unit: "s",
			Target: fmt.Sprintf("< %.0f s, not growing with the log", targetReady.Seconds()), Met: again.ready < targetReady,
			Note: fmt.Sprintf("the first daemon stopped with SIGTERM and exited %.2f s later (%s); started again on the same data %s, exec to /readyz: %s%s",
				r.stopTook.Seconds(), r.stopSaid, r.when(), again.checkpoint, growth(again.ready.Seconds(), base.restart.ready.Seconds(), "s")),
		},
		{
			Scenario: scenario, Metric: "daemon RSS when ready, restart",
			Value: again.rssMiB, Unit: "MiB",
			Target: fmt.Sprintf("< %d MiB", targetReadyRSSMiB), Met: again.rssMiB < targetReadyRSSMiB,
			Note: fmt.Sprintf("VmRSS of the restarted dirsyncd right after ready; VmHWM %.0f MiB%s", again.hwmMiB, growth(again.rssMiB, base.restart.rssMiB, "MiB")),
		},
		{
			Scenario: scenario, Metric: "restart → ready, within the duplicate window",
			Value: soon.ready.Seconds(), Unit: "s",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("a restart right after the first daemon's stop, before the one above: nats-server also reloads the IDs of the messages written in the last %s (here the part of the log written that recently, and every KV entry the first start wrote) to go on deduplicating (store.DuplicateWindow); exec to /readyz: %s%s. On an appliance that is at most %s of writing, not the log",
				store.DuplicateWindow, soon.checkpoint, growth(soon.ready.Seconds(), base.soon.ready.Seconds(), "s"), store.DuplicateWindow),
		},
		{
			Scenario: scenario, Metric: "daemon RSS when ready, within the duplicate window",
			Value: soon.rssMiB, Unit: "MiB",
			Target: "none (reported)", Met: true,
			Note: fmt.Sprintf("VmRSS of that restart right after ready; VmHWM %.0f MiB%s", soon.hwmMiB, growth(soon.rssMiB, base.soon.rssMiB, "MiB")),
		},
	}
}

// when says when the judged restart came.
func (r startResult) when() string {
	if !r.rested {
		return "right away (this preset does not wait for JetStream's duplicate window: see the next row)"
	}
	return fmt.Sprintf("once its writes were older than JetStream's duplicate window (%s), as a log written over time is", store.DuplicateWindow)
}

// logLine is what the bench reads from a line of the daemon's JSON log.
type logLine struct {
	msg string
	seq int64 // -1: none
}

// checkpointLines are the lines of a daemon's JSON log that mention a
// checkpoint, with the stream sequence they name: a "seq" field, else a
// field whose name holds "seq", else a number after "seq" in the message.
func checkpointLines(log string) []logLine {
	var out []logLine
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(strings.ToLower(line), "checkpoint") {
			continue
		}
		l := logLine{msg: strings.TrimSpace(line), seq: -1}
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) == nil {
			if m, ok := fields["msg"].(string); ok {
				l.msg = m
			}
			if v, ok := fields["seq"].(float64); ok {
				l.seq = int64(v)
			}
			for k, v := range fields {
				if f, ok := v.(float64); ok && l.seq < 0 && strings.Contains(strings.ToLower(k), "seq") {
					l.seq = int64(f)
				}
			}
		}
		if l.seq < 0 {
			if m := seqInText.FindStringSubmatch(l.msg); m != nil {
				_, _ = fmt.Sscan(m[1], &l.seq)
			}
		}
		out = append(out, l)
	}
	return out
}

// loadedMsg is the daemon's log message (projections.Projector.load)
// when a start loaded the checkpoint at "seq" and replays the "tail";
// otherwise its line says why it replays the whole stream.
const loadedMsg = "read models loaded from the checkpoint"

var seqInText = regexp.MustCompile(`(?i)seq\D{0,12}(\d+)`)

// startNote says, from a daemon's log up to ready, whether it started
// from a checkpoint: "checkpoint: loaded at seq N" when the log says so,
// else "no checkpoint used" with what the log says about one, if anything.
func startNote(log string) string {
	return checkpointNote(log) + tookNote(log)
}

// checkpointNote is startNote's first part: what the log says about a
// checkpoint at start.
func checkpointNote(log string) string {
	lines := checkpointLines(log)
	for _, l := range lines {
		if l.seq >= 0 && strings.HasPrefix(l.msg, loadedMsg) {
			return fmt.Sprintf("checkpoint: loaded at seq %d", l.seq)
		}
	}
	if len(lines) == 0 {
		return "no checkpoint used (no line of the daemon's log mentions one)"
	}
	return "no checkpoint used (daemon log: " + quoted(lines) + ")"
}

// tookNote gives the parts of a start the daemon's log times: its
// embedded nats-server (JetStream recovering the streams), the checkpoint
// load, and the read models from the start of their replay to ready.
func tookNote(log string) string {
	parts := []struct{ msg, what string }{
		{"embedded nats-server ready", "embedded nats-server (JetStream recovery)"},
		{loadedMsg, "checkpoint load"},
		{"projections ready", "read models, load or replay to ready"},
	}
	var out []string
	for _, line := range strings.Split(log, "\n") {
		var f map[string]any
		if json.Unmarshal([]byte(line), &f) != nil {
			continue
		}
		took, ok := f["took"].(float64)
		if !ok {
			continue
		}
		for _, p := range parts {
			if f["msg"] == p.msg {
				out = append(out, fmt.Sprintf("%s %.2f s", p.what, took))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "; the daemon's log times: " + strings.Join(out, ", ")
}

// stopNote says what a daemon's log says about a checkpoint while it
// stopped.
func stopNote(log string) string {
	lines := checkpointLines(log)
	if len(lines) == 0 {
		return "its log mentions no checkpoint written"
	}
	return "its log: " + quoted(lines)
}

// quoted quotes up to two log messages.
func quoted(lines []logLine) string {
	var parts []string
	for i, l := range lines {
		if i == 2 {
			parts = append(parts, fmt.Sprintf("and %d more", len(lines)-2))
			break
		}
		s := fmt.Sprintf("%q", clip(l.msg))
		if l.seq >= 0 {
			s += fmt.Sprintf(" seq %d", l.seq)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// clip shortens a log message for a table cell.
func clip(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
