package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/projections"
)

// `dirsync sync` refuses bad one-time options before it sends anything
// (exit non-zero), with the words the API's 400 uses for the same request.
func TestSyncRefusesBadOptions(t *testing.T) {
	h := api.NewServer(oneConnector{}, state{projections.NewState()}, zaptest.NewLogger(t))
	var sent atomic.Int64
	sock := serveSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		h.ServeHTTP(w, r)
	}))
	many := make([]string, 0, 102)
	for i := range 51 {
		many = append(many, "--tag", fmt.Sprintf("t%d", i))
	}
	tests := []struct {
		name string
		args []string
		says string
	}{
		{"51 tags", many, "51 tags: a sync request may carry at most 50"},
		{"bidi override", []string{"--tag", "q4", "--tag", "x\u202Egpj.exe"}, `tag 2 of 2 ("x\u202egpj.exe"): contains U+202E`},
		{"zero width space", []string{"--tag", "q\u200B4"}, "U+200B"},
		{"line separator", []string{"--tag", "a\u2028b"}, "U+2028"},
		{"too long", []string{"--tag", strings.Repeat("x", 65)}, "is 65 characters long; a tag has at most 64"},
		{"empty", []string{"--tag", " "}, "is empty"},
		{"case twins", []string{"--tag", "Q4", "--tag", "q4"}, "only in case"},
		{"tag mode", []string{"--tag-mode", "merge"}, `tagMode "merge": use append or replace`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sent.Load()
			_, err := run(t, append([]string{"--socket", sock, "sync", "demo"}, tt.args...)...)
			if err == nil {
				t.Fatal("dirsync sync accepted the options")
			}
			if !strings.HasPrefix(err.Error(), "invalid sync request: ") || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v\nwant it to say %s", err, tt.says)
			}
			if n := sent.Load() - before; n != 0 {
				t.Errorf("dirsync sent %d requests to the daemon", n)
			}
			// The daemon answers the same request with the same words.
			req := api.SyncRequest{}
			for i := 0; i+1 < len(tt.args); i += 2 {
				switch tt.args[i] {
				case "--tag":
					req.Tags = append(req.Tags, tt.args[i+1])
				case "--tag-mode":
					req.TagMode = tt.args[i+1]
				}
			}
			body, _ := json.Marshal(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/connectors/demo/sync", strings.NewReader(string(body))))
			var e api.Error
			if jerr := json.Unmarshal(rec.Body.Bytes(), &e); jerr != nil || rec.Code != http.StatusBadRequest || e.Error != err.Error() {
				t.Errorf("API: %d %q\n CLI: %q", rec.Code, e.Error, err)
			}
		})
	}
	// Good options go through, duplicates removed.
	if _, err := run(t, "--socket", sock, "sync", "demo", "--tag", "q4", "--tag", " q4 "); err != nil {
		t.Errorf("valid tags: %v", err)
	}
}
