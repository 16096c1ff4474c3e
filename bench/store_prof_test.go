package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// These benchmarks take the rebuild scenario apart, in-process, so a
// profile shows what bounds it:
//
//	go test -run '^$' -bench 'Store' -benchtime 3x -cpuprofile cpu.out ./bench/
//	go tool pprof -top bench.test cpu.out
//
// DIRSYNC_BENCH_EVENTS sets the stream length (default 200,000).

func storeBenchEvents(b *testing.B) int {
	n := 200_000
	if v := os.Getenv("DIRSYNC_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// storeConnectURL connects over TCP as storeConnect does.
func storeConnectURL(url, nkeyFile string) (*nats.Conn, jetstream.JetStream, error) {
	return storeConnect(&Daemon{NATSURL: url, NkeyFile: nkeyFile})
}

// BenchmarkStoreApply is the fold alone: events.Decode and State.Apply
// over marshaled events, no NATS.
func BenchmarkStoreApply(b *testing.B) {
	l, err := newStoreLog(storeBenchEvents(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := l.marshal(0, l.n)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s := projections.NewState()
		for i, m := range msgs {
			e, err := events.Decode(m.data)
			if err != nil {
				b.Fatal(err)
			}
			e.Seq = uint64(i + 1)
			_, _ = s.Apply(e)
		}
	}
	b.ReportMetric(float64(l.n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// storeBenchBroker is an embedded server holding the log in DIRSYNC.
func storeBenchBroker(b *testing.B) (*broker.Broker, *store.Store, *storeLog) {
	l, err := newStoreLog(storeBenchEvents(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	br, err := broker.Start(ctx, broker.Options{Listen: "127.0.0.1:0", DataDir: b.TempDir()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	st, err := store.Open(ctx, br.JS, 1)
	if err != nil {
		b.Fatal(err)
	}
	p, err := newStorePublisher(br.Conn)
	if err != nil {
		b.Fatal(err)
	}
	for from := 0; from < l.n; from += 20_000 {
		msgs, err := l.marshal(from, min(l.n, from+20_000))
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := p.publish(m.subject, m.msgID, m.data); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := p.wait(ctx); err != nil {
		b.Fatal(err)
	}
	return br, st, l
}

// BenchmarkStoreRebuild is projections.Rebuild over an in-process
// connection to the embedded server.
func BenchmarkStoreRebuild(b *testing.B) {
	_, st, l := storeBenchBroker(b)
	b.ResetTimer()
	for range b.N {
		s, err := projections.Rebuild(context.Background(), st)
		if err != nil {
			b.Fatal(err)
		}
		if err := rebuildCheck(s, l, uint64(l.n)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(l.n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStoreRawRead is the floor: an ordered consumer reading the
// same stream in-process.
func BenchmarkStoreRawRead(b *testing.B) {
	br, _, l := storeBenchBroker(b)
	b.ResetTimer()
	for range b.N {
		n, err := storeReadAll(context.Background(), br.JS, store.StreamName, nil)
		if err != nil || n != l.n {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(l.n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStoreProjectorReady is what a daemon restart waits for: a new
// Projector replaying the stream and reconciling KV buckets that are
// already current (a first run fills them before the timer starts).
func BenchmarkStoreProjectorReady(b *testing.B) {
	br, st, l := storeBenchBroker(b)
	ready := func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		p, err := projections.New(ctx, br.JS, st, 1, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		select {
		case <-p.Ready():
		case err := <-done:
			b.Fatal(err)
		case <-time.After(10 * time.Minute):
			b.Fatal("not ready")
		}
		cancel()
		<-done
	}
	t0 := time.Now()
	ready()
	b.Logf("first run (empty KV buckets): %.2f s", time.Since(t0).Seconds())
	b.ResetTimer()
	for range b.N {
		ready()
	}
	b.ReportMetric(float64(l.n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkStoreAppend takes the append scenario apart: the events of a
// full sync (the first job of the rebuild log: user, group, membership
// and recipient events) stored by store.Append alone, by store.Append
// while a Projector follows the stream as in the daemon (timed until the
// projector has applied them, as SAVING is), and by raw async publishing
// of the same events marshaled beforehand. Each run uses a fresh server:
// the same Nats-Msg-Ids would be deduplicated.
func BenchmarkStoreAppend(b *testing.B) {
	l, err := newStoreLog(storeBenchEvents(b), 0)
	if err != nil {
		b.Fatal(err)
	}
	job := l.jobs[0]
	evs := make([]events.Event, 0, job.size)
	for i := len(jobStates); i < job.size-1; i++ {
		evs = append(evs, l.eventAt(i))
	}
	fresh := func(b *testing.B) (*broker.Broker, *store.Store) {
		br, err := broker.Start(context.Background(), broker.Options{Listen: "127.0.0.1:0", DataDir: b.TempDir()}, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(br.Close)
		st, err := store.Open(context.Background(), br.JS, 1)
		if err != nil {
			b.Fatal(err)
		}
		return br, st
	}
	ctx := context.Background()
	b.Run("store.Append", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			_, st := fresh(b)
			b.StartTimer()
			if _, err := st.Append(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("store.Append+projector", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			br, st := fresh(b)
			pctx, cancel := context.WithCancel(ctx)
			p, err := projections.New(pctx, br.JS, st, 1, zap.NewNop())
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Run(pctx) }()
			<-p.Ready()
			b.StartTimer()
			seq, err := st.Append(ctx, evs)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.WaitFor(ctx, seq); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cancel()
			<-done
			b.StartTimer()
		}
		b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	msgs := make([]storeMsg, len(evs))
	for i, e := range evs {
		d, err := e.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = storeMsg{subject: e.Subject, msgID: e.ID, data: d}
	}
	raw := func(b *testing.B, tcp bool) {
		for range b.N {
			b.StopTimer()
			br, _ := fresh(b)
			nc := br.Conn
			if tcp {
				var err error
				if nc, _, err = storeConnectURL(br.ClientURL, br.NkeyFile); err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
			}
			p, err := newStorePublisher(nc)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			for _, m := range msgs {
				if err := p.publish(m.subject, m.msgID, m.data); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.wait(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
	}
	// The daemon's own connection is in-process (nats.InProcessServer);
	// downstream services and the bench's floors connect over TCP.
	b.Run("raw", func(b *testing.B) { raw(b, false) })
	b.Run("raw-tcp", func(b *testing.B) { raw(b, true) })
}
