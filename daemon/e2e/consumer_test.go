package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
)

// The example downstream consumer (examples/recipient-consumer) prints
// exactly the recipient events of each sync, in stream order, and its
// durable consumer resumes after the last acknowledged event: no repeat,
// no gap.
func TestExampleConsumer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	f := newFixture(t, fmt.Sprintf(`nats { listen = "127.0.0.1:%d" }`, port))
	f.start()

	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "recipient-consumer")
	build := exec.Command("go", "build", "-o", exe, "./examples/recipient-consumer")
	build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/recipient-consumer: %v\n%s", err, out)
	}
	consume := func() []string {
		t.Helper()
		cmd := exec.Command(exe, "-once", "-server", fmt.Sprintf("nats://127.0.0.1:%d", port),
			"-nkey", filepath.Join(f.dir, "data", broker.ConsumerNkeyFileName))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("recipient-consumer: %v\n%s", err, errb.String())
		}
		if errb.Len() > 0 {
			t.Errorf("recipient-consumer stderr:\n%s", errb.String())
		}
		if out.Len() == 0 {
			return nil
		}
		return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	}
	// syncWant runs a sync and returns its changes as the consumer prints
	// them, in stream order.
	syncWant := func() []string {
		t.Helper()
		var job jobJSON
		f.cliJSON(&job, "sync", "demo", "--wait")
		if job.State != events.StateCompleted {
			t.Fatalf("sync: %s %s", job.State, job.Reason)
		}
		var sum events.Summary
		if err := json.Unmarshal(job.Summary, &sum); err != nil {
			t.Fatal(err)
		}
		var ch api.Changes
		f.cliJSON(&ch, "jobs", "show", job.ID)
		n := sum.RecipientsCreated + sum.RecipientsUpdated + sum.RecipientsArchived + sum.RecipientsRestored + sum.RecipientsRemoved
		if n == 0 || len(ch.Changes) != n {
			t.Fatalf("job %s: %d changes listed, summary counts %d (want > 0)", job.ID, len(ch.Changes), n)
		}
		sort.Slice(ch.Changes, func(i, j int) bool { return ch.Changes[i].Seq < ch.Changes[j].Seq })
		var lines []string
		for _, c := range ch.Changes {
			lines = append(lines, fmt.Sprintf("%d %s %s %s %s", c.Seq, c.Kind, c.Email, c.RecipientID, job.ID))
		}
		return lines
	}
	check := func(run string, got, want []string) {
		t.Helper()
		var last uint64
		seen := map[string]bool{}
		for _, line := range got {
			fields := strings.Fields(line)
			if len(fields) != 5 {
				t.Fatalf("%s: line %q: want 5 fields", run, line)
			}
			seq, err := strconv.ParseUint(fields[0], 10, 64)
			if err != nil || seq <= last {
				t.Fatalf("%s: line %q: stream sequence not increasing after %d", run, line, last)
			}
			last = seq
			if seen[fields[3]+" "+fields[0]] {
				t.Fatalf("%s: duplicate line %q", run, line)
			}
			seen[fields[3]+" "+fields[0]] = true
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: consumer printed %d lines, the job made %d changes\ngot:\n%s\nwant:\n%s",
				run, len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	first := syncWant()
	check("first run", consume(), first)

	if _, err := f.sim.Churn(10, 1); err != nil {
		t.Fatal(err)
	}
	second := syncWant()
	check("second run (same durable)", consume(), second)

	// Nothing new: a third run prints nothing.
	check("third run (no new sync)", consume(), nil)
}
