package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// What a person sees at a terminal (format "auto", the default): zap's
// console lines with ISO-8601 times, read here from a real pseudo
// terminal. /dev/null is a character device but no terminal: JSON.
func TestAutoFormatOnATerminal(t *testing.T) {
	ptm, pts := openPTY(t)
	log, err := newLogger("info", "auto", pts)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("sync completed", zap.String("connector", "demo"), zap.String("job", "j1"))
	line, err := bufio.NewReader(ptm).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	line = strings.TrimRight(line, "\r\n") // the terminal turns \n into \r\n
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})\tINFO\tsync completed\t\{"connector": "demo", "job": "j1"\}$`)
	if !re.MatchString(line) {
		t.Errorf("on a terminal: %q; want a console line like 2026-12-04T09:00:00.000Z\\tINFO\\tsync completed\\t{\"connector\": \"demo\", \"job\": \"j1\"}", line)
	}

	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if _, err := newLogger("info", "auto", devNull); err != nil {
		t.Fatal(err)
	}
	if got := autoFormat(devNull); got != "json" {
		t.Errorf("auto on %s: %s; want json", os.DevNull, got)
	}
	if got := autoFormat(pts); got != "console" {
		t.Errorf("auto on a terminal: %s; want console", got)
	}
}

// openPTY opens a pseudo terminal: the master (what a terminal emulator
// reads) and the slave (the process's stderr).
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo terminals here: %v", err)
	}
	t.Cleanup(func() { _ = ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pts.Close() })
	return ptm, pts
}
