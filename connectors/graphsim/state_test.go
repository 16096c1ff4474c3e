package graphsim

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// A graphsim restarted on its state file is the same tenant to a client:
// the churned users and groups, the soft-deleted user, the version, and a
// delta link from before the restart, which returns exactly the changes
// made since it, not a resync or the whole tenant.
func TestStateFileKeepsTheTenant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenant.json")
	cfg := Config{Users: 60, Groups: 8, Seed: 7, StateFile: path}
	s1, c1 := startSim(t, cfg)
	if s1.Restored() {
		t.Fatal("Restored() on a first start")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("New wrote no state file: %v", err)
	}
	tok := token(t, s1, c1)
	_, _, userLink := round(t, s1, c1, tok, usersDeltaURL(), 0)
	if _, err := s1.Churn(15, 3); err != nil {
		t.Fatal(err)
	}
	victim := s1.Tenant().Users[5].ID
	if err := s1.DeleteUser(victim, false); err != nil {
		t.Fatal(err)
	}
	// What a client following the link sees without a restart.
	wantItems, _, _ := round(t, s1, c1, tok, userLink, 0)
	if len(wantItems) < 2 {
		t.Fatalf("the churn changed %d users; the test needs some", len(wantItems))
	}
	before, deleted, ver := s1.Tenant(), s1.DeletedUsers(), s1.Version()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	s2, c2 := startSim(t, cfg)
	if !s2.Restored() {
		t.Fatal("the restart generated the tenant instead of loading it")
	}
	if !reflect.DeepEqual(s2.Tenant(), before) {
		t.Error("the restarted tenant differs from the one saved")
	}
	if got := s2.DeletedUsers(); !reflect.DeepEqual(got, deleted) {
		t.Errorf("deleted users %v; want %v", got, deleted)
	}
	if s2.Version() != ver {
		t.Errorf("version %d; want %d", s2.Version(), ver)
	}
	link := strings.Replace(userLink, s1.URL(), s2.URL(), 1)
	gotItems, _, _ := round(t, s2, c2, token(t, s2, c2), link, 0)
	if !reflect.DeepEqual(gotItems, wantItems) {
		t.Errorf("after the restart the delta link returns %d items; before it, %d:\n%v\nwant\n%v", len(gotItems), len(wantItems), gotItems, wantItems)
	}
	if !slices.ContainsFunc(gotItems, func(m map[string]any) bool { return m["id"] == victim }) {
		t.Errorf("the soft-deleted user %s is not in the delta", victim)
	}
}

// A state file for another tenant, or one that is not graphsim's, is
// refused with what to do; never silently replaced.
func TestStateFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenant.json")
	if _, err := New(Config{Users: 10, Groups: 2, Seed: 1, ClientSecret: testSecret, StateFile: path}); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Users: 10, Groups: 2, Seed: 2, ClientSecret: testSecret, StateFile: path})
	if err == nil || !strings.Contains(err.Error(), "holds the tenant generated with -users 10 -groups 2 -seed 1") || !strings.Contains(err.Error(), "delete the file") {
		t.Errorf("another seed: %v", err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{Users: 10, Groups: 2, Seed: 1, ClientSecret: testSecret, StateFile: path})
	if err == nil || !strings.Contains(err.Error(), "is not graphsim's (delete it to generate the tenant afresh)") {
		t.Errorf("a corrupt file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Error("a refused state file was overwritten")
	}
}
