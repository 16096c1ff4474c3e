// Package schedule ticks auto-sync: it calls a callback for each connector
// on the connector's cron schedule (plugins.hcl `schedule` and `timezone`)
// and tells when each connector runs next.
//
// Ticking is all it does. The callback is the job runner's Request, which
// already queues behind or cancels a running job; the scheduler only makes
// sure its own ticks for one connector never overlap: a tick that comes
// while the previous callback for that connector still runs is skipped
// (robfig/cron/v3's SkipIfStillRunning), and logged.
//
// Time zones: one cron.Cron runs every entry. Each entry's parsed
// *cron.SpecSchedule gets its own Location (which is what the library's
// "CRON_TZ=Zone spec" prefix does), so a zone is never spliced into a spec
// string; an entry without a time zone uses the scheduler's location
// (WithLocation, default the daemon's local time). "@every" schedules are
// intervals and have no zone.
//
// Daylight saving: cron's own SpecSchedule skips a cron time in the hour
// clocks jump over and fires one in the repeated hour twice. Each parsed
// spec is therefore wrapped in a wallSchedule (dst.go): a skipped time
// runs once when the gap ends, a repeated time once at its first pass, and
// a spec that names every hour runs once per real hour.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"
)

// SkippedMessage is what the scheduler logs, at info, for a tick skipped
// because the previous callback for the connector still runs.
const SkippedMessage = "tick skipped: previous scheduled request still running"

