package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/internal/testenv/dirsyncd"
	"github.com/dirsync/dirsync/projections"
)

// TestSecondDaemonRefused: a second dirsyncd started on a running daemon's
// data directory exits at once, non-zero, naming the first one's PID,
// before it opens anything: the first keeps serving, its job completes,
// its streams stay as they were, and no event comes from the second. Both
// with the first idle and with its job in the middle of reading. A lock
// left by a SIGKILLed daemon then does not block the restart.
func TestSecondDaemonRefused(t *testing.T) {
	listen := testenv.FreeAddr(t)
	f := newFixtureWith(t, fmt.Sprintf("nats { listen = %q }", listen), fixtureOptions{users: 300, groups: 20})
	f.start()
	f.syncJob()

	nc, js := connectJS(t, "nats://"+listen, f.daemonCredential())
	ctx := context.Background()

	for _, running := range []bool{false, true} {
		name := map[bool]string{false: "idle", true: "running"}[running]
		began := time.Now()
		var jobID string
		if running {
			// Slow Graph keeps the job in RETRIEVING while the second
			// daemon comes and goes.
			f.sim.SetFaults(graphsim.Faults{Latency: 200 * time.Millisecond})
			j, err := f.api().Sync(ctx, "demo", api.SyncRequest{Full: true})
			if err != nil {
				t.Fatal(err)
			}
			jobID = j.ID
			f.waitJob(jobID, time.Minute, func(j api.Job) bool { return j.State == events.StateRetrieving })
		}
		// The fixture checkpoints after every event, and a checkpoint
		// replaces its object (the old chunks go): wait until the one for
		// the last event is written, so that the first daemon itself
		// changes nothing while the second comes and goes.
		checkpointSettled(t, js)
		streams := streamStates(t, js)

		var out testenv.LockedBuffer
		second, err := dirsyncd.Start(f.bin, f.config, &out)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-second.Done():
		case <-time.After(time.Minute):
			_ = second.Cmd.Process.Kill()
			t.Fatalf("%s: the second dirsyncd did not exit:\n%s", name, out.String())
		}
		if code := second.Cmd.ProcessState.ExitCode(); code == 0 {
			t.Errorf("%s: the second dirsyncd exited 0; want non-zero", name)
		}
		msg := out.String()
		for _, want := range []string{"already runs on data directory", fmt.Sprintf("pid %d", f.daemon.Cmd.Process.Pid), "stop it first"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: the second dirsyncd's output lacks %q:\n%s", name, want, msg)
			}
		}
		if strings.Contains(msg, "dirsyncd ready") || strings.Contains(msg, "interrupted") {
			t.Errorf("%s: the second dirsyncd went on past the lock:\n%s", name, msg)
		}

		// The first still serves, and nothing it stores was touched: no
		// stream lost, none changed while it was idle.
		f.assertRunning("after a second daemon tried its data directory")
		if _, errOut, code := f.cli("status"); code != 0 {
			t.Fatalf("%s: status after the second daemon: exit %d: %s", name, code, errOut)
		}
		after := streamStates(t, js)
		for s, before := range streams {
			now, ok := after[s]
			switch {
			case !ok:
				t.Errorf("%s: stream %s is gone", name, s)
			case !running && now != before:
				t.Errorf("%s: stream %s changed while the first daemon was idle: %+v, then %+v", name, s, before, now)
			case now.FirstSeq != before.FirstSeq:
				t.Errorf("%s: stream %s lost messages: first sequence %d, then %d", name, s, before.FirstSeq, now.FirstSeq)
			}
		}
		if running {
			f.sim.SetFaults(graphsim.Faults{})
			j := f.waitJob(jobID, 2*time.Minute, final)
			if j.State != events.StateCompleted {
				t.Fatalf("the first daemon's job ended %s %q, want COMPLETED", j.State, j.Reason)
			}
		}
		report(t, faultRow{Case: "second-daemon/" + name, Seed: "-", Fault: "a second dirsyncd started on the data directory",
			AtFault: map[bool]string{false: "idle", true: "RETRIEVING"}[running], Recovery: time.Since(began)})
	}

	// The lock dies with its holder: SIGKILL, then a start that works.
	f.kill()
	f.start()
	f.syncJob()
	nc.Close()
	assertConvergedLog(t, f)
}

// streamState is what a second daemon must not change of a stream.
type streamState struct{ FirstSeq, LastSeq, Msgs uint64 }

// checkpointSettled waits until the read-model checkpoint is written for
// the stream's last event and its object store holds only that
// checkpoint (its chunks and its metadata).
func checkpointSettled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, time.Minute, func() error {
		events, err := js.Stream(ctx, store.StreamName)
		if err != nil {
			return err
		}
		obs, err := js.ObjectStore(ctx, projections.CheckpointBucket)
		if err != nil {
			return err
		}
		// One daemon writes one checkpoint object (its own).
		infos, err := obs.List(ctx)
		if err != nil {
			return err
		}
		if len(infos) != 1 {
			return fmt.Errorf("the checkpoint bucket holds %d objects; want the daemon's one", len(infos))
		}
		info := infos[0]
		bucket, err := js.Stream(ctx, "OBJ_"+projections.CheckpointBucket)
		if err != nil {
			return err
		}
		last := strconv.FormatUint(events.CachedInfo().State.LastSeq, 10)
		if got := info.Metadata["stream-seq"]; got != last {
			return fmt.Errorf("the checkpoint is at event %s, the stream at %s", got, last)
		}
		if n, want := bucket.CachedInfo().State.Msgs, uint64(info.Chunks)+1; n != want {
			return fmt.Errorf("the checkpoint bucket holds %d messages, want the checkpoint's %d chunks and its metadata", n, info.Chunks)
		}
		return nil
	})
}

// streamStates reads every stream's state: DIRSYNC and the KV buckets.
func streamStates(t *testing.T, js jetstream.JetStream) map[string]streamState {
	t.Helper()
	out := map[string]streamState{}
	l := js.ListStreams(context.Background())
	for si := range l.Info() {
		out[si.Config.Name] = streamState{si.State.FirstSeq, si.State.LastSeq, si.State.Msgs}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := out[store.StreamName]; !ok {
		t.Fatalf("no %s stream among %v", store.StreamName, out)
	}
	return out
}
