package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The daemon's two log shapes: JSON with an RFC 3339 "ts" for the journal
// and log shippers (also what "auto" picks off a terminal), zap's console
// encoding with ISO-8601 times for a person.
func TestLoggerFormats(t *testing.T) {
	tests := []struct {
		format string
		check  func(t *testing.T, line string)
	}{
		{"json", checkJSONLine},
		{"auto", checkJSONLine}, // a file is no terminal
		{"console", func(t *testing.T, line string) {
			re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})\tINFO\tsync completed\t\{"job": "j1"\}$`)
			if !re.MatchString(line) {
				t.Errorf("console line %q", line)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			log, err := newLogger("info", tt.format, f)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("sync completed", zap.String("job", "j1"))
			_ = log.Sync()
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, strings.TrimSuffix(string(b), "\n"))
		})
	}
	if _, err := newLogger("info", "xml", os.Stderr); err == nil || !strings.Contains(err.Error(), `unknown -log-format "xml"`) {
		t.Errorf("err = %v", err)
	}
}

func checkJSONLine(t *testing.T, line string) {
	t.Helper()
	var e struct {
		TS  string `json:"ts"`
		Msg string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.TS); err != nil || e.Msg != "sync completed" {
		t.Errorf("ts %q (%v), msg %q", e.TS, err, e.Msg)
	}
}
