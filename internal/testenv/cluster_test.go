package testenv_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/internal/testenv"
)

// The cluster fixture is a real three-node cluster: an R3 stream keeps
// taking writes when its leader is killed and when leadership moves, and
// a restarted node catches up.
func TestClusterSurvivesLeaderLoss(t *testing.T) {
	c := testenv.StartCluster(t, 3)
	_, js := c.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for i := range n {
			testenv.Eventually(t, 30*time.Second, func() error {
				_, err := js.Publish(ctx, fmt.Sprintf("t.%d", i), []byte("x"))
				return err
			})
		}
	}
	publish(10)
	leader := c.StreamLeader(t, "T")
	leader.Kill()
	publish(10)
	if now := c.StreamLeader(t, "T"); now == leader {
		t.Fatalf("the killed node %s still leads", leader.Name)
	}
	leader.Start()
	c.WaitJetStream(t)
	c.StepDownStream(t, "T")
	publish(10)
	testenv.Eventually(t, 30*time.Second, func() error {
		st, err := js.Stream(ctx, "T")
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 30 {
			return fmt.Errorf("%d messages, want 30", info.State.Msgs)
		}
		return nil
	})
}
