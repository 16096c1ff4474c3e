package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

// A power failure loses what the OS had not written to disk. With the
// default sync policy (nats { sync = "append" }) that is at most the
// events of a SAVING still under way: every state change, and every
// SAVING before COMPLETED, was fsynced. The test kills dirsyncd in the
// middle of a SAVING, then damages the DIRSYNC stream's last block from
// half-way through the unsynced part to its end, the way a power failure
// leaves a file (cut short, or its size kept with zeros where the data
// never landed, index.db stale or lost). The restarted daemon must keep
// every synced event, mark the cut job FAILED, and converge at the next
// sync with no duplicate recipient.
func TestDurabilityPowerLoss(t *testing.T) {
	tests := []struct {
		name string
		// damage loses the bytes of block from off to its end.
		damage func(t *testing.T, block string, off int64)
	}{
		{name: "tail cut, index.db stale", damage: func(t *testing.T, block string, off int64) {
			if err := os.Truncate(block, off); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "tail zeroed, index.db lost", damage: func(t *testing.T, block string, off int64) {
			fi, err := os.Stat(block)
			if err != nil {
				t.Fatal(err)
			}
			fh, err := os.OpenFile(block, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.WriteAt(make([]byte, fi.Size()-off), off); err != nil {
				t.Fatal(err)
			}
			if err := fh.Close(); err != nil {
				t.Fatal(err)
			}
			// index.db is written now and then and never synced: after a
			// power failure it may be gone, whether or not it existed.
			if err := os.Remove(filepath.Join(filepath.Dir(block), "index.db")); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{users: 6000, groups: 300})
			f.start()
			first := syncThenMove(t, f)
			j, err := f.api().Sync(context.Background(), "demo", api.SyncRequest{})
			if err != nil {
				t.Fatal(err)
			}
			f.waitJob(j.ID, time.Minute, func(j api.Job) bool {
				if events.Final(j.State) {
					t.Fatalf("job ended (%s) before the kill: the tenant is too small to catch its SAVING", j.State)
				}
				return j.State == events.StateSaving && j.Progress != nil && j.Progress.Saved >= store.MaxPending
			})
			f.kill()

			blocks := streamBlocks(t, filepath.Join(f.dir, "data"))
			block := blocks[len(blocks)-1]
			synced := syncedEnd(t, block)
			fi, err := os.Stat(block)
			if err != nil {
				t.Fatal(err)
			}
			if synced == 0 && fi.Size() < 64<<10 && len(blocks) > 1 {
				// The kill came just after the store began a new block:
				// all of it is unsynced, and so is the tail of the block
				// before. The power failure takes both: this one whole,
				// the one before from the cut below.
				t.Logf("%s: %d bytes, none synced: lost whole", filepath.Base(block), fi.Size())
				tt.damage(t, block, 0)
				block = blocks[len(blocks)-2]
				synced = syncedEnd(t, block)
				if fi, err = os.Stat(block); err != nil {
					t.Fatal(err)
				}
			}
			if fi.Size()-synced < 64<<10 {
				t.Fatalf("%s: only %d bytes after the last synced state event: no unsynced SAVING to lose", block, fi.Size()-synced)
			}
			// Half-way through the unsynced part: most likely inside a record.
			cut := synced + (fi.Size()-synced)/2
			t.Logf("%s: %d bytes, the last state event ends at %d; losing %d bytes from %d", filepath.Base(block), fi.Size(), synced, fi.Size()-cut, cut)
			tt.damage(t, block, cut)

			began := time.Now()
			f.start()
			killed := f.waitJob(j.ID, 30*time.Second, final)
			if killed.State != events.StateFailed || !strings.Contains(killed.Reason, "interrupted") {
				t.Fatalf("the job cut by the power failure: %s %q, want FAILED as interrupted", killed.State, killed.Reason)
			}
			var states []string
			for _, h := range killed.History {
				states = append(states, h.State)
			}
			if !slices.Contains(states, events.StateSaving) {
				t.Errorf("the cut job's history %v lost its SAVING: a synced event is gone", states)
			}
			if again, err := f.api().Job(context.Background(), first.ID); err != nil || again.State != events.StateCompleted {
				t.Errorf("the first job after the power failure: %+v, %v; want still COMPLETED", again.State, err)
			}

			var next jobJSON
			f.cliJSON(&next, "sync", "demo", "--wait")
			if next.State != events.StateCompleted {
				t.Fatalf("sync after the power failure: %s %s", next.State, next.Reason)
			}
			recovery := time.Since(began)
			assertDepartments(t, f)
			n := assertConvergedLog(t, f)
			report(t, faultRow{Case: "power-loss/" + tt.name, Seed: "-", Fault: fmt.Sprintf("SIGKILL in SAVING, then %d unsynced bytes of the last block lost", fi.Size()-cut),
				AtFault: fmt.Sprintf("SAVING, %d events saved", store.MaxPending), Recovery: recovery, Events: n})
		})
	}
}

// streamBlocks returns the DIRSYNC stream's message block files, oldest
// first. The append of each state event returns only once it is synced,
// so what follows the last state record is at most the SAVING under way.
func streamBlocks(t *testing.T, dataDir string) []string {
	t.Helper()
	blocks, err := filepath.Glob(filepath.Join(dataDir, "jetstream", "jetstream", "*", "streams", store.StreamName, "msgs", "*.blk"))
	if err != nil || len(blocks) == 0 {
		t.Fatalf("no message block of %s under %s: %v", store.StreamName, dataDir, err)
	}
	index := func(p string) int {
		n, _ := strconv.Atoi(strings.TrimSuffix(filepath.Base(p), ".blk"))
		return n
	}
	sort.Slice(blocks, func(a, b int) bool { return index(blocks[a]) < index(blocks[b]) })
	return blocks
}

// syncedEnd returns where the last sync-state record of a message block
// ends (0: it holds none): what follows was written after the last
// append that fsynced.
func syncedEnd(t *testing.T, last string) int64 {
	t.Helper()
	buf, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// nats-server's record: total length (high bit: has headers), sequence,
	// timestamp, subject length, subject, …, checksum.
	var synced int64
	for off := 0; off+22 <= len(buf); {
		rl := int(binary.LittleEndian.Uint32(buf[off:]) &^ (1 << 31))
		sl := int(binary.LittleEndian.Uint16(buf[off+20:]))
		if rl < 22+sl+8 {
			t.Fatalf("%s: cannot read the record at %d (length %d): the block format is not what this test knows", last, off, rl)
		}
		if off+rl > len(buf) {
			// The kill came while this record was being written: a torn
			// tail, and unsynced, so after the last sync-state record.
			break
		}
		if strings.HasPrefix(string(buf[off+22:off+22+sl]), events.SubjectRoot+".sync.") {
			synced = int64(off + rl)
		}
		off += rl
	}
	return synced
}

// syncThenMove completes a first sync, then moves every user of the
// tenant to another department, so that the next SAVING writes a user
// event and a recipient update for each: several chunks of events.
func syncThenMove(t *testing.T, f *fixture) jobJSON {
	t.Helper()
	var first jobJSON
	f.cliJSON(&first, "sync", "demo", "--wait")
	if first.State != events.StateCompleted {
		t.Fatalf("first sync: %s %s", first.State, first.Reason)
	}
	if err := f.sim.Mutate(func(tn *graphsim.Tenant) {
		for i := range tn.Users {
			tn.Users[i].Department = "Moved " + strconv.Itoa(i%7)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return first
}

// assertDepartments checks, through the CLI, that every recipient carries
// its user's current department: the changes the cut SAVING lost were
// made at the next sync.
func assertDepartments(t *testing.T, f *fixture) {
	t.Helper()
	want := map[string]string{}
	for _, r := range expectedRecipients(f.sim) {
		want[r.ObjectID] = r.Department
	}
	var got []recipientJSON
	f.cliJSON(&got, "recipients", "list")
	wrong := 0
	for _, r := range got {
		if d, ok := want[r.ObjectID]; !ok || d != r.Department {
			wrong++
		}
	}
	if wrong > 0 || len(got) != len(want) {
		t.Errorf("%d recipients of %d (want %d) lack their user's current department", wrong, len(got), len(want))
	}
}
