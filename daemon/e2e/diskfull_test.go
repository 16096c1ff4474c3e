package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// diskLeft is what a full disk leaves free in these tests: more than the
// store keeps for a job's final state (store.Headroom), so the jobs' state
// changes still fit, and well under what the SAVING of a department move
// of every user needs (about 3 MB at 2,000 users).
const diskLeft = store.Headroom + 512<<10

// filler takes space away from the daemon's storage until diskLeft is
// left, and gives it back.
type filler interface {
	fill(t *testing.T)
	release(t *testing.T)
}

// When the storage under the data directory is full, a sync that cannot
// save fails with a reason saying so and what to do, storing none of its
// events; the daemon stays up, and once space returns the next sync
// completes and converges. Two ways to fill it: a real small file system
// (tmpfs, when the test may mount one) and JetStream's own limit
// (nats { max_store }), filled by another stream.
func TestDiskFull(t *testing.T) {
	tests := []struct {
		name string
		// natsExtra is added to the nats block.
		natsExtra string
		// setup prepares the data directory before the daemon starts and
		// returns the filler.
		setup func(t *testing.T, f *fixture, natsURL string) filler
		// bound is what the reason must name as the limit.
		bound string
	}{
		{name: "tmpfs", setup: mountTmpfs, bound: "free space of the file system under"},
		{name: "max_store", natsExtra: `max_store = "32MB"`, setup: streamFiller, bound: "max_store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := testenv.FreeAddr(t)
			f := newFixtureWith(t, fmt.Sprintf("nats {\n  listen = %q\n  %s\n}", addr, tt.natsExtra), fixtureOptions{users: 2000, groups: 100})
			fill := tt.setup(t, f, "nats://"+addr)
			f.start()
			syncThenMove(t, f)

			fill.fill(t)
			// Through the API, with a deadline: a daemon whose server hit
			// the full disk may never finish the job.
			j, err := f.api().Sync(context.Background(), "demo", api.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			failed := f.waitJob(j.ID, 3*time.Minute, final)
			if failed.State != events.StateFailed {
				t.Fatalf("sync on a full disk: %s %q; want FAILED", failed.State, failed.Reason)
			}
			for _, want := range []string{"JetStream storage is full", tt.bound, "nothing of this append was stored", "then run the sync again"} {
				if !strings.Contains(failed.Reason, want) {
					t.Errorf("the reason does not say %q: %s", want, failed.Reason)
				}
			}
			// The daemon is up and answers.
			f.assertRunning("on a full disk")
			if _, errOut, code := f.cli("status"); code != 0 {
				t.Errorf("dirsync status on a full disk: exit %d %s", code, errOut)
			}
			if err := f.api().Ready(context.Background()); err != nil {
				t.Errorf("not ready on a full disk: %v", err)
			}
			// Nothing of the failed job was applied.
			if ch, err := f.api().Changes(context.Background(), failed.ID); err != nil || len(ch.Changes) != 0 {
				t.Errorf("the failed job left %d recipient changes (%v); want none", len(ch.Changes), err)
			}

			fill.release(t)
			began := time.Now()
			var next jobJSON
			f.cliJSON(&next, "sync", "demo", "--wait")
			if next.State != events.StateCompleted {
				t.Fatalf("sync once space returned: %s %s", next.State, next.Reason)
			}
			recovery := time.Since(began)
			assertDepartments(t, f)
			n := assertConvergedLog(t, f)
			report(t, faultRow{Case: "disk-full/" + tt.name, Seed: "-", Fault: "no room for the sync's events", AtFault: "SAVING refused: job FAILED, daemon up",
				Recovery: recovery, Events: n})
		})
	}
}

// mountTmpfs mounts a 64 MiB tmpfs as the data directory (root only), and
// fills it with a file.
func mountTmpfs(t *testing.T, f *fixture, _ string) filler {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; the max_store case covers JetStream's limit")
	}
	data := filepath.Join(f.dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); the max_store case covers JetStream's limit", err, bytes.TrimSpace(out))
	}
	// Lazily: the daemon may still run when cleanups start.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})
	return &fileFiller{dir: data}
}

// fileFiller fills a file system with a file.
type fileFiller struct{ dir string }

func (ff *fileFiller) path() string { return filepath.Join(ff.dir, "filler") }

func (ff *fileFiller) fill(t *testing.T) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(ff.dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free <= diskLeft {
		t.Fatalf("only %d bytes free before filling", free)
	}
	fh, err := os.Create(ff.path())
	if err != nil {
		t.Fatal(err)
	}
	// Written, not truncated to size: a sparse file would take no space.
	chunk := make([]byte, 1<<20)
	for left := free - diskLeft; left > 0; left -= int64(len(chunk)) {
		if _, err := fh.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

func (ff *fileFiller) release(t *testing.T) {
	t.Helper()
	if err := os.Remove(ff.path()); err != nil {
		t.Fatal(err)
	}
}

// streamFiller fills JetStream up to its limit with a stream of its own,
// connected as a local service would, with the daemon's nkey.
func streamFiller(t *testing.T, f *fixture, url string) filler {
	return &jsFiller{f: f, url: url}
}

type jsFiller struct {
	f   *fixture
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
}

const fillerStream = "TESTFILLER"

func (jf *jsFiller) fill(t *testing.T) {
	t.Helper()
	jf.nc, jf.js = connectJS(t, jf.url, jf.f.daemonCredential())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := jf.js.CreateStream(ctx, jetstream.StreamConfig{Name: fillerStream, Subjects: []string{"testfiller.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const limit = 32 << 20
	payload := make([]byte, 64<<10)
	for {
		info, err := jf.js.AccountInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		left := limit - int64(info.Store)
		if left <= diskLeft {
			return
		}
		n := min(int64(len(payload)), left-diskLeft)
		if _, err := jf.js.Publish(ctx, "testfiller.x", payload[:n]); err != nil {
			t.Fatalf("filling JetStream (%d bytes left): %v", left, err)
		}
	}
}

func (jf *jsFiller) release(t *testing.T) {
	t.Helper()
	if err := jf.js.DeleteStream(context.Background(), fillerStream); err != nil {
		t.Fatal(err)
	}
}
