// Package service assembles dirsyncd: NATS, the event store, projections,
// connector plugins, the job runner and the API, started in that order and
// stopped in reverse.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/leases"
	"github.com/dirsync/dirsync/daemon/metrics"
	"github.com/dirsync/dirsync/daemon/notify"
	"github.com/dirsync/dirsync/daemon/pluginhost"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/daemon/schedule"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// Supervisor is told how the daemon is doing: systemd's notify protocol in
// dirsyncd, nothing in tests. Every method must be cheap.
type Supervisor interface {
	// Ready: NATS, streams, projections, plugins and the API are up.
	Ready(status string)
	// Status describes what the daemon does now (e.g. the running jobs).
	Status(status string)
	// Alive is called from the main loop every WatchdogInterval.
	Alive()
	// Stopping: shutdown has begun.
	Stopping()
	// WatchdogInterval is how often Alive must be called; 0 means never.
	WatchdogInterval() time.Duration
}

// Run starts the daemon for cfg and serves until ctx ends, then stops
// cleanly. sup, if not nil, hears of readiness, status and liveness.
//
// Each value on reload makes it read plugins.hcl again (SIGHUP in
// dirsyncd): new and changed connectors and schedules apply to the next
// job, a running job keeps going, and a configuration with any error is
// logged and ignored.
func Run(ctx context.Context, cfg *config.Config, log *zap.Logger, sup Supervisor, reload <-chan struct{}) error {
	// Permissions first: nothing is opened, launched or created in a data
	// directory or with a credential that other users can reach.
	if err := checkAccess(cfg); err != nil {
		return err
	}
	// Then the data directory's lock, before anything opens the store,
	// the read models or the job log: a second daemon leaves at once.
	unlock, err := lockDataDir(cfg.Daemon.DataDir)
	if err != nil {
		return err
	}
	defer unlock()
	host := pluginhost.New(log)
	specs, secrets, err := checkConnectors(ctx, cfg, host, log)
	if err != nil {
		return err
	}

	b, err := broker.Start(ctx, broker.Options{
		Listen: cfg.NATS.Listen, DataDir: cfg.Daemon.DataDir, URL: cfg.NATS.URL,
		CredsFile: cfg.NATS.CredsFile, NkeyFile: cfg.NATS.NkeyFile, CAFile: cfg.NATS.CAFile,
		Sync: cfg.NATS.Sync, MaxStore: cfg.NATS.MaxStore,
	}, log)
	if err != nil {
		return err
	}
	defer b.Close()

	st, err := settingUp(ctx, "stream "+store.StreamName, log, func(ctx context.Context) (*store.Store, error) {
		return store.Open(ctx, b.JS, cfg.NATS.Replicas, store.WithDisk(b.Storage()))
	})
	if err != nil {
		return err
	}
	warnDurability(ctx, b.JS, cfg.NATS.Embedded(), cfg.NATS.Sync, log)
	// Each connector's KV entries are written by the replica holding it
	// (or, for a connector no replica holds, by any).
	// Until the lease campaign starts, whose they are is not known: the
	// entries wait (a start from a checkpoint writes its tail's entries
	// once the connector is taken over).
	var kvWriter atomic.Pointer[func(connector string) projections.KVWrite]
	writesKV := func(c string) projections.KVWrite {
		if f := kvWriter.Load(); f != nil {
			return (*f)(c)
		}
		return projections.KVLater
	}
	proj, err := settingUp(ctx, "the read models' buckets", log, func(ctx context.Context) (*projections.Projector, error) {
		return projections.New(ctx, b.JS, st, cfg.NATS.Replicas, log.Named("projections"),
			projections.WithCheckpoints(uint64(cfg.Daemon.CheckpointEvents), cfg.Daemon.CheckpointInterval),
			projections.WithCheckpointWriter(replicaIdentity(cfg.Daemon.DataDir)),
			projections.WriteKVFor(writesKV))
	})
	if err != nil {
		return err
	}
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	perr := make(chan error, 1)
	go func() { perr <- proj.Run(pctx) }()
	defer func() {
		pcancel()
		<-perr
		// The runner has stopped: the state holds still, so a clean stop
		// leaves a checkpoint of everything folded and the next start
		// replays nothing.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := proj.Checkpoint(cctx); err != nil {
			log.Warn("cannot write the read-model checkpoint at stop; the next start replays the events since the last one", zap.Error(err))
		}
	}()
	select {
	case <-proj.Ready():
	case err := <-perr:
		perr <- err
		return fmt.Errorf("projections: %w", err)
	case <-ctx.Done():
		return nil
	}
	// Loading a checkpoint or replaying the stream allocates several
	// times what the read models keep (a 100,000-user checkpoint: about
	// 320 MiB for 30 MiB kept). Hand that back to the system now rather
	// than over the scavenger's next minutes, so that an appliance's
	// memory right after a start is what the daemon holds.
	debug.FreeOSMemory()

	// live is the configuration in force; SIGHUP swaps it. A running job
	// keeps the spec it started with.
	// liveSecrets are the secret files its connectors name, checked again
	// at each launch: the plugin reads them at each use, and a chmod while
	// the daemon runs must not go unnoticed.
	var liveMu sync.Mutex
	live, liveSecrets := cfg, secrets
	current := func() *config.Config {
		liveMu.Lock()
		defer liveMu.Unlock()
		return live
	}
	launch := func(ctx context.Context, name string, fields ...zap.Field) (connector.Connector, func(), error) {
		liveMu.Lock()
		cfg, files := live, liveSecrets[name]
		liveMu.Unlock()
		c := cfg.Connector(name)
		if c == nil {
			return nil, nil, fmt.Errorf("connector %q is no longer in plugins.hcl", name)
		}
		for _, f := range files {
			if err := checkPrivate(fmt.Sprintf("connector %q %s", name, f.key), f.path); err != nil {
				return nil, nil, err
			}
		}
		inst, err := host.Launch(ctx, cfg.Plugin(c.Plugin), fields...)
		if err != nil {
			return nil, nil, err
		}
		return inst.Connector(), inst.Kill, nil
	}
	dry, err := settingUp(ctx, "the dry-run store", log, func(ctx context.Context) (*jobs.DryRuns, error) { return openDryRuns(ctx, b, cfg, log) })
	if err != nil {
		return err
	}
	runner := jobs.New(st, proj, launch, specs, log.Named("jobs"))
	runner.KeepDryRunsIn(dry)
	m := newMetrics(st, proj, runner)
	m.Declare(configured(cfg))
	host.Observe(m)
	runner.Observe(m)
	// One writer per connector: this replica runs the connectors whose
	// leases it takes (all of them when it runs alone).
	camp, err := settingUp(ctx, "the lease bucket", log, func(ctx context.Context) (*leases.Leases, error) {
		return startLeases(ctx, b.JS, cfg.Daemon.Replica, cfg.Daemon.DataDir, cfg.Daemon.LeaseTTL, cfg.NATS.Replicas, runner, b.Conn, log.Named("leases"))
	})
	if err != nil {
		return err
	}
	holding := kvWrites(runner, camp)
	kvWriter.Store(&holding)
	lctx, lcancel := context.WithCancel(context.WithoutCancel(ctx))
	lerr := make(chan error, 1)
	// Stopped after the runner (deferred first): the leases go once no
	// job of this replica runs, so that another replica takes over at
	// once.
	defer func() {
		lcancel()
		if err := <-lerr; err != nil {
			log.Warn("lease campaign", zap.Error(err))
		}
	}()
	if err := runner.Start(ctx); err != nil {
		lerr <- nil
		return err
	}
	defer runner.Stop()
	camp.Want(runner.Connectors())
	go func() { lerr <- camp.Run(lctx) }()
	awaitHolders(ctx, camp, runner, runner.Connectors(), log)
	// A connector removed or renamed in plugins.hcl keeps its recipients
	// active until it is retired: say so at each load.
	runner.WarnUnconfigured(log)

	sched := schedule.New(log.Named("schedule"))
	tick := func(ctx context.Context, name string) {
		id, err := runner.Request(ctx, name, jobs.Request{RequestedBy: "schedule", IfIdle: true})
		if errors.Is(err, jobs.ErrBusy) {
			log.Info("schedule tick skipped: the previous job is still running", zap.String("connector", name), zap.Error(err))
			return
		}
		if err != nil {
			log.Warn("scheduled sync not requested", zap.String("connector", name), zap.Error(err))
			return
		}
		log.Info("scheduled sync requested", zap.String("connector", name), zap.String("job", id))
	}
	if err := sched.Set(scheduleOf(cfg), tick); err != nil {
		return err
	}
	sched.Start()
	defer sched.Stop()

	// Not ready after 10 s without progress, and never later than stalled.
	ready := &readiness{stallFor: min(10*time.Second, cfg.Daemon.StallTimeout)}
	alive := &liveness{ready: ready, stalled: runner.Stalled, limit: cfg.Daemon.StallTimeout}
	// observe measures the projector's lag for readiness and liveness.
	// Without NATS the lag is unknown and recorded as none: an outage is
	// not a stall of the daemon's own.
	observe := func(ctx context.Context) error {
		if !b.Conn.IsConnected() {
			ready.observe(proj.Seq(), 0, time.Now())
			return fmt.Errorf("not connected to NATS (%s)", b.Conn.Status())
		}
		lag, err := projectionLag(ctx, st, proj)
		if err != nil {
			ready.observe(proj.Seq(), 0, time.Now())
			return err
		}
		ready.observe(proj.Seq(), lag, time.Now())
		return nil
	}
	notifier, err := startNotify(ctx, cfg, b.JS, proj, runner, m.Registry(), log.Named("notify"))
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if notifier != nil {
		defer notifier.Stop()
	}
	apiServer := api.NewServer(runner, proj, log.Named("api")).WithSchedule(sched.Next).WithMetrics(m.Handler()).WithRetire(runner).
		WithNotify(func(ctx context.Context) []notify.SinkStatus {
			if notifier == nil {
				return nil
			}
			return notifier.Status(ctx)
		}).
		WithHolders(func() (string, []string, map[string]api.Holder) {
			held := map[string]api.Holder{}
			for c, le := range camp.Holders() {
				if le.Epoch != 0 {
					held[c] = api.Holder{Replica: le.Replica, Epoch: le.Epoch, Since: le.Since, Renewed: le.Renewed}
				}
			}
			return camp.Replica(), camp.Replicas(), held
		}).
		WithReadiness(func(ctx context.Context) error {
			if err := observe(ctx); err != nil {
				return err
			}
			return ready.stalled(time.Now(), ready.stallFor)
		}).
		WithLiveness(func(ctx context.Context) error {
			_ = observe(ctx)
			return alive.check(time.Now())
		})
	ln, err := listenUnix(cfg.SocketPath())
	if err != nil {
		return err
	}
	srv := newHTTPServer(apiServer, log.Named("api"))
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = os.Remove(cfg.SocketPath())
	}()
	var tcp *tcpAPI
	if cfg.API.Enabled() {
		tcp, err = startTCPAPI(cfg.API, apiServer, log.Named("api"), time.Now)
		if err != nil {
			return err
		}
		defer tcp.stop()
	}

	log.Info("dirsyncd ready", zap.String("socket", cfg.SocketPath()), zap.String("nats", b.ClientURL),
		zap.Strings("connectors", runner.Connectors()))
	if sup == nil {
		sup = nopSupervisor{}
	}
	sup.Ready(statusLine(proj, runner.Connectors()))
	every := sup.WatchdogInterval()
	if every <= 0 || every > 5*time.Second {
		every = 5 * time.Second // the status line stays current too
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	wasStalled := false
	for {
		select {
		case <-ctx.Done():
			sup.Stopping()
			camp.Quiesce()
			sched.Stop()
			drain(runner, current().Daemon.ShutdownGrace, sup, log)
			return nil
		case err := <-perr:
			perr <- err // for the deferred stop, which waits on it
			return fmt.Errorf("projections stopped: %w", err)
		case <-reload:
			next, err := reloadConfig(ctx, cfg.File, current(), host, log)
			if err != nil {
				log.Error("reloading plugins.hcl failed; the old configuration stays in force", zap.Error(err))
				sup.Status("reload failed, old configuration in force: " + firstLine(err.Error()))
				continue
			}
			specs, secrets, err := checkConnectors(ctx, next, host, log)
			if err == nil && tcp != nil {
				err = tcp.reload(next.API)
			} else if err == nil && next.API.Enabled() {
				err = errors.New("api { listen } takes effect only at a restart; restart dirsyncd to turn the TCP API on")
			}
			if err == nil {
				err = sched.Set(scheduleOf(next), tick)
			}
			if err != nil {
				log.Error("reloading plugins.hcl failed; the old configuration stays in force", zap.Error(err))
				continue
			}
			liveMu.Lock()
			live, liveSecrets = next, secrets
			liveMu.Unlock()
			runner.SetSpecs(specs)
			camp.Want(runner.Connectors())
			m.Declare(configured(next))
			log.Info("plugins.hcl reloaded", zap.Strings("connectors", runner.Connectors()))
			runner.WarnUnconfigured(log)
			sup.Status(statusLine(proj, runner.Connectors()))
		case <-ticker.C:
			// The watchdog is fed only while the daemon works: the main
			// loop runs (statusLine needs the projector's lock), the read
			// models advance when they lag, and the job queues move. A
			// stalled daemon is restarted by systemd (WatchdogSec).
			status := statusLine(proj, runner.Connectors())
			lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
			_ = observe(lctx)
			lcancel()
			if err := alive.check(time.Now()); err != nil {
				if !wasStalled {
					log.Error("dirsyncd has stalled: no longer feeding the systemd watchdog, so systemd restarts it (/healthz answers 503 meanwhile)",
						zap.Error(err), zap.Duration("stall_timeout", alive.limit))
				}
				wasStalled = true
				sup.Status("stalled: " + err.Error())
				continue
			}
			if wasStalled {
				log.Info("dirsyncd works again: the stall ended before a restart")
				wasStalled = false
			}
			sup.Status(status)
			sup.Alive()
		}
	}
}

