package pluginhost

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func observed(level zapcore.Level) (hclog.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(level)
	return NewHCLogger(zap.New(core).With(zap.String("plugin", "p")), "plugin"), logs
}

func TestHCLogLevels(t *testing.T) {
	l, logs := observed(zapcore.DebugLevel)
	l.Trace("t")
	l.Debug("d")
	l.Info("i")
	l.Warn("w")
	l.Error("e")
	l.Log(hclog.Off, "off")
	l.Log(hclog.NoLevel, "none")
	want := []struct {
		msg   string
		level zapcore.Level
	}{
		{"t", zapcore.DebugLevel}, {"d", zapcore.DebugLevel}, {"i", zapcore.InfoLevel},
		{"w", zapcore.WarnLevel}, {"e", zapcore.ErrorLevel}, {"none", zapcore.InfoLevel},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries; want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Message != w.msg || got[i].Level != w.level {
			t.Errorf("entry %d = %s %q; want %s %q", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
	if !l.IsTrace() || !l.IsDebug() || l.GetLevel() != hclog.Trace {
		t.Errorf("debug core: IsTrace %v IsDebug %v GetLevel %v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}
}

func TestHCLogCoreLevelAndSetLevel(t *testing.T) {
	l, logs := observed(zapcore.InfoLevel)
	if l.IsDebug() || !l.IsInfo() || l.GetLevel() != hclog.Info {
		t.Errorf("info core: IsDebug %v IsInfo %v GetLevel %v", l.IsDebug(), l.IsInfo(), l.GetLevel())
	}
	l.Debug("dropped")
	child := l.Named("child")
	l.SetLevel(hclog.Warn)
	child.Info("dropped too")
	child.Warn("kept")
	if l.GetLevel() != hclog.Warn || child.IsInfo() || !child.IsWarn() || !child.IsError() {
		t.Errorf("after SetLevel(Warn): GetLevel %v, child IsInfo %v", l.GetLevel(), child.IsInfo())
	}
	l.SetLevel(hclog.NoLevel)
	l.Info("back")
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 2 || msgs[0] != "kept" || msgs[1] != "back" {
		t.Errorf("messages %v; want [kept back]", msgs)
	}
	l.SetLevel(hclog.Off)
	if l.GetLevel() != hclog.Off || l.IsError() {
		t.Errorf("Off: GetLevel %v IsError %v", l.GetLevel(), l.IsError())
	}
}

func TestHCLogFieldsAndNames(t *testing.T) {
	l, logs := observed(zapcore.DebugLevel)
	w := l.With("conn", "contoso").Named("grpc").Named("stream")
	if w.Name() != "grpc.stream" || len(w.ImpliedArgs()) != 2 {
		t.Errorf("Name %q ImpliedArgs %v", w.Name(), w.ImpliedArgs())
	}
	w.Info("hello", "n", 3, "err", errors.New("boom"), "f", hclog.Fmt("%d-%s", 7, "x"), "hex", hclog.Hex(255), 42, "v", "plugin", "/path/to/bin", "odd")
	e := logs.All()[0]
	if e.LoggerName != "grpc.stream" {
		t.Errorf("logger name %q", e.LoggerName)
	}
	ctx := e.ContextMap()
	for k, want := range map[string]any{
		"plugin":         "p",
		"hclog_plugin":   "/path/to/bin",
		"conn":           "contoso",
		"n":              int64(3),
		"err":            "boom",
		"f":              "7-x",
		"hex":            "0xff",
		"42":             "v",
		hclog.MissingKey: "odd",
	} {
		if ctx[k] != want {
			t.Errorf("field %s = %#v; want %#v", k, ctx[k], want)
		}
	}
	r := w.ResetNamed("other")
	r.Info("x")
	if e := logs.All()[1]; e.LoggerName != "other" || e.ContextMap()["conn"] != "contoso" {
		t.Errorf("ResetNamed: name %q fields %v", e.LoggerName, e.ContextMap())
	}
}

func TestHCLogPluginJSONLine(t *testing.T) {
	l, logs := observed(zapcore.DebugLevel)
	// What go-plugin passes on when it cannot parse a plugin's JSON line.
	l.Named("dirsync-azuread").Debug(`{"@level":"warn","@message":"throttled","@timestamp":"2025-01-02T03:04:05.123456789Z","@module":"graph","retry_after":"2s","attempt":3}`)
	l.Debug(`{"not":"a log line"}`)
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d entries", len(all))
	}
	e := all[0]
	ctx := e.ContextMap()
	if e.Level != zapcore.WarnLevel || e.Message != "throttled" || ctx["module"] != "graph" || ctx["retry_after"] != "2s" || ctx["attempt"] != int64(3) || ctx["plugin"] != "p" {
		t.Errorf("entry %s %q %v", e.Level, e.Message, ctx)
	}
	if _, ok := ctx["@timestamp"]; ok {
		t.Error("@timestamp kept as a field")
	}
	if all[1].Level != zapcore.DebugLevel || all[1].Message != `{"not":"a log line"}` {
		t.Errorf("plain JSON: %s %q", all[1].Level, all[1].Message)
	}
}

func TestHCLogStandardLogger(t *testing.T) {
	l, logs := observed(zapcore.DebugLevel)
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[WARN] careful")
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevelsWithTimestamp: true}).Print("2025/01/02 03:04:05 [ERROR] broke")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}).Print("[ERROR] forced")
	_, _ = l.StandardWriter(nil).Write([]byte("plain\n\nsecond\n"))
	want := []struct {
		msg   string
		level zapcore.Level
	}{
		{"careful", zapcore.WarnLevel}, {"broke", zapcore.ErrorLevel}, {"[ERROR] forced", zapcore.DebugLevel},
		{"plain", zapcore.InfoLevel}, {"second", zapcore.InfoLevel},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries; want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Message != w.msg || got[i].Level != w.level {
			t.Errorf("entry %d = %s %q; want %s %q", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
}
