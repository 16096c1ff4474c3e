package service

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// A second lock on a held data directory fails at once, naming the
// holder's PID; once released, the directory can be locked again.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock conflicts between two open files even in one process, as
	// between two daemons.
	_, err = lockDataDir(dir)
	var locked *DataDirLockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second lock: %v, want a DataDirLockedError", err)
	}
	if locked.PID != os.Getpid() || locked.Dir != dir {
		t.Errorf("second lock names pid %d in %s, want pid %d in %s", locked.PID, locked.Dir, os.Getpid(), dir)
	}
	if msg := err.Error(); !strings.Contains(msg, "stop it first") {
		t.Errorf("the error does not say what to do: %s", msg)
	}
	release()
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
