// Command dirsync is the operator CLI of dirsyncd.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dirsync/dirsync/daemon/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.NewCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		if !errors.Is(err, cli.ErrFailed) {
			fmt.Fprintln(os.Stderr, "dirsync:", err)
		}
		os.Exit(1)
	}
}
