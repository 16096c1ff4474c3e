package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFileName is the file in the data directory that one dirsyncd holds
// an exclusive flock on for as long as it runs.
const LockFileName = "dirsyncd.lock"

// DataDirLockedError says another process holds the data directory: a
// second dirsyncd must not open the JetStream store, the read models or
// the job log a running one writes (seen: it deleted a KV stream from
// under the first, and wrote a second final state for its job).
type DataDirLockedError struct {
	// Dir is the data directory.
	Dir string
	// PID is the holder's process ID as it wrote it, or 0 when unknown
	// (it has locked the file but not yet written its PID).
	PID int
}

// Error names the directory, the holder and what to do.
func (e *DataDirLockedError) Error() string {
	who := "another dirsyncd"
	if e.PID > 0 {
		who = fmt.Sprintf("another dirsyncd (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s already runs on data directory %s (it holds %s): stop it first (systemctl stop dirsyncd), "+
		"or give this daemon its own daemon { data_dir }", who, e.Dir, filepath.Join(e.Dir, LockFileName))
}

// lockDataDir takes the data directory's exclusive lock, or fails at once
// with a *DataDirLockedError. The lock is a flock(2): the kernel drops it
// when the holder exits however it exits, so a daemon that was SIGKILLed
// or lost its machine never blocks the next start, and no stale-lock
// cleanup is needed. The returned release closes it at a clean stop.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the data directory lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &DataDirLockedError{Dir: dir, PID: lockHolder(path)}
		}
		return nil, fmt.Errorf("locking the data directory %s: %w", path, err)
	}
	// The PID is for the message a second daemon prints; the lock itself
	// is the flock, so a failed write only makes that message vaguer.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		// Emptied first, so no reader takes the PID of a stopped daemon
		// for a live one; closing the file drops the lock.
		_ = f.Truncate(0)
		f.Close()
	}, nil
}

// lockHolder reads the PID the lock's holder wrote, or 0.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
