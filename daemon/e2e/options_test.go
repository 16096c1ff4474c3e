package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/internal/testenv"
)

// TestSyncOptionsBounded: a sync request's one-time options are bounded
// at the real daemon's TCP API and in the real CLI. 51 tags, a tag with
// U+202E, a tag of 65 characters and a body with trailing JSON each get a
// 400 that names the tag and the rule (no raw control character in it)
// and create no job; the CLI refuses the same before it sends anything.
// 50 valid tags sync, and three append-mode jobs of 50 new tags each leave
// every recipient with the first 100 tags and the third job's summary
// saying how many were not added.
func TestSyncOptionsBounded(t *testing.T) {
	const token = "OptionsToken-0123456789abcdefghij"
	addr := testenv.FreeAddr(t)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	write(t, tokenFile, token+"\n", 0o600)
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:0" }
api {
  listen     = %q
  token_file = %q
}`, addr, tokenFile))
	f.start()

	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	jobCount := func() int {
		t.Helper()
		code, body := call(http.MethodGet, "/v1/jobs", "")
		var list []api.Job
		if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
			t.Fatalf("GET /v1/jobs: %d %v %s", code, err, body)
		}
		return len(list)
	}
	tags := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%02d", prefix, i)
		}
		return out
	}
	body := func(tags []string) string {
		b, _ := json.Marshal(api.SyncRequest{JobOptions: events.JobOptions{Tags: tags}})
		return string(b)
	}

	bad := []struct {
		name, body string
		says       []string
	}{
		{"51 tags", body(tags("t", 51)), []string{"51 tags", "at most 50"}},
		{"U+202E", body([]string{"q4", "invoice\u202Egpj.exe"}), []string{"tag 2 of 2", `"invoice\u202egpj.exe"`, "U+202E", "bidi"}},
		{"U+200B", body([]string{"q\u200B4"}), []string{"tag 1 of 1", "U+200B", "zero-width"}},
		{"U+2028", body([]string{"a\u2028b"}), []string{"U+2028"}},
		{"too long", body([]string{strings.Repeat("x", 65)}), []string{"tag 1 of 1", "65 characters", "at most 64"}},
		{"trailing JSON", `{"full":true}{"x":1}`, []string{"more JSON follows"}},
	}
	for _, tt := range bad {
		t.Run("API "+tt.name, func(t *testing.T) {
			code, got := call(http.MethodPost, "/v1/connectors/demo/sync", tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", code, got)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(got), &e); err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			for _, part := range tt.says {
				if !strings.Contains(e.Error, part) {
					t.Errorf("error %q does not say %q", e.Error, part)
				}
			}
			if strings.ContainsFunc(got, func(r rune) bool { return !unicode.IsPrint(r) && r != '\n' }) {
				t.Errorf("the answer carries a request's character raw: %q", got)
			}
		})
	}
	if n := jobCount(); n != 0 {
		t.Fatalf("the refused requests made %d jobs", n)
	}

	// The CLI refuses the same requests itself, with the same words.
	cliBad := []struct {
		name string
		args []string
		says string
	}{
		{"51 tags", tagArgs(tags("t", 51)), "invalid sync request: 51 tags: a sync request may carry at most 50"},
		{"U+202E", tagArgs([]string{"invoice\u202Egpj.exe"}), `invalid sync request: tag 1 of 1 ("invoice\u202egpj.exe"): contains U+202E`},
		{"too long", tagArgs([]string{strings.Repeat("x", 65)}), "is 65 characters long; a tag has at most 64"},
	}
	for _, tt := range cliBad {
		t.Run("CLI "+tt.name, func(t *testing.T) {
			out, errOut, code := f.cli(append([]string{"sync", "demo"}, tt.args...)...)
			if code == 0 || !strings.Contains(errOut, tt.says) {
				t.Errorf("dirsync sync: exit %d\n%s%s\nwant it to say %s", code, out, errOut, tt.says)
			}
			if strings.Contains(errOut, "\u202E") {
				t.Errorf("the CLI printed U+202E raw: %q", errOut)
			}
		})
	}
	if n := jobCount(); n != 0 {
		t.Fatalf("the refused CLI requests made %d jobs", n)
	}

	// 50 valid tags sync; two more append jobs of 50 new tags each fill
	// the recipients to 100 tags, and the third says what it left off.
	var jobs []string
	for i, prefix := range []string{"a", "b", "c"} {
		code, got := call(http.MethodPost, "/v1/connectors/demo/sync", body(tags(prefix, events.MaxJobTags)))
		var j api.Job
		if err := json.Unmarshal([]byte(got), &j); code != http.StatusAccepted || err != nil {
			t.Fatalf("job %d with 50 tags: %d %v %s", i+1, code, err, got)
		}
		var done jobJSON
		testenv.Eventually(t, 2*time.Minute, func() error {
			code, got := call(http.MethodGet, "/v1/jobs/"+j.ID, "")
			if err := json.Unmarshal([]byte(got), &done); code != http.StatusOK || err != nil {
				return fmt.Errorf("GET /v1/jobs/%s: %d %v", j.ID, code, err)
			}
			if !events.Final(done.State) {
				return fmt.Errorf("job %s is %s", j.ID, done.State)
			}
			return nil
		})
		if done.State != events.StateCompleted {
			t.Fatalf("job %d with 50 tags: %s %s", i+1, done.State, done.Reason)
		}
		jobs = append(jobs, j.ID)
		var sum events.Summary
		_ = json.Unmarshal(done.Summary, &sum)
		recipients := recipientsByID(t, f)
		warned := slices.ContainsFunc(sum.Warnings, func(w string) bool {
			return strings.Contains(w, fmt.Sprintf("%d recipients reached the 100 tags a recipient keeps: %d tags were not added", len(recipients), 50*len(recipients)))
		})
		if warned != (i == 2) {
			t.Errorf("job %d warnings: %q", i+1, sum.Warnings)
		}
		want := append(tags("a", 50), tags("b", 50)...)[:min(100, 50*(i+1))]
		for id, r := range recipients {
			if !slices.Equal(r.Tags, want) {
				t.Fatalf("after job %d recipient %s has %d tags %v…, want %d", i+1, id, len(r.Tags), r.Tags[:min(3, len(r.Tags))], len(want))
			}
		}
	}
	if n := jobCount(); n != 3 {
		t.Errorf("%d jobs, want the 3 accepted ones %v", n, jobs)
	}
	report(t, faultRow{Case: "api/job-options", Seed: "-", Fault: "sync requests with 51 tags, U+202E, U+200B, U+2028, a 65-character tag, trailing JSON; three 50-tag append jobs",
		AtFault: "400 (CLI: exit 1) and no job; at most 100 tags per recipient, with a warning"})
}

// tagArgs makes --tag flags of tags.
func tagArgs(tags []string) []string {
	var out []string
	for _, t := range tags {
		out = append(out, "--tag", t)
	}
	return out
}
