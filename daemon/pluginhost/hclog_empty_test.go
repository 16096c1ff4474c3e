package pluginhost

import (
	"bytes"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A plugin's field without a value (the connector's resyncReason "" when
// no resync happened, a null list) is left out of the daemon's line, as
// go-plugin hands it over (decoded JSON) and as the host decodes an
// unparsed line itself; a field with a value, zero included, stays.
func TestPluginLinesOmitEmptyFields(t *testing.T) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level", EncodeLevel: zapcore.LowercaseLevelEncoder})
	fields := []zap.Field{zap.String("connector", "demo"), zap.String("job", "j1")}
	z := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.InfoLevel)).With(fields...)
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
