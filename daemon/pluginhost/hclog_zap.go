package pluginhost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewHCLogger returns an hclog.Logger that writes to z: go-plugin's own
// messages and the log lines plugins write to stderr land in the daemon's
// zap log. hclog's Trace and Debug map to zap's Debug; Info, Warn and
// Error map to their namesakes. Key/value arguments become zap fields;
// an argument whose key is one of reserved (the fields z already carries,
// such as "plugin") is renamed "hclog_<key>", so it cannot shadow them.
func NewHCLogger(z *zap.Logger, reserved ...string) hclog.Logger {
	return newHCLogger(z, "", nil, &shared{reserved: reserved})
}

// NewPluginHCLogger is NewHCLogger for a plugin process's lines, where z
// carries fields (plugin, connector, job). A plugin argument that repeats
// one of them with the same value (the job a connector logs with each
// line) is dropped rather than written twice; one with another value is
// kept as "hclog_<key>". A plugin field without a value (an empty string
// or null, such as the resyncReason of a sync that needed none) is
// dropped: to a reader it says nothing, or suggests a reason that is
// missing.
func NewPluginHCLogger(z *zap.Logger, fields []zap.Field) hclog.Logger {
	reserved := []string{"plugin"}
	known := map[string]string{}
	for _, f := range fields {
		reserved = append(reserved, f.Key)
		if f.Type == zapcore.StringType {
			known[f.Key] = f.String
		}
	}
	return newHCLogger(z, "", nil, &shared{reserved: reserved, known: known, omitEmpty: true})
}

// shared is the state a logger shares with the loggers derived from it.
type shared struct {
	// level is set by SetLevel; hclog.NoLevel defers to the zap core.
	level    atomic.Int32
	reserved []string
	// known are the values of string fields z carries, by key.
	known map[string]string
	// omitEmpty drops arguments whose value is "" or nil.
	omitEmpty bool
}

// hclogZap implements hclog.Logger on a zap.Logger.
type hclogZap struct {
	base    *zap.Logger // as given to NewHCLogger: no name or fields added
	z       *zap.Logger // base, named and with the implied arguments
	name    string
	implied []any
	shared  *shared
}

var _ hclog.Logger = (*hclogZap)(nil)

func newHCLogger(base *zap.Logger, name string, implied []any, sh *shared) *hclogZap {
	z := base
	if name != "" {
		z = z.Named(name)
	}
	if len(implied) > 0 {
		z = z.With(zapFields(implied, sh)...)
	}
	return &hclogZap{base: base, z: z, name: name, implied: implied, shared: sh}
}

// zapLevel maps an hclog level to zap's.
func zapLevel(l hclog.Level) zapcore.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return zapcore.DebugLevel
	case hclog.Warn:
		return zapcore.WarnLevel
	case hclog.Error:
		return zapcore.ErrorLevel
	default:
		return zapcore.InfoLevel
	}
}

// enabled reports whether a message at level would be written.
func (l *hclogZap) enabled(level hclog.Level) bool {
	if level == hclog.Off {
		return false
	}
	if own := hclog.Level(l.shared.level.Load()); own != hclog.NoLevel && level != hclog.NoLevel && level < own {
		return false
	}
	return l.z.Core().Enabled(zapLevel(level))
}

// Log implements hclog.Logger.
func (l *hclogZap) Log(level hclog.Level, msg string, args ...any) {
	// A JSON line from a plugin's stderr that go-plugin could not parse
	// (it expects hclog's exact timestamp layout) arrives as a Debug message
	// holding the whole line: decode it here so level and fields survive.
	if level == hclog.Debug && len(args) == 0 && strings.HasPrefix(msg, "{") {
		if lvl, m, kv, ok := parsePluginLine(msg); ok {
			level, msg, args = lvl, m, kv
		}
	}
	// go-plugin says "plugin process exited" at info level for every
	// normal stop, which reads as a crash; a crash comes at error level
	// (and the host's own warning says what failed), so the normal one is
	// debug.
	if level == hclog.Info && msg == "plugin process exited" {
		level = hclog.Debug
	}
	if !l.enabled(level) {
		return
	}
	if ce := l.z.Check(zapLevel(level), msg); ce != nil {
		ce.Write(zapFields(args, l.shared)...)
	}
}