// Entry is one connector's schedule.
type Entry struct {
	// Connector names the connector; it is what the callback receives.
	Connector string
	// Spec is a five-field cron expression (minute first, no seconds) or a
	// descriptor such as "@every 30m" or "@daily"; "" means the connector
	// is not scheduled, and the entry is ignored.
	Spec string
	// Timezone is an IANA zone name, or "" for the scheduler's location.
	Timezone string
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithLocation sets the zone of entries without a Timezone; the default is
// time.Local. A nil loc is ignored.
func WithLocation(loc *time.Location) Option {
	return func(s *Scheduler) {
		if loc != nil {
			s.loc = loc
		}
	}
}

// Scheduler fires a callback per connector on its cron schedule. Its
// methods are safe for concurrent use.
type Scheduler struct {
	log    *zap.Logger
	loc    *time.Location
	cron   *cron.Cron
	ctx    context.Context // given to callbacks; canceled by Stop
	cancel context.CancelFunc

	mu      sync.Mutex
	fire    func(ctx context.Context, connector string)
	entries map[string]scheduled
	// jobs holds each connector's wrapped job for the scheduler's life, so
	// that a Set (config reload) keeps its SkipIfStillRunning guard: a
	// callback still running from before the reload is not overlapped.
	jobs    map[string]cron.Job
	started bool
	stopped bool
}

// scheduled is a connector's entry as the cron runs it.
type scheduled struct {
	id    cron.EntryID
	sched cron.Schedule
	loc   *time.Location
}

// New returns a Scheduler with no entries; call Set, then Start. A nil log
// discards.
func New(log *zap.Logger, opts ...Option) *Scheduler {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Scheduler{
		log:     log,
		loc:     time.Local,
		entries: map[string]scheduled{},
		jobs:    map[string]cron.Job{},
	}
	for _, opt := range opts {
		opt(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cron = cron.New(cron.WithLocation(s.loc), cron.WithLogger(cronLogger{log: log}))
	return s
}

// parse parses an entry's schedule: spec is a five-field cron
// expression or a descriptor (an "@every" interval at least 1s), timezone
// an IANA name or "" for def. The schedule's Location is set to the zone.
func parse(spec, timezone string, def *time.Location) (cron.Schedule, *time.Location, error) {
	loc := def
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return nil, nil, fmt.Errorf("timezone %q: %w", timezone, err)
		}
		loc = l
	}
	spec = strings.TrimSpace(spec)
	// cron reads a "TZ=zone " prefix itself, and panics on one without a
	// following space: the zone belongs in timezone.
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, nil, fmt.Errorf("schedule %q: give the time zone as the timezone, not as a prefix", spec)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	switch sc := sched.(type) {
	case *cron.SpecSchedule:
		sc.Location = loc
		// In loc's wall clock, with the daylight-saving rules of
		// wallSchedule in place of cron's own.
		sched = newWallSchedule(sc, loc)
	case cron.ConstantDelaySchedule:
		// cron runs shorter (even negative) intervals every second.
		if d, err := time.ParseDuration(strings.TrimPrefix(spec, "@every ")); err == nil && d < time.Second {
			return nil, nil, fmt.Errorf("schedule %q: the interval must be at least 1s", spec)
		}
	}
	return sched, loc, nil
}

// Set replaces all entries with entries (those with an empty Spec are
// skipped) and the callback with fire; it is used at start and on config
// reload, before or after Start. When any entry is invalid (bad spec or
// time zone, empty or repeated connector) it changes nothing and returns
// every problem. fire is called with a context canceled by Stop.
func (s *Scheduler) Set(entries []Entry, fire func(ctx context.Context, connector string)) error {
	type parsed struct {
		name  string
		sched cron.Schedule
		loc   *time.Location
	}
	var (
		todo []parsed
		errs []error
		seen = map[string]bool{}
	)
	for _, e := range entries {
		switch {
		case e.Connector == "":
			errs = append(errs, fmt.Errorf("schedule: an entry (spec %q) names no connector", e.Spec))
			continue
		case seen[e.Connector]:
			errs = append(errs, fmt.Errorf("schedule: connector %q is listed twice", e.Connector))
			continue
		}
		seen[e.Connector] = true
		if strings.TrimSpace(e.Spec) == "" {
			if e.Timezone != "" {
				errs = append(errs, fmt.Errorf("schedule: connector %q: timezone %q without a schedule", e.Connector, e.Timezone))
			}
			continue
		}
		sched, loc, err := parse(e.Spec, e.Timezone, s.loc)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule: connector %q: %w", e.Connector, err))
			continue
		}
		todo = append(todo, parsed{e.Connector, sched, loc})
	}
	if len(todo) > 0 && fire == nil {
		errs = append(errs, errors.New("schedule: no callback"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.entries {
		s.cron.Remove(e.id)
		delete(s.entries, name)
	}
	s.fire = fire
	for _, p := range todo {
		id := s.cron.Schedule(p.sched, s.job(p.name))
		s.entries[p.name] = scheduled{id: id, sched: p.sched, loc: p.loc}
		s.log.Info("sync scheduled", zap.String("connector", p.name), zap.String("schedule", specOf(entries, p.name)), zap.String("timezone", p.loc.String()))
	}
	return nil
}

// specOf returns the spec of connector's entry.
func specOf(entries []Entry, connector string) string {
	for _, e := range entries {
		if e.Connector == connector {
			return strings.TrimSpace(e.Spec)
		}
	}
	return ""
}

// job returns connector's wrapped job, made once per connector. s.mu is
// held.
func (s *Scheduler) job(connector string) cron.Job {
	if j, ok := s.jobs[connector]; ok {
		return j
	}
	l := cronLogger{log: s.log.With(zap.String("connector", connector))}
	// SkipIfStillRunning outside Recover: a panic is recovered before the
	// skip guard's token would be lost, so the connector keeps ticking.
	j := cron.NewChain(cron.SkipIfStillRunning(l), cron.Recover(l)).Then(cron.FuncJob(func() { s.tick(connector) }))
	s.jobs[connector] = j
	return j
}

// tick calls the callback for connector, unless the scheduler stopped or
// the connector was unscheduled meanwhile.
func (s *Scheduler) tick(connector string) {
	s.mu.Lock()
	fire := s.fire
	_, scheduledNow := s.entries[connector]
	s.mu.Unlock()
	if fire == nil || !scheduledNow || s.ctx.Err() != nil {
		return
	}
	s.log.Info("scheduled sync", zap.String("connector", connector))
	fire(s.ctx, connector)
}

// Start starts ticking in the background. It does nothing when already
// started or after Stop (a stopped Scheduler does not restart).
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.started {
		return
	}
	s.started = true
	s.cron.Start()
}

// Stop stops ticking, cancels the callbacks' context and waits for running
// callbacks to return. Later calls return at once.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	<-s.cron.Stop().Done()
}

// Next returns the connector's next planned run, and false when it is not
// scheduled, its schedule never fires, or the scheduler stopped. Before
// Start it is the run the schedule would make next from now.
func (s *Scheduler) Next(connector string) (time.Time, bool) {
	s.mu.Lock()
	e, ok := s.entries[connector]
	started, stopped := s.started, s.stopped
	s.mu.Unlock()
	if !ok || stopped {
		return time.Time{}, false
	}
	if started {
		if next := s.cron.Entry(e.id).Next; !next.IsZero() {
			return next, true
		}
	}
	next := e.sched.Next(time.Now().In(s.loc))
	return next, !next.IsZero()
}

// cronLogger is cron's Logger on zap. The library's routine messages go to
// debug; a skipped tick to info, as SkippedMessage; errors (a recovered
// panic) to error.
type cronLogger struct{ log *zap.Logger }

// Info implements cron.Logger.
func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if msg == "skip" {
		l.log.Info(SkippedMessage, fields(keysAndValues)...)
		return
	}
	l.log.Debug("cron: "+msg, fields(keysAndValues)...)
}

// Error implements cron.Logger.
func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	if msg == "panic" {
		msg = "scheduled request panicked"
	} else {
		msg = "cron: " + msg
	}
	l.log.Error(msg, append([]zap.Field{zap.Error(err)}, fields(keysAndValues)...)...)
}

// fields turns cron's key/value pairs into zap fields.
func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		key := fmt.Sprint(kv[i])
		if i+1 == len(kv) {
			out = append(out, zap.Any("extra", kv[i]))
			break
		}
		out = append(out, zap.Any(key, kv[i+1]))
	}
	return out
}
