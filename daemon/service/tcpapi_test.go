package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{name: "good, trailing newline", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4\n", mode: 0o600, want: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"},
		{name: "owner read-only", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o400, want: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4"},
		{name: "readable by group", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o640, wantErr: "readable by other users (mode 0640); run `chmod 600"},
		{name: "readable by all", content: "c2VjcmV0LXRva2VuLTEyMzQ1Njc4", mode: 0o644, wantErr: "readable by other users"},
		{name: "too short", content: "q7Zx\n", mode: 0o600, wantErr: "shorter than 16 characters"},
		{name: "two tokens", content: "c2VjcmV0LXRva2Vu MTIzNDU2Nzg5MA==", mode: 0o600, wantErr: "a single token on one line"},
		{name: "empty", content: "", mode: 0o600, wantErr: "shorter than 16"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "token"+string(rune('a'+i)))
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := readToken(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want %q", err, tt.wantErr)
				}
				if tt.content != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
					t.Fatalf("the error quotes the token: %v", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("readToken = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// A systemd credential may look group-readable (ACL mask): allowed.
	cred := t.TempDir()
	p := filepath.Join(cred, "api-token")
	if err := os.WriteFile(p, []byte("c2VjcmV0LXRva2VuLTEyMzQ1Njc4"), 0o440); err != nil {
		t.Fatal(err)
	}
	if _, err := readToken(p); err == nil {
		t.Error("a group-readable token outside $CREDENTIALS_DIRECTORY was accepted")
	}
	t.Setenv("CREDENTIALS_DIRECTORY", cred)
	if _, err := readToken(p); err != nil {
		t.Errorf("credential: %v", err)
	}
	if _, err := readToken(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestReadiness(t *testing.T) {
	r := &readiness{stallFor: 10 * time.Second}
	t0 := time.Unix(1_790_000_000, 0)
	steps := []struct {
		seq, lag uint64
		at       time.Duration
		ready    bool
	}{
		{seq: 10, lag: 0, at: 0, ready: true},
		{seq: 10, lag: 500, at: 2 * time.Second, ready: true},   // behind, but only just
		{seq: 300, lag: 200, at: 9 * time.Second, ready: true},  // catching up
		{seq: 300, lag: 200, at: 18 * time.Second, ready: true}, // 9 s without moving
		{seq: 300, lag: 200, at: 20 * time.Second, ready: false},
		{seq: 500, lag: 0, at: 21 * time.Second, ready: true},
	}
	for i, s := range steps {
		err := r.check(s.seq, s.lag, t0.Add(s.at))
		if (err == nil) != s.ready {
			t.Errorf("step %d (seq %d, lag %d at %s): err = %v; want ready %v", i, s.seq, s.lag, s.at, err, s.ready)
		}
	}
}
