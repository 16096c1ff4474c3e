package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
	"github.com/dirsync/dirsync/projections"
)

// A downstream service with the consumer credential (data/nats-consumer.nk)
// reads the event log through its own durable consumer, gets and watches
// the recipients bucket, and is refused every write: publishing events,
// purging the log, deleting a message, KV put and delete, deleting the
// stream or the bucket. The daemon goes on syncing as before, the
// credential is private, and its seed never reaches the daemon's log.
func TestConsumerCredential(t *testing.T) {
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fmt.Sprintf(`nats { listen = %q }`, addr))
	f.start()
	sync1 := f.syncCompleted()

	credFile := filepath.Join(f.dir, "data", broker.ConsumerNkeyFileName)
	if got := mode(t, credFile); got != 0o600 {
		t.Errorf("%s: mode %v; want 0600", credFile, got)
	}
	seed, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(seed), "SU") {
		t.Fatalf("%s does not hold a user nkey seed", credFile)
	}

	v := &testenv.Violations{}
	opt, err := nats.NkeyOptionFromSeed(credFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+addr, opt, nats.ErrorHandler(v.Handler))
	if err != nil {
		t.Fatalf("connecting with %s: %v", credFile, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Reads: the recipient events of the sync through the service's own
	// durable consumer, and the recipients bucket's values.
	recipients := recipientsByID(t, f)
	cons, err := js.CreateOrUpdateConsumer(ctx, store.StreamName, jetstream.ConsumerConfig{
		Durable: "downstream", FilterSubject: "dirsync.recipients.demo.>", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("creating its own durable consumer on %s: %v", store.StreamName, err)
	}
	read := readAll(t, ctx, cons)
	if len(read) != sync1.created || len(read) != len(recipients) {
		t.Errorf("the durable consumer read %d recipient events; the sync created %d recipients, the daemon lists %d",
			len(read), sync1.created, len(recipients))
	}
	kv, err := js.KeyValue(ctx, projections.BucketRecipients)
	if err != nil {
		t.Fatal(err)
	}
	var some string
	for id := range recipients {
		some = id
		break
	}
	if e, err := kv.Get(ctx, projections.RecipientKey("demo", some)); err != nil || !strings.Contains(string(e.Value()), some) {
		t.Errorf("KV get of recipient %s: %v", some, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	if n := watchInitial(t, w); n != len(recipients) {
		t.Errorf("KV watch: %d initial values; the daemon lists %d recipients", n, len(recipients))
	}
	if got := v.All(); len(got) > 0 {
		t.Errorf("permissions violations while reading: %v", got)
	}

	// Writes: every one refused by the server.
	st, err := js.Stream(ctx, store.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	before := st.CachedInfo().State
	key := projections.RecipientKey("demo", some)
	tests := []struct {
		name, subject string
		op            func(context.Context) error
	}{
		{"purge DIRSYNC", "$JS.API.STREAM.PURGE.DIRSYNC", func(ctx context.Context) error { return st.Purge(ctx) }},
		{"delete a message", "$JS.API.STREAM.MSG.DELETE.DIRSYNC", func(ctx context.Context) error { return st.DeleteMsg(ctx, 1) }},
		{"publish an event", "dirsync.recipients.demo.forged", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "dirsync.recipients.demo.forged", []byte(`{}`))
			return err
		}},
		{"KV put", "$KV.dirsync_recipients.demo.forged", func(ctx context.Context) error {
			_, err := kv.Put(ctx, "demo.forged", []byte(`{}`))
			return err
		}},
		{"KV delete", "$KV.dirsync_recipients." + key, func(ctx context.Context) error { return kv.Delete(ctx, key) }},
		{"delete the stream", "$JS.API.STREAM.DELETE.DIRSYNC", func(ctx context.Context) error {
			return js.DeleteStream(ctx, store.StreamName)
		}},
		{"delete the bucket", "$JS.API.STREAM.DELETE.KV_dirsync_recipients", func(ctx context.Context) error {
			return js.DeleteKeyValue(ctx, projections.BucketRecipients)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testenv.Refused(t, v, tt.subject, tt.op) })
	}
	after, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.Msgs != before.Msgs || after.State.FirstSeq != 1 || after.State.LastSeq != before.LastSeq {
		t.Errorf("DIRSYNC after the refusals: messages %d, seq %d..%d; before: %d, 1..%d",
			after.State.Msgs, after.State.FirstSeq, after.State.LastSeq, before.Msgs, before.LastSeq)
	}
	if e, err := kv.Get(ctx, key); err != nil || e.Operation() != jetstream.KeyValuePut {
		t.Errorf("recipient %s after the refused delete: %v %v", key, e, err)
	}

	// The daemon is unaffected: the next sync completes, and the service
	// sees its changes through the same durable consumer and watcher.
	if _, err := f.sim.Churn(10, 1); err != nil {
		t.Fatal(err)
	}
	sync2 := f.syncCompleted()
	if sync2.changes == 0 {
		t.Fatal("the second sync changed no recipient: churn had no effect")
	}
	if read := readAll(t, ctx, cons); len(read) != sync2.changes {
		t.Errorf("after the second sync the durable consumer read %d events; the sync made %d recipient changes", len(read), sync2.changes)
	}
	select {
	case u := <-w.Updates():
		if u == nil || !strings.HasPrefix(u.Key(), "demo.") {
			t.Errorf("KV watch after the second sync: %v", u)
		}
	case <-ctx.Done():
		t.Error("KV watch saw nothing of the second sync")
	}
	if strings.Contains(f.log.String(), strings.TrimSpace(string(seed))) {
		t.Error("the daemon's log carries the consumer credential's seed")
	}

	// A consumer credential others can read stops the daemon at start,
	// naming the file and the fix, without printing the seed.
	if err := f.stop(); err != nil {
		t.Fatalf("stopping dirsyncd: %v", err)
	}
	if err := os.Chmod(credFile, 0o644); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	out, err := exec.CommandContext(runCtx, filepath.Join(f.bin, "dirsyncd"), "--config", f.config).CombinedOutput()
	if err == nil || runCtx.Err() != nil {
		t.Fatalf("dirsyncd with a 0644 %s: %v (want a refusal at start)\n%s", credFile, err, out)
	}
	if !strings.Contains(string(out), credFile+" is accessible by other users (mode 0644)") || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("dirsyncd with a 0644 consumer credential does not name it and the fix:\n%s", out)
	}
	if strings.Contains(string(out), strings.TrimSpace(string(seed))) {
		t.Error("dirsyncd's refusal prints the consumer credential's seed")
	}
	report(t, faultRow{Case: "consumer/read-only", Seed: "-", Fault: "the consumer credential purges DIRSYNC, deletes a message, publishes on dirsync.>, puts and deletes KV, deletes the stream and the bucket; then made 0644",
		AtFault: "refused by the server, stream and bucket unchanged; reads and watches work; 0644 refused at start"})
}

// syncResult is what a completed sync did to recipients.
type syncResult struct{ created, changes int }

// syncCompleted runs a sync of demo, fails the test unless it COMPLETED,
// and returns its recipient counts.
func (f *fixture) syncCompleted() syncResult {
	f.t.Helper()
	var job jobJSON
	f.cliJSON(&job, "sync", "demo", "--wait")
	if job.State != events.StateCompleted {
		f.t.Fatalf("sync: %s %s", job.State, job.Reason)
	}
	var sum events.Summary
	if err := json.Unmarshal(job.Summary, &sum); err != nil {
		f.t.Fatal(err)
	}
	return syncResult{created: sum.RecipientsCreated,
		changes: sum.RecipientsCreated + sum.RecipientsUpdated + sum.RecipientsArchived + sum.RecipientsRestored + sum.RecipientsRemoved}
}

// readAll fetches and acks what the consumer has pending.
func readAll(t *testing.T, ctx context.Context, c jetstream.Consumer) []string {
	t.Helper()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for pending := int(info.NumPending); len(subjects) < pending; {
		batch, err := c.Fetch(pending-len(subjects), jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
			subjects = append(subjects, m.Subject())
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("fetch: %v", err)
		}
	}
	return subjects
}

// watchInitial counts a watcher's initial values, up to the nil that ends
// them.
func watchInitial(t *testing.T, w jetstream.KeyWatcher) int {
	t.Helper()
	n := 0
	for u := range w.Updates() {
		if u == nil {
			return n
		}
		n++
	}
	t.Fatal("KV watch ended before its initial values")
	return n
}
