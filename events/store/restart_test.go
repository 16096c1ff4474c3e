package store_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events/store"
)

// An append under way when the NATS server restarts waits for it and
// resends what was not acknowledged: every event is stored exactly once,
// and the append succeeds.
func TestAppendSurvivesServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	var mu sync.Mutex
	var srv *server.Server
	start := func() {
		o := opts
		s, err := server.NewServer(&o)
		if err != nil {
			t.Error(err)
			return
		}
		go s.Start()
		if !s.ReadyForConnections(30 * time.Second) {
			t.Error("nats-server not ready")
		}
		mu.Lock()
		srv = s
		mu.Unlock()
	}
	start()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		srv.Shutdown()
	})

	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
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
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				s := srv
				mu.Unlock()
				s.Shutdown()
				s.WaitForShutdown()
				time.Sleep(500 * time.Millisecond)
				start()
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
