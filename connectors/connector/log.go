package connector

import (
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewPluginLogger returns the zap logger a plugin process logs with. It
// writes JSON lines to stderr using hclog's key names (@message, @level,
// @timestamp), which go-plugin parses on the host side and forwards, with
// level and fields intact, into the daemon's zap log.
func NewPluginLogger(level zapcore.Level) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		MessageKey:     "@message",
		LevelKey:       "@level",
		TimeKey:        "@timestamp",
		NameKey:        "@module",
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.TimeEncoderOfLayout("2006-01-02T15:04:05.000000Z07:00"), // go-plugin parses exactly this layout
		EncodeDuration: zapcore.StringDurationEncoder,
		LineEnding:     zapcore.DefaultLineEnding,
	})
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), level))
}
