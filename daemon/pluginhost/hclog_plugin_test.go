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
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level", EncodeLevel: zapcore.LowercaseLevelEncoder})
	fields := []zap.Field{zap.String("connector", "demo"), zap.String("job", "20261204T0900-ab")}
	z := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.InfoLevel)).With(append([]zap.Field{zap.String("plugin", "azuread")}, fields...)...)
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