// drain lets running jobs finish within grace, keeping systemd informed,
// before the deferred Stop interrupts what is left.
func drain(runner *jobs.Runner, grace time.Duration, sup Supervisor, log *zap.Logger) {
	deadline := time.Now().Add(grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastAlive := time.Time{}
	for {
		idle, running := runner.Drain(ctx)
		if idle {
			log.Info("stopping: no job running")
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			log.Warn("stopping: shutdown_grace is over; interrupting the running jobs (they end FAILED as interrupted, and the next sync repairs any partial change)",
				zap.Strings("running", running), zap.Duration("shutdown_grace", grace))
			return
		}
		if time.Since(lastAlive) >= time.Second {
			if lastAlive.IsZero() {
				log.Info("stopping: letting running jobs finish", zap.Strings("running", running), zap.Duration("shutdown_grace", grace))
			}
			sup.Status(fmt.Sprintf("stopping: waiting up to %s for %s", left.Round(time.Second), strings.Join(running, "; ")))
			sup.Alive()
			lastAlive = time.Now()
		}
		<-tick.C
	}
}

// projectionLag is how many stored events the read models have not folded.
func projectionLag(ctx context.Context, st *store.Store, proj *projections.Projector) (uint64, error) {
	last, err := st.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if seq := proj.Seq(); last > seq {
		return last - seq, nil
	}
	return 0, nil
}

// newMetrics instruments the daemon's parts.
func newMetrics(st *store.Store, proj *projections.Projector, runner *jobs.Runner) *metrics.Metrics {
	return metrics.New(metrics.Sources{
		EventsPublished: st.Published,
		ProjectionLag:   func(ctx context.Context) (uint64, error) { return projectionLag(ctx, st, proj) },
		Connectors: func() []metrics.ConnectorState {
			names := runner.Connectors()
			var out []metrics.ConnectorState
			proj.View(func(s *projections.State) {
				for _, n := range names {
					ss := s.SyncStatus(n)
					out = append(out, metrics.ConnectorState{Name: n, Active: ss.Recipients, Archived: ss.Archived,
						LastSyncAt: ss.LastSyncAt, Running: ss.CurrentJob != ""})
				}
			})
			return out
		},
	})
}

// configured lists the connector and plugin names of a configuration.
func configured(cfg *config.Config) (connectors, plugins []string) {
	for _, c := range cfg.Connectors {
		connectors = append(connectors, c.Name)
	}
	for _, p := range cfg.Plugins {
		plugins = append(plugins, p.Name)
	}
	return connectors, plugins
}

// scheduleOf lists the scheduled connectors of a configuration.
func scheduleOf(cfg *config.Config) []schedule.Entry {
	var entries []schedule.Entry
	for _, c := range cfg.Connectors {
		if c.Schedule != "" {
			entries = append(entries, schedule.Entry{Connector: c.Name, Spec: c.Schedule, Timezone: c.Timezone})
		}
	}
	return entries
}

// reloadConfig reads plugins.hcl again. What cannot change without a
// restart (data directory, NATS) must stay as it is.
func reloadConfig(_ context.Context, file string, old *config.Config, _ *pluginhost.Host, log *zap.Logger) (*config.Config, error) {
	next, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	if next.Daemon.DataDir != old.Daemon.DataDir || next.NATS != old.NATS {
		return nil, errors.New("daemon { data_dir } and nats { } take effect only at a restart; restart dirsyncd to change them")
	}
	if next.Daemon.LogLevel != old.Daemon.LogLevel {
		log.Warn("daemon { log_level } takes effect only at a restart")
	}
	if !notifyEqual(next.Notify, old.Notify) {
		log.Warn("notify { } takes effect only at a restart; the webhooks and emails of the start stay in force until then")
	}
	return next, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// statusLine sums up the connectors' jobs for systemctl status.
func statusLine(proj *projections.Projector, names []string) string {
	var parts []string
	proj.View(func(s *projections.State) {
		for _, n := range names {
			st := s.SyncStatus(n)
			switch {
			case st.CurrentJob != "":
				parts = append(parts, fmt.Sprintf("%s: job %s %s", n, st.CurrentJob, st.CurrentState))
			case st.LastSyncAt != nil:
				parts = append(parts, fmt.Sprintf("%s: idle, last sync %s, %d recipients", n, st.LastSyncAt.Local().Format("2006-01-02 15:04"), st.Recipients))
			default:
				parts = append(parts, fmt.Sprintf("%s: never synced", n))
			}
		}
	})
	if len(parts) == 0 {
		return "ready, no connector configured"
	}
	return strings.Join(parts, "; ")
}

type nopSupervisor struct{}

func (nopSupervisor) Ready(string)                    {}
func (nopSupervisor) Status(string)                   {}
func (nopSupervisor) Alive()                          {}
func (nopSupervisor) Stopping()                       {}
func (nopSupervisor) WatchdogInterval() time.Duration { return 0 }

// checkConnectors starts each connector's plugin once, checks the
// connector's config block against the plugin's schema and the plugin's
// own validation, and returns the runner's specs and each connector's
// secret files. Every problem in every connector is reported, each with
// its place in plugins.hcl; a secret file (or a plugins.hcl holding a
// secret inline) that other users can read is one.
func checkConnectors(ctx context.Context, cfg *config.Config, host *pluginhost.Host, log *zap.Logger) ([]jobs.Spec, map[string][]secretFile, error) {
	var specs []jobs.Spec
	secrets := map[string][]secretFile{}
	var problems []string
	for _, c := range cfg.Connectors {
		p := cfg.Plugin(c.Plugin)
		inst, err := host.Launch(ctx, p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: connector %q: %v", pos(cfg, c), c.Name, err))
			continue
		}
		spec, files, errs := checkConnector(ctx, cfg, c, inst.Describe(), inst.Connector())
		inst.Kill()
		if len(errs) > 0 {
			problems = append(problems, errs...)
			continue
		}
		log.Info(fmt.Sprintf("checked plugin %s v%s for connector %s: config valid", p.Name, strings.TrimPrefix(inst.Describe().GetVersion(), "v"), c.Name),
			zap.String("connector", c.Name), zap.String("plugin", p.Name), zap.String("version", inst.Describe().GetVersion()))
		specs = append(specs, spec)
		secrets[c.Name] = files
	}
	if len(problems) > 0 {
		return nil, nil, &ConfigError{Problems: problems}
	}
	return specs, secrets, nil
}

func checkConnector(ctx context.Context, cfg *config.Config, c *config.Connector, desc *connectorv1.DescribeResponse, conn connector.Connector) (jobs.Spec, []secretFile, []string) {
	js, sensitive, err := config.DecodeConnectorConfig(c, desc.GetConfigFields(), cfg.File)
	if err != nil {
		return jobs.Spec{}, nil, strings.Split(err.Error(), "\n")
	}
	// Permissions before the plugin reads anything: ValidateConfig reads
	// the secret file.
	var values map[string]any
	if err := json.Unmarshal(js, &values); err != nil {
		return jobs.Spec{}, nil, []string{fmt.Sprintf("%s: connector %q: config: %v", pos(cfg, c), c.Name, err)}
	}
	files := secretFiles(desc.GetConfigFields(), values, cfg.Dir)
	var denied []string
	for _, f := range files {
		if err := checkPrivate(fmt.Sprintf("connector %q %s", c.Name, f.key), f.path); err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v", pos(cfg, c), err))
		}
	}
	if len(sensitive) > 0 {
		if err := checkPrivate(fmt.Sprintf("plugins.hcl (connector %q sets %s inline)", c.Name, strings.Join(sensitive, ", ")), cfg.File); err != nil {
			denied = append(denied, fmt.Sprintf("%s: %v, or move the secret to a file named by its *_file key", pos(cfg, c), err))
		}
	}
	if len(denied) > 0 {
		return jobs.Spec{}, nil, denied
	}
	pc := &connectorv1.Config{Json: js, BaseDir: cfg.Dir}
	problems, err := conn.ValidateConfig(ctx, pc)
	if err != nil {
		return jobs.Spec{}, nil, []string{fmt.Sprintf("%s: connector %q: validating config: %v", pos(cfg, c), c.Name, err)}
	}
	var out []string
	for _, p := range problems {
		field := ""
		if p.GetField() != "" {
			field = p.GetField() + ": "
		}
		out = append(out, fmt.Sprintf("%s: connector %q: config: %s%s", pos(cfg, c), c.Name, field, p.GetMessage()))
	}
	im := c.Import.WithPluginGroupKinds(desc.GetDefaultGroupKinds())
	return jobs.Spec{Name: c.Name, Plugin: c.Plugin, Config: pc, Policy: policy.Policy{Import: im}, MaxRemovals: im.MaxRemovals,
		FullSyncInterval: c.FullSyncInterval, RenamedFrom: c.RenamedFrom}, files, out
}

func pos(cfg *config.Config, c *config.Connector) string {
	return fmt.Sprintf("%s:%d:%d", cfg.File, c.Range.Start.Line, c.Range.Start.Column)
}

// ConfigError lists every problem found in plugins.hcl.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// listenUnix opens the control socket with mode 0600, replacing a stale
// socket left by a daemon that did not stop cleanly but refusing to steal
// one a running daemon answers on.
//
// The socket lives in the data directory, which checkAccess has found
// owner-only, so no other user can reach it even for the instant between
// bind and chmod; the umask makes bind create it owner-only anyway (0077,
// not stricter: the umask is the process's, and files other goroutines
// create meanwhile must keep their owner bits). After the chmod the mode
// is checked, and a socket others could use is refused.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another dirsyncd already listens on %s: stop it first", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting control socket %s to mode 0600: %w", path, err)
	}
	if err := checkPrivate("control socket", path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// openDryRuns creates the object store of dry runs' change lists, sized
// by the JetStream storage it may reserve from (jobs.DryRunBytes):
// nats { max_store } when set, else what the embedded server has room
// for at start; on an external server, jobs.DryRunMaxBytes.
func openDryRuns(ctx context.Context, b *broker.Broker, cfg *config.Config, log *zap.Logger) (*jobs.DryRuns, error) {
	var room int64
	switch disk := b.Storage(); {
	case cfg.NATS.MaxStore > 0:
		room = cfg.NATS.MaxStore
	case disk != nil:
		free, _, err := disk.Free(ctx)
		if err != nil {
			return nil, fmt.Errorf("sizing the dry-run store: %w", err)
		}
		room = free
	}
	dry, err := jobs.OpenDryRuns(ctx, b.JS, cfg.NATS.Replicas, jobs.DryRunBytes(room), b.Storage())
	if err != nil {
		return nil, err
	}
	log.Info("dry runs' change lists kept", zap.String("bucket", jobs.DryRunBucket), zap.Int("dry_runs", jobs.KeptDryRuns),
		zap.String("max_bytes", store.Bytes(dry.MaxBytes())))
	return dry, nil
}