// parsePluginLine decodes an hclog-style JSON log line (@level, @message,
// other keys as fields). It fails for JSON that is not such a line.
func parsePluginLine(line string) (hclog.Level, string, []any, bool) {
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return hclog.NoLevel, "", nil, false
	}
	lvlText, _ := raw["@level"].(string)
	msg, hasMsg := raw["@message"].(string)
	level := hclog.LevelFromString(lvlText)
	if level == hclog.NoLevel || !hasMsg {
		return hclog.NoLevel, "", nil, false
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		switch k {
		case "@level", "@message", "@timestamp":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		name := k
		if k == "@module" {
			name = "module"
		}
		args = append(args, name, raw[k])
	}
	return level, msg, args, true
}

// zapFields turns hclog key/value arguments into zap fields, renaming the
// reserved keys and dropping those that repeat a known value (and, with
// omitEmpty, those without a value). The "timestamp" go-plugin adds from
// a plugin's own line is dropped too: the line already has the daemon's
// time, and one time per line is enough.
func zapFields(args []any, sh *shared) []zap.Field {
	reserved, known := sh.reserved, sh.known
	if len(args) == 0 {
		return nil
	}
	if len(args)%2 == 1 {
		last := args[len(args)-1]
		args = append(args[:len(args)-1:len(args)-1], hclog.MissingKey, last)
		if st, ok := last.(hclog.CapturedStacktrace); ok {
			args[len(args)-2], args[len(args)-1] = "stacktrace", string(st)
		}
	}
	fields := make([]zap.Field, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		if key == "timestamp" {
			continue
		}
		if sh.omitEmpty && (args[i+1] == nil || args[i+1] == "") {
			continue
		}
		if slices.Contains(reserved, key) {
			if v, ok := known[key]; ok && v == fmt.Sprint(args[i+1]) {
				continue
			}
			key = "hclog_" + key
		}
		switch v := args[i+1].(type) {
		case hclog.Format:
			if format, ok := firstString(v); ok {
				fields = append(fields, zap.String(key, fmt.Sprintf(format, v[1:]...)))
			} else {
				fields = append(fields, zap.String(key, fmt.Sprint(v...)))
			}
		case hclog.Hex:
			fields = append(fields, zap.String(key, fmt.Sprintf("0x%x", int(v))))
		case hclog.Octal:
			fields = append(fields, zap.String(key, fmt.Sprintf("0%o", int(v))))
		case hclog.Binary:
			fields = append(fields, zap.String(key, fmt.Sprintf("0b%b", int(v))))
		case hclog.Quote:
			fields = append(fields, zap.String(key, fmt.Sprintf("%q", string(v))))
		case json.Number:
			fields = append(fields, jsonNumberField(key, v))
		case float64:
			// go-plugin decodes a plugin's JSON numbers as float64: keep
			// whole numbers whole.
			fields = append(fields, jsonNumberField(key, json.Number(strconv.FormatFloat(v, 'f', -1, 64))))
		case error:
			fields = append(fields, zap.NamedError(key, v))
		default:
			fields = append(fields, zap.Any(key, v))
		}
	}
	return fields
}

func firstString(f hclog.Format) (string, bool) {
	if len(f) == 0 {
		return "", false
	}
	s, ok := f[0].(string)
	return s, ok
}

// jsonNumberField keeps a number from a plugin's JSON a number.
func jsonNumberField(key string, n json.Number) zap.Field {
	if i, err := n.Int64(); err == nil {
		return zap.Int64(key, i)
	}
	if f, err := n.Float64(); err == nil {
		return zap.Float64(key, f)
	}
	return zap.String(key, n.String())
}

