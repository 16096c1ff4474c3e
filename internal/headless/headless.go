// Package headless starts Debian's Chromium without a display for the
// console's browser tests, driven over the DevTools protocol by chromedp.
// It is a package of its own, not part of testenv, so that only the tests
// that drive a browser compile chromedp.
package headless

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// PathEnv overrides where Chromium is looked for.
const PathEnv = "DIRSYNC_CHROMIUM"

// DefaultPath is Debian's chromium package's binary.
const DefaultPath = "/usr/bin/chromium"

// Width and Height are the window the console must be usable in: a
// common laptop screen.
const (
	Width  = 1366
	Height = 768
)

// Find returns the Chromium binary to use, or an error saying how to get
// one.
func Find() (string, error) {
	if p := os.Getenv(PathEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", PathEnv, p, err)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultPath); err == nil {
		return DefaultPath, nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", errors.New("no Chromium: install Debian's chromium (apt-get install chromium; scripts/test.sh does where apt works) or set " +
		PathEnv + " to a Chromium or Chrome binary")
}

// Browser starts a headless Chromium for t, in a fresh profile under
// t.TempDir, and returns a chromedp context for one tab; the browser is
// closed when t ends. Without Chromium t is skipped with how to install it.
//
// The flags are the ones that work on a machine with no network beyond
// loopback: without --disable-background-networking and its kin Chromium
// keeps trying to reach Google's hosts. --no-sandbox is needed as root.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path, err := Find()
	if err != nil {
		t.Skip(err.Error())
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(Width, Height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// The console may be served with a test CA the browser does not
		// know; the tests check TLS through Go clients.
		chromedp.Flag("ignore-certificate-errors", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so that a Chromium that cannot start fails
	// here with its own words rather than inside the first step. Not
	// under a timeout: the context of the first Run owns the browser, and
	// its end would close it.
	if err := chromedp.Do(ctx); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}
