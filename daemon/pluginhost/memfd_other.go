//go:build !linux

package pluginhost

import (
	"errors"
	"os"
)

const execImagePath = ""

// errNoMemfd: only Linux can run a verified in-memory copy of a binary.
var errNoMemfd = errors.New("memfd exec exists only on Linux")

func newMemfd(string) (*os.File, error) { return nil, errNoMemfd }

func seal(f *os.File) (*os.File, error) {
	_ = f.Close()
	return nil, errNoMemfd
}
