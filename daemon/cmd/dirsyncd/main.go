// Command dirsyncd is the dirsync daemon: it keeps the phishing-simulation
// recipient list in step with the company directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
	_ "time/tzdata" // schedules name IANA time zones; appliances may lack zoneinfo

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/service"
)

func main() {
	os.Exit(run())
}

func run() int {
	// A log reader that goes away (`make run | tee` stopped by Ctrl-C, a
	// journal pipe closed) must not kill the daemon mid-shutdown: with
	// SIGPIPE caught, a write to the closed stdout or stderr fails with
	// EPIPE, which the logger drops, and the stores close cleanly. Caught
	// (not ignored), so plugin processes still start with the default.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	configPath := flag.String("config", "./plugins.hcl", "path of plugins.hcl")
	logFormat := flag.String("log-format", "", "log format: console, json, or auto (console on a terminal, json otherwise); overrides log { format } in plugins.hcl")
	flag.Parse()

	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dirsyncd: configuration error:")
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	format := cfg.Daemon.LogFormat
	if *logFormat != "" {
		format = *logFormat
	}
	log, err := newLogger(cfg.Daemon.LogLevel, format, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dirsyncd:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	if limit, err := setMemoryLimit(); err != nil {
		log.Warn("cannot set the soft memory limit; set GOMEMLIMIT", zap.Error(err))
	} else {
		log.Info("soft memory limit (GOMEMLIMIT; by default 90% of the unit's MemoryMax, else half the machine's memory)", zap.Int64("bytes", limit))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	marker := newRunMarker(cfg.Daemon.DataDir, log)
	err = service.Run(ctx, cfg, log, markingSupervisor{newSystemd(log), marker}, reload)
	// Run has returned: the stores are closed, whatever the error.
	marker.disarm()
	if err != nil {
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintln(os.Stderr, "dirsyncd: configuration error:")
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		log.Error("dirsyncd failed", zap.Error(err))
		return 1
	}
	log.Info("dirsyncd stopped")
	return 0
}

// setMemoryLimit sets the Go runtime's soft memory limit, unless the
// operator set GOMEMLIMIT (or AUTOMEMLIMIT=off): 90% of the cgroup's
// memory limit (systemd's MemoryMax=), or without one half the machine's
// memory. Near it the collector runs more often instead of letting the
// heap double (GOGC=100), which keeps a large sync from pushing a small
// appliance into the OOM killer. A limit far below the live heap would
// only burn CPU in the collector, which is why it is not a fixed figure.
// automemlimit reads the cgroup (v1 and v2) and the machine's memory.
func setMemoryLimit() (int64, error) {
	return memlimit.Set(memlimit.WithRatio(0.9),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.ApplyRatio(memlimit.FromSystem, 0.5/0.9))))
}

// newLogger logs to out: zap's console encoding with ISO-8601 times for a
// person at a terminal, JSON with RFC 3339 times ("ts") for the journal
// and log shippers. A write that fails (a reader gone: EPIPE) is dropped.
func newLogger(level, format string, out *os.File) (*zap.Logger, error) {
	lvl := zapcore.InfoLevel
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log_level %q: %w", level, err)
		}
	}
	if format == "auto" || format == "" {
		format = autoFormat(out)
	}
	var enc zapcore.Encoder
	switch format {
	case "console":
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	case "json":
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	default:
		return nil, fmt.Errorf("unknown -log-format %q: use console, json or auto", format)
	}
	// ErrorOutput is discarded: zap reports a failed write there, and
	// there is the same closed stderr.
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(out), lvl), zap.ErrorOutput(zapcore.AddSync(io.Discard))), nil
}

// autoFormat is the format "auto" picks for out: console on a terminal,
// where a person reads; JSON elsewhere (the journal's socket, a pipe, a
// file, /dev/null), where programs read.
func autoFormat(out *os.File) string {
	if term.IsTerminal(int(out.Fd())) {
		return "console"
	}
	return "json"
}

// systemdSupervisor speaks systemd's notify protocol (Type=notify): READY,
// STATUS, WATCHDOG and STOPPING. Without $NOTIFY_SOCKET every call is a
// no-op, so the same binary runs in a terminal.
type systemdSupervisor struct {
	log      *zap.Logger
	watchdog time.Duration
}

func newSystemd(log *zap.Logger) *systemdSupervisor {
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unreadable", zap.Error(err))
	}
	return &systemdSupervisor{log: log, watchdog: wd / 2}
}

func (s *systemdSupervisor) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		s.log.Warn("systemd notify failed", zap.Error(err))
	}
}

func (s *systemdSupervisor) Ready(status string) {
	s.notify(daemon.SdNotifyReady + "\nSTATUS=" + status)
}
func (s *systemdSupervisor) Status(status string)            { s.notify("STATUS=" + status) }
func (s *systemdSupervisor) Alive()                          { s.notify(daemon.SdNotifyWatchdog) }
func (s *systemdSupervisor) Stopping()                       { s.notify(daemon.SdNotifyStopping) }
func (s *systemdSupervisor) WatchdogInterval() time.Duration { return s.watchdog }
