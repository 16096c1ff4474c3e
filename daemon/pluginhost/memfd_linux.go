package pluginhost

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// execImagePath is where a child finds the image passed as its first
// extra file (fd 3): exec of this path runs the memfd's bytes.
const execImagePath = "/proc/self/fd/3"

// newMemfd returns an empty in-memory file, sealable and executable,
// named name (for /proc/<pid>/exe and ls -l /proc/<pid>/fd).
func newMemfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 6.3 know no MFD_EXEC; their memfds are executable.
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:"+name), nil
}

// seal makes f's content final (no write, grow, shrink, nor a change of
// the seals) and returns f reopened read-only, closing f: exec refuses a
// file that any descriptor holds open for writing.
func seal(f *os.File) (*os.File, error) {
	defer func() { _ = f.Close() }()
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		return nil, fmt.Errorf("sealing the memfd: %w", err)
	}
	ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reopening the sealed memfd read-only: %w", err)
	}
	return ro, nil
}
