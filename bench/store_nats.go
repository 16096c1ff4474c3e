package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// storeConnect connects to a daemon's embedded NATS server the way a
// downstream service on the appliance does: over TCP with the user nkey
// seed the daemon writes in its data directory.
func storeConnect(d *Daemon) (*nats.Conn, jetstream.JetStream, error) {
	opt, err := nats.NkeyOptionFromSeed(d.NkeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("nkey %s: %w", d.NkeyFile, err)
	}
	nc, err := nats.Connect(d.NATSURL, opt, nats.Name("dirsync-bench"))
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", d.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// storeMsg is one stored message as read back: what a raw publisher sends
// again.
type storeMsg struct {
	subject string
	msgID   string
	data    []byte
}

// storePublisher publishes messages with JetStream's async API, as
// store.Append does (PublishMsgAsync, Nats-Msg-Id, the client's default
// window of outstanding acks), and counts failures.
type storePublisher struct {
	js     jetstream.JetStream
	failed atomic.Int64
	first  atomic.Value // error
}

func newStorePublisher(nc *nats.Conn) (*storePublisher, error) {
	p := &storePublisher{}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		if p.failed.Add(1) == 1 {
			p.first.Store(fmt.Errorf("publishing on %s: %w", m.Subject, err))
		}
	}))
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

// publish sends one message; it waits (up to a minute) when the window of
// outstanding acks is full instead of failing.
func (p *storePublisher) publish(subject, msgID string, data []byte) error {
	m := &nats.Msg{Subject: subject, Data: data}
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(time.Minute)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := p.js.PublishMsgAsync(m, opts...); err != nil {
		return fmt.Errorf("publishing on %s: %w", subject, err)
	}
	return nil
}

// wait returns once every message published so far is acknowledged (or
// failed), and the first failure.
func (p *storePublisher) wait(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := p.failed.Load(); n > 0 {
		err, _ := p.first.Load().(error)
		return fmt.Errorf("%d publishes failed, the first: %w", n, err)
	}
	return nil
}

// storeReadAll reads a stream from its first message to the last one
// stored when it is called, with an ordered consumer configured as
// store.Follow configures its own (batches of 2048), and calls fn for each
// message. It returns how many it read.
func storeReadAll(ctx context.Context, js jetstream.JetStream, stream string, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) (int, error) {
	return storeReadFrom(ctx, js, stream, 1, fn)
}

// storeReadFrom is storeReadAll from stream sequence from on.
func storeReadFrom(ctx context.Context, js jetstream.JetStream, stream string, from uint64, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) (int, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	if last < max(from, 1) {
		return 0, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	n := 0
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, fmt.Errorf("reading %s: %w", stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return n, err
		}
		n++
		if fn != nil {
			if err := fn(msg, meta); err != nil {
				return n, err
			}
		}
		if meta.Sequence.Stream >= last {
			return n, nil
		}
	}
}

// storeLastSeq is the last sequence of a stream.
func storeLastSeq(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// storeRSSMiB is a process's resident set (VmRSS) in MiB.
func storeRSSMiB(pid int) float64 {
	kib, _ := ProcStatus(pid, "VmRSS")
	return float64(kib) / 1024
}

// storeCPUNanos is the CPU time the threads of pid have run, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike the 10 ms ticks of
// /proc/PID/stat, so a short idle window still reads a figure). A thread
// that exits during a window is not counted; CPUTime cross-checks it.
func storeCPUNanos(pid int) (time.Duration, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("process %d: no threads in /proc", pid)
	}
	var total time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread exited
		}
		var ns int64
		if _, err := fmt.Sscan(strings.Fields(string(b))[0], &ns); err == nil {
			total += time.Duration(ns)
		}
	}
	return total, nil
}

// storeExe is the binary a process runs ("" when unknown).
func storeExe(pid int) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return p
}

// errStoreCheck marks a benchmark whose input turned out not to be what
// it should measure (e.g. a rebuild that did not fold every event).
var errStoreCheck = errors.New("bench check failed")
