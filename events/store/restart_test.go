package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// An append under way when the NATS server restarts waits for it and
// resends what was not acknowledged: every event is stored exactly once,
// and the append succeeds.
func TestAppendSurvivesServerRestart(t *testing.T) {
	ns := testenv.StartNATS(t, "restart")
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(broker.MaxAsyncPending))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}

	const n = 5 * store.MaxPending
	evs := directoryEvents("restart", n, 200)
	var once sync.Once
	restarted := make(chan struct{})
	_, err = st.AppendProgress(ctx, evs, func(stored int) {
		// After the first chunk, the server goes down while the next one
		// is in flight (publishes sent, acknowledgements pending), and
		// comes back a little later.
		once.Do(func() {
			go func() {
				defer close(restarted)
				// The pauses shape the fault, not a check: the first
				// lets the next chunk's publishes leave, the second is
				// the outage. The append must succeed and store each
				// event once however they fall on a given machine.
				time.Sleep(5 * time.Millisecond)
				ns.Stop()
				time.Sleep(500 * time.Millisecond)
				if err := ns.Start(); err != nil {
					t.Error(err)
				}
			}()
		})
	})
	if err != nil {
		t.Fatalf("append across a server restart: %v", err)
	}
	<-restarted
	stream, err := js.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("the stream holds %d events after the restart, want %d: some lost or stored twice", info.State.Msgs, n)
	}
}