// Trace implements hclog.Logger.
func (l *hclogZap) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (l *hclogZap) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (l *hclogZap) Info(msg string, args ...any) { l.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (l *hclogZap) Warn(msg string, args ...any) { l.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (l *hclogZap) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

// IsTrace implements hclog.Logger.
func (l *hclogZap) IsTrace() bool { return l.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (l *hclogZap) IsDebug() bool { return l.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (l *hclogZap) IsInfo() bool { return l.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (l *hclogZap) IsWarn() bool { return l.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (l *hclogZap) IsError() bool { return l.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (l *hclogZap) ImpliedArgs() []any { return append([]any(nil), l.implied...) }

// With implements hclog.Logger.
func (l *hclogZap) With(args ...any) hclog.Logger {
	implied := append(append([]any(nil), l.implied...), args...)
	return newHCLogger(l.base, l.name, implied, l.shared)
}

// Name implements hclog.Logger.
func (l *hclogZap) Name() string { return l.name }

// Named implements hclog.Logger.
func (l *hclogZap) Named(name string) hclog.Logger {
	if l.name != "" {
		name = l.name + "." + name
	}
	return newHCLogger(l.base, name, l.implied, l.shared)
}

// ResetNamed implements hclog.Logger.
func (l *hclogZap) ResetNamed(name string) hclog.Logger {
	return newHCLogger(l.base, name, l.implied, l.shared)
}

// SetLevel implements hclog.Logger. It can only make this logger (and the
// ones derived from it) quieter than the zap core; hclog.NoLevel restores
// the core's level.
func (l *hclogZap) SetLevel(level hclog.Level) { l.shared.level.Store(int32(level)) }

// GetLevel implements hclog.Logger.
func (l *hclogZap) GetLevel() hclog.Level {
	for _, lvl := range []hclog.Level{hclog.Trace, hclog.Info, hclog.Warn, hclog.Error} {
		if l.enabled(lvl) {
			return lvl
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (l *hclogZap) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: each line written becomes a
// message, at opts.ForceLevel, at the level its [LEVEL] prefix names when
// opts.InferLevels is set, or else at Info.
func (l *hclogZap) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	return &stdWriter{l: l, opts: *opts}
}

// stdWriter is a log.Logger's output feeding an hclogZap.
type stdWriter struct {
	l    *hclogZap
	opts hclog.StandardLoggerOptions
}

// Write implements io.Writer.
func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte{'\n'}) {
		msg := strings.TrimSpace(string(line))
		if msg == "" {
			continue
		}
		level := hclog.Info
		switch {
		case w.opts.ForceLevel != hclog.NoLevel:
			level = w.opts.ForceLevel
		case w.opts.InferLevels || w.opts.InferLevelsWithTimestamp:
			if w.opts.InferLevelsWithTimestamp {
				msg = trimStdTimestamp(msg)
			}
			level, msg = inferLevel(msg)
		}
		w.l.Log(level, msg)
	}
	return len(p), nil
}

// trimStdTimestamp removes the "2006/01/02 15:04:05[.000000] " prefix that
// log.Logger's standard flags print.
func trimStdTimestamp(msg string) string {
	const layout = "0000/00/00 00:00:00"
	if len(msg) < len(layout)+1 {
		return msg
	}
	for i := 0; i < len(layout); i++ {
		if c := msg[i]; (layout[i] == '0') != (c >= '0' && c <= '9') || (layout[i] != '0' && c != layout[i]) {
			return msg
		}
	}
	rest := msg[len(layout):]
	if strings.HasPrefix(rest, ".") {
		rest = strings.TrimLeft(rest[1:], "0123456789")
	}
	if !strings.HasPrefix(rest, " ") {
		return msg
	}
	return strings.TrimSpace(rest)
}

// inferLevel reads a [TRACE]/[DEBUG]/[INFO]/[WARN]/[ERR]/[ERROR] prefix.
func inferLevel(msg string) (hclog.Level, string) {
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(msg, p.prefix); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, msg
}
