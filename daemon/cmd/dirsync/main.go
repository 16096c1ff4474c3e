// Command dirsync is the operator CLI of dirsyncd.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/dirsync/dirsync/daemon/cli"
)

func main() {
	// `dirsync recipients list | head`: the reader leaves early, and that
	// is not a failure of the command. With SIGPIPE caught, the write
	// fails with EPIPE (also where SIGPIPE arrives ignored, as under
	// systemd), and the command ends quietly with status 0 instead of
	// dying of the signal (141 under `set -o pipefail`) or printing the
	// write error.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if readerGone(err) {
		os.Exit(0)
	}
	if err != nil {
		if !errors.Is(err, cli.ErrFailed) {
			fmt.Fprintln(os.Stderr, "dirsync:", err)
		}
		os.Exit(1)
	}
}

// readerGone reports whether err is a write to stdout that failed because
// its reader closed the pipe. Only stdout: a broken pipe to the daemon's
// socket is a failure the operator must see.
func readerGone(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Path == os.Stdout.Name() && errors.Is(pe.Err, syscall.EPIPE)
}
