package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// consumerEnv is an embedded server with dirsync's stream and buckets,
// three recipient events and one recipient value, and a connection with
// the consumer credential.
type consumerEnv struct {
	daemon *broker.Broker
	nc     *nats.Conn
	js     jetstream.JetStream
	v      *testenv.Violations
}

func newConsumerEnv(t *testing.T) *consumerEnv {
	t.Helper()
	ctx := context.Background()
	b := testenv.JetStream(t, "")
	if _, err := store.Open(ctx, b.JS, 1); err != nil {
		t.Fatal(err)
	}
	for _, bucket := range projections.Buckets() {
		kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "demo.u1", []byte(`{"id":"demo.u1"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := b.JS.Publish(ctx, fmt.Sprintf("dirsync.recipients.demo.u%d", i), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	v := &testenv.Violations{}
	opt, err := nats.NkeyOptionFromSeed(b.ConsumerNkeyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(b.ClientURL, opt, nats.ErrorHandler(v.Handler))
	if err != nil {
		t.Fatalf("connecting with %s: %v", b.ConsumerNkeyFile, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &consumerEnv{daemon: b, nc: nc, js: js, v: v}
}

// The consumer credential does what a downstream service needs, in every
// way nats.go offers it, without a single permissions violation.
func TestConsumerCredentialReads(t *testing.T) {
	e := newConsumerEnv(t)
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"stream info shows purge and delete denied", func(t *testing.T) {
			st, err := e.js.Stream(ctx, store.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			if c := st.CachedInfo().Config; !c.DenyPurge || !c.DenyDelete {
				t.Errorf("DIRSYNC DenyPurge %v DenyDelete %v; want both", c.DenyPurge, c.DenyDelete)
			}
		}},
		{"own durable pull consumer, fetch and ack", func(t *testing.T) {
			c, err := e.js.CreateOrUpdateConsumer(ctx, store.StreamName, jetstream.ConsumerConfig{
				Durable: "svc-pull", FilterSubject: "dirsync.recipients.>", AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := c.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m := range batch.Messages() {
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatalf("ack: %v", err)
				}
				n++
			}
			if n != 3 {
				t.Fatalf("fetched %d events, want 3 (%v)", n, batch.Error())
			}
			info, err := e.js.Consumer(ctx, store.StreamName, "svc-pull")
			if err != nil {
				t.Fatal(err)
			}
			if i := info.CachedInfo(); i.AckFloor.Stream != 3 || i.NumAckPending != 0 {
				t.Errorf("after 3 acks: ack floor %d, %d pending; want 3, 0", i.AckFloor.Stream, i.NumAckPending)
			}
		}},
		{"ordered consumer", func(t *testing.T) {
			st, err := e.js.Stream(ctx, store.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := c.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range batch.Messages() {
				n++
			}
			if n != 3 {
				t.Errorf("ordered consumer read %d events, want 3 (%v)", n, batch.Error())
			}
		}},
		{"own durable push consumer (nats.go legacy API)", func(t *testing.T) {
			legacy, err := e.nc.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 10)
			sub, err := legacy.Subscribe("dirsync.recipients.>", func(m *nats.Msg) {
				if err := m.AckSync(); err != nil {
					got <- "ack: " + err.Error()
					return
				}
				got <- m.Subject
			}, nats.Durable("svc-push"), nats.ManualAck(), nats.DeliverAll(), nats.EnableFlowControl(), nats.IdleHeartbeat(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				select {
				case s := <-got:
					if want := fmt.Sprintf("dirsync.recipients.demo.u%d", i); s != want {
						t.Fatalf("push delivery %d: %s, want %s", i, s, want)
					}
				case <-time.After(30 * time.Second):
					t.Fatalf("push consumer: %d of 3 events", i)
				}
			}
			// nats.go deletes the durable it created.
			if err := sub.Unsubscribe(); err != nil {
				t.Errorf("unsubscribe: %v", err)
			}
			if _, err := e.js.Consumer(ctx, store.StreamName, "svc-push"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Errorf("durable after unsubscribe: %v; want it deleted", err)
			}
		}},
		{"direct get of an event", func(t *testing.T) {
			st, err := e.js.Stream(ctx, store.StreamName)
			if err != nil {
				t.Fatal(err)
			}
			m, err := st.GetMsg(ctx, 2)
			if err != nil || m.Subject != "dirsync.recipients.demo.u1" {
				t.Errorf("get message 2: %v %v", m, err)
			}
			if _, err := st.GetLastMsgForSubject(ctx, "dirsync.recipients.demo.u2"); err != nil {
				t.Errorf("last message for a subject: %v", err)
			}
		}},
		{"KV get, keys, watch and stop", func(t *testing.T) {
			kv, err := e.js.KeyValue(ctx, projections.BucketRecipients)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := kv.Get(ctx, "demo.u1"); err != nil || string(v.Value()) != `{"id":"demo.u1"}` {
				t.Fatalf("get: %v %v", v, err)
			}
			if keys, err := kv.Keys(ctx); err != nil || len(keys) != 1 {
				t.Fatalf("keys: %v %v", keys, err)
			}
			w, err := kv.WatchAll(ctx)
			if err != nil {
				t.Fatal(err)
			}
			next := func() jetstream.KeyValueEntry {
				select {
				case u := <-w.Updates():
					return u
				case <-time.After(30 * time.Second):
					t.Fatal("watch: no update")
					return nil
				}
			}
			if u := next(); u == nil || u.Key() != "demo.u1" {
				t.Fatalf("watch: first update %v, want demo.u1", u)
			}
			if u := next(); u != nil {
				t.Fatalf("watch: %v before the end of the initial values", u)
			}
			// A change the daemon makes reaches the watcher.
			dkv, err := e.daemon.JS.KeyValue(ctx, projections.BucketRecipients)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dkv.Put(ctx, "demo.u2", []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			if u := next(); u == nil || u.Key() != "demo.u2" {
				t.Fatalf("watch: update %v, want demo.u2", u)
			}
			if err := w.Stop(); err != nil {
				t.Errorf("stopping the watcher (deletes its consumer): %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
	e.nc.Flush()
	if v := e.v.All(); len(v) > 0 {
		t.Errorf("permissions violations while reading: %v", v)
	}
}

// errNoReply is what a core publish or subscribe returns in refused: the
// server answers neither, so the violation is the whole answer.
var errNoReply = errors.New("no reply to a core publish or subscribe")

// core runs a core publish or subscribe and flushes it to the server.
func core(nc *nats.Conn, op func() error) error {
	if err := op(); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	return errNoReply
}

// The consumer credential can change nothing: every write, purge and
// delete is refused by the server, and the stream, buckets and consumers
// are intact afterwards.
func TestConsumerCredentialRefused(t *testing.T) {
	e := newConsumerEnv(t)
	ctx := context.Background()
	own, err := e.js.CreateOrUpdateConsumer(ctx, store.StreamName, jetstream.ConsumerConfig{Durable: "svc", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.js.KeyValue(ctx, projections.BucketRecipients)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.js.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, subject string
		op            func(context.Context) error
	}{
		{"publish an event", "dirsync.recipients.demo.forged", func(context.Context) error {
			return core(e.nc, func() error { return e.nc.Publish("dirsync.recipients.demo.forged", []byte(`{}`)) })
		}},
		{"publish an event through JetStream", "dirsync.sync.demo.forged", func(ctx context.Context) error {
			_, err := e.js.Publish(ctx, "dirsync.sync.demo.forged", []byte(`{}`))
			return err
		}},
		{"KV put", "$KV.dirsync_recipients.demo.put", func(ctx context.Context) error {
			_, err := kv.Put(ctx, "demo.put", []byte(`{}`))
			return err
		}},
		{"KV delete", "$KV.dirsync_recipients.demo.u1", func(ctx context.Context) error {
			return kv.Delete(ctx, "demo.u1")
		}},
		{"KV purge of a key", "$KV.dirsync_recipients.demo.purge", func(ctx context.Context) error {
			return kv.Purge(ctx, "demo.purge")
		}},
		{"stream purge", "$JS.API.STREAM.PURGE.DIRSYNC", func(ctx context.Context) error {
			return st.Purge(ctx)
		}},
		{"message delete", "$JS.API.STREAM.MSG.DELETE.DIRSYNC", func(ctx context.Context) error {
			return st.DeleteMsg(ctx, 1)
		}},
		{"stream delete", "$JS.API.STREAM.DELETE.DIRSYNC", func(ctx context.Context) error {
			return e.js.DeleteStream(ctx, store.StreamName)
		}},
		{"stream update", "$JS.API.STREAM.UPDATE.DIRSYNC", func(ctx context.Context) error {
			c := store.StreamConfig(1)
			c.MaxMsgs = 1
			_, err := e.js.UpdateStream(ctx, c)
			return err
		}},
		{"stream create", "$JS.API.STREAM.CREATE.OTHER", func(ctx context.Context) error {
			_, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
			return err
		}},
		{"bucket delete", "$JS.API.STREAM.DELETE.KV_dirsync_recipients", func(ctx context.Context) error {
			return e.js.DeleteKeyValue(ctx, projections.BucketRecipients)
		}},
		{"bucket create", "$JS.API.STREAM.CREATE.KV_other", func(ctx context.Context) error {
			_, err := e.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "other"})
			return err
		}},
		{"consumer list (names other clients' deliver subjects)", "$JS.API.CONSUMER.LIST.DIRSYNC", func(ctx context.Context) error {
			l := st.ListConsumers(ctx)
			for range l.Info() {
			}
			return l.Err()
		}},
		{"subscribe to events without a consumer", "dirsync.>", func(context.Context) error {
			return core(e.nc, func() error { _, err := e.nc.SubscribeSync("dirsync.>"); return err })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testenv.Refused(t, e.v, tt.subject, tt.op) })
	}

	info, err := e.daemon.JS.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if s := info.CachedInfo().State; s.Msgs != 3 || s.FirstSeq != 1 {
		t.Errorf("DIRSYNC after the refusals: %d messages from %d; want the 3 from 1", s.Msgs, s.FirstSeq)
	}
	if c := info.CachedInfo().Config; c.MaxMsgs > 0 {
		t.Errorf("DIRSYNC config changed: max msgs %d", c.MaxMsgs)
	}
	dkv, err := e.daemon.JS.KeyValue(ctx, projections.BucketRecipients)
	if err != nil {
		t.Fatalf("bucket after the refusals: %v", err)
	}
	if keys, err := dkv.Keys(ctx); err != nil || strings.Join(keys, ",") != "demo.u1" {
		t.Errorf("recipients bucket after the refusals: %v %v; want demo.u1 alone", keys, err)
	}
	if _, err := e.daemon.JS.Stream(ctx, "OTHER"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream OTHER: %v; want not found", err)
	}
	if _, err := own.Info(ctx); err != nil {
		t.Errorf("the consumer's own durable after a refused delete: %v", err)
	}
}

// NATS lets the consumer credential create a push consumer whose deliver
// subject is one of dirsync's own (a KV stream's values delivered to
// dirsync.recipients.…, events delivered to $KV.…), and the server would
// then publish there itself, past the credential's permissions. It
// delivers only to interest, though, and the streams' own subscriptions
// are none: the consumer stays unbound and nothing reaches the stream,
// because the credential cannot subscribe there to create interest. A
// control consumer delivering to the credential's inbox binds at once, so
// an unbound consumer here means no interest, not a slow server.
func TestConsumerPushIntoDirsyncSubjects(t *testing.T) {
	e := newConsumerEnv(t)
	ctx := context.Background()
	if _, err := e.nc.SubscribeSync("_INBOX.control"); err != nil {
		t.Fatal(err)
	}
	control, err := e.js.CreateOrUpdateConsumer(ctx, store.StreamName, jetstream.ConsumerConfig{Name: "control", DeliverSubject: "_INBOX.control"})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if i, err := control.Info(ctx); err != nil || !i.PushBound {
			return fmt.Errorf("control push consumer not bound: %v", err)
		}
		return nil
	})
	tests := []struct{ stream, deliver string }{
		{"KV_" + projections.BucketRecipients, "dirsync.recipients.demo.forged"},
		{store.StreamName, "$KV." + projections.BucketRecipients + ".demo.forged"},
	}
	// The daemon's own replies arrive where the credential cannot
	// subscribe, so it cannot learn them as targets either.
	if in := e.daemon.Conn.NewRespInbox(); !strings.HasPrefix(in, broker.DaemonInboxPrefix+".") {
		t.Errorf("the daemon's reply inbox %s is not under %s", in, broker.DaemonInboxPrefix)
	}
	for _, tt := range tests {
		t.Run(tt.stream+" to "+tt.deliver, func(t *testing.T) {
			testenv.Refused(t, e.v, tt.deliver, func(context.Context) error {
				return core(e.nc, func() error { _, err := e.nc.SubscribeSync(tt.deliver); return err })
			})
			c, err := e.js.CreateOrUpdateConsumer(ctx, tt.stream, jetstream.ConsumerConfig{Name: "aimed", DeliverSubject: tt.deliver})
			if err != nil {
				return // refused by the server: better still
			}
			i, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i.PushBound || i.Delivered.Consumer != 0 {
				t.Errorf("push consumer on %s delivering to %s: bound %v, %d delivered; want unbound, none",
					tt.stream, tt.deliver, i.PushBound, i.Delivered.Consumer)
			}
		})
	}
	st, err := e.daemon.JS.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("DIRSYNC holds %d messages; want the 3 published", n)
	}
	kv, err := e.daemon.JS.KeyValue(ctx, projections.BucketRecipients)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.Keys(ctx); err != nil || strings.Join(keys, ",") != "demo.u1" {
		t.Errorf("recipients bucket: %v %v; want demo.u1 alone", keys, err)
	}
}
