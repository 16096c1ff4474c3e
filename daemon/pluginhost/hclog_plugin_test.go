package pluginhost

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A plugin's line in the daemon's JSON log carries the job once (the
// daemon's field; the plugin's own copy of the same value is dropped) and
// one time (the daemon's "ts"; go-plugin's "timestamp" is dropped). A
// plugin field that disagrees with the daemon's is kept, renamed. A normal
// "plugin process exited" is debug, not info.
func TestPluginLinesOnce(t *testing.T) {
	var buf bytes.Buffer
	fields := []zap.Field{zap.String("connector", "demo"), zap.String("job", "20261204T0900-ab")}
	z := lineLogger(&buf).With(append([]zap.Field{zap.String("plugin", "azuread")}, fields...)...)
	l := NewPluginHCLogger(z, fields)

	l.Info("sync started", "job", "20261204T0900-ab", "timestamp", "2026-12-04T09:00:00.000Z", "mode", "full")
	l.Info("other", "job", "someone-else")
	l.Info("plugin process exited", "plugin", "/bin/dirsync-azuread", "id", "42")
	want := `{"level":"info","msg":"sync started","plugin":"azuread","connector":"demo","job":"20261204T0900-ab","mode":"full"}
{"level":"info","msg":"other","plugin":"azuread","connector":"demo","job":"20261204T0900-ab","hclog_job":"someone-else"}
`
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(buf.String(), "timestamp") != 0 {
		t.Error("a second timestamp")
	}
}

// A plugin's field without a value (the connector's resyncReason "" when
// no resync happened, a null list) is left out of the daemon's line, as
// go-plugin hands it over (decoded JSON) and as the host decodes an
// unparsed line itself; a field with a value, zero included, stays.
func TestPluginLinesOmitEmptyFields(t *testing.T) {
	var buf bytes.Buffer
	fields := []zap.Field{zap.String("connector", "demo"), zap.String("job", "j1")}
	z := lineLogger(&buf).With(fields...)
	l := NewPluginHCLogger(z, fields)

	l.Info("sync finished", "complete", true, "resyncReason", "", "rejected", nil, "retries", float64(0), "reason", "token expired")
	l.Debug(`{"@level":"warn","@message":"full read","@timestamp":"2026-12-04T09:00:00.000000Z","reason":"","users":0}`)
	want := `{"level":"info","msg":"sync finished","connector":"demo","job":"j1","complete":true,"retries":0,"reason":"token expired"}
{"level":"warn","msg":"full read","connector":"demo","job":"j1","users":0}
`
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}

	// go-plugin's own messages (NewHCLogger) keep what they are given.
	buf.Reset()
	NewHCLogger(z).Info("starting plugin", "args", "")
	if want := `{"level":"info","msg":"starting plugin","connector":"demo","job":"j1","args":""}` + "\n"; buf.String() != want {
		t.Errorf("host line %s; want %s", buf.String(), want)
	}
}

// lineLogger logs JSON lines with level and message only (no time), so
// a test can compare them exactly.
func lineLogger(buf *bytes.Buffer) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level", EncodeLevel: zapcore.LowercaseLevelEncoder})
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(buf), zapcore.InfoLevel))
}
