package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/internal/testenv"
)

// The cluster fixture is a real three-node cluster of a recent enough
// nats-server: an R3 stream keeps every write when its leader is killed,
// when leadership moves and when its leader stops, and a restarted node
// catches up.
func TestClusterSurvivesLeaderLoss(t *testing.T) {
	start := time.Now()
	c := testenv.StartCluster(t, 3)
	t.Logf("cluster ready in %s", time.Since(start).Round(time.Millisecond))
	nc, js := c.Connect(t)
	// The point of the fixture: the distribution's 2.9 has no atomic
	// batches.
	var major, minor int
	if _, err := fmt.Sscanf(nc.ConnectedServerVersion(), "%d.%d", &major, &minor); err != nil || major < 2 || major == 2 && minor < 12 {
		t.Fatalf("nats-server %s (%v), want 2.12 or later", nc.ConnectedServerVersion(), err)
	}

	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	// Each message is retried until acknowledged (no leader for a
	// while); its ID makes a retry of a write that went through a
	// duplicate the stream drops, so that the count is exact.
	next := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			id := fmt.Sprintf("m%d", next)
			testenv.Eventually(t, 30*time.Second, func() error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				_, err := js.Publish(ctx, "t."+id, []byte(id), jetstream.WithMsgID(id))
				return err
			})
			next++
		}
	}
	publish(10)

	leader := c.StreamLeader(t, "T")
	leader.Kill()
	killed := time.Now()
	if now := c.StreamLeader(t, "T"); now == leader {
		t.Fatalf("the killed node %s still leads", leader.Name)
	} else {
		t.Logf("%s killed, %s leads after %s", leader.Name, now.Name, time.Since(killed).Round(time.Millisecond))
	}
	publish(10)

	restarted := time.Now()
	leader.Start()
	c.WaitJetStream(t)
	c.WaitStreamCurrent(t, "T")
	t.Logf("%s back and current after %s", leader.Name, time.Since(restarted).Round(time.Millisecond))

	before := c.StreamLeader(t, "T")
	stepped := time.Now()
	c.StepDownStream(t, "T")
	after := c.StreamLeader(t, "T")
	if after == before {
		t.Fatalf("%s still leads after stepping down", before.Name)
	}
	t.Logf("%s stepped down, %s leads after %s", before.Name, after.Name, time.Since(stepped).Round(time.Millisecond))
	publish(10)

	// A clean stop (SIGTERM) hands the leadership over on the way out.
	if after.Pid() == 0 {
		t.Fatalf("%s runs but has no pid", after.Name)
	}
	stopped := time.Now()
	after.Stop()
	if after.Pid() != 0 || after.Running() {
		t.Fatalf("%s still runs after Stop", after.Name)
	}
	t.Logf("%s stopped, %s leads after %s", after.Name, c.StreamLeader(t, "T").Name, time.Since(stopped).Round(time.Millisecond))
	publish(10)
	after.Start()
	c.WaitJetStream(t)

	c.WaitStreamCurrent(t, "T")
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(next) {
		t.Fatalf("%d messages, want %d", info.State.Msgs, next)
	}
	for seq := range uint64(next) {
		m, err := st.GetMsg(ctx, seq+1)
		if err != nil {
			t.Fatalf("message %d: %v", seq+1, err)
		}
		if want := fmt.Sprintf("m%d", seq); string(m.Data) != want {
			t.Fatalf("message %d is %q, want %q", seq+1, m.Data, want)
		}
	}
	t.Logf("all done in %s", time.Since(start).Round(time.Millisecond))
}
