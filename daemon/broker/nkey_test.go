package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestLoadOrCreateNkey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string // "" : no file
		mode    os.FileMode
		wantPub string // "" : any (a new key)
		wantErr string
	}{
		{name: "created on first start"},
		{name: "existing 0600", content: string(seed) + "\n", mode: 0o600, wantPub: pub},
		{name: "existing 0400", content: string(seed), mode: 0o400, wantPub: pub},
		{name: "readable by all", content: string(seed), mode: 0o644,
			wantErr: "is accessible by other users (mode 0644): anyone who read it can use the embedded NATS server; run `chmod 600 "},
		{name: "readable by group", content: string(seed), mode: 0o640, wantErr: "(mode 0640)"},
		{name: "writable by others", content: string(seed), mode: 0o602, wantErr: "(mode 0602)"},
		{name: "not a seed", content: "hello\n", mode: 0o600, wantErr: "is not a user nkey seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), NkeyFileName)
			if tt.content != "" {
				if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			gotSeed, gotPub, err := loadOrCreateNkey(file)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), file) {
					t.Fatalf("err = %v; want %q naming %s", err, tt.wantErr, file)
				}
				if strings.Contains(err.Error(), string(seed)) {
					t.Fatalf("the error quotes the seed: %v", err)
				}
				// Refused, not repaired behind the admin's back.
				if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != tt.mode {
					t.Errorf("the file's mode changed to %v (%v); want it left at %04o", fi.Mode().Perm(), err, tt.mode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPub != "" && gotPub != tt.wantPub {
				t.Errorf("public key %s; want %s", gotPub, tt.wantPub)
			}
			fi, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			if tt.content == "" && fi.Mode().Perm() != 0o600 {
				t.Errorf("created with mode %04o; want 0600", fi.Mode().Perm())
			}
			// The same key on the next start.
			again, againPub, err := loadOrCreateNkey(file)
			if err != nil || againPub != gotPub || string(again) != string(gotSeed) {
				t.Errorf("second load: %s, %v; want the same key %s", againPub, err, gotPub)
			}
		})
	}
}
