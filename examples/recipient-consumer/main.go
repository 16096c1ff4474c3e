// Command recipient-consumer is the example downstream service of dirsync:
// it reads recipient events from the DIRSYNC stream through a durable pull
// consumer and prints one line per event:
//
//	<stream-seq> <kind> <email> <recipient id> <syncid>
//
// It acknowledges each message only after its line is written and flushed
// (at-least-once), so a restart with the same -durable resumes after the
// last acknowledged event: nothing is repeated, nothing is skipped.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events"
)

const stream = "DIRSYNC"

// kinds maps the recipient event types this consumer understands to the
// kind it prints.
var kinds = map[string]string{
	events.TypeRecipientCreated:  "created",
	events.TypeRecipientUpdated:  "updated",
	events.TypeRecipientArchived: "archived",
	events.TypeRecipientRestored: "restored",
	events.TypeRecipientRemoved:  "removed",
}

func main() {
	server := flag.String("server", "nats://127.0.0.1:4250", "NATS server URL (the daemon logs it as \"embedded nats-server ready\")")
	nkey := flag.String("nkey", "", "nkey seed file: the read-only ./data/nats-consumer.nk for the embedded server")
	durable := flag.String("durable", "recipient-consumer", "durable consumer name: a restart resumes after the last acknowledged event")
	connector := flag.String("connector", "", "only this connector's recipients (default: all)")
	once := flag.Bool("once", false, "exit when no event arrives for 2s")
	flag.Parse()
	if err := run(*server, *nkey, *durable, *connector, *once); err != nil {
		fmt.Fprintln(os.Stderr, "recipient-consumer:", err)
		os.Exit(1)
	}
}

func run(server, nkey, durable, connector string, once bool) error {
	if connector != "" && strings.ContainsAny(connector, ".*> \t") {
		return fmt.Errorf("-connector %q: not a connector name", connector)
	}
	filter := "dirsync.recipients.>"
	if connector != "" {
		filter = "dirsync.recipients." + connector + ".>"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := []nats.Option{nats.Name("recipient-consumer")}
	if nkey != "" {
		o, err := nats.NkeyOptionFromSeed(nkey)
		if err != nil {
			return fmt.Errorf("nkey %s: %w", nkey, err)
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(server, opts...)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Durable, explicit acks, from the first event of the stream on the
	// first run; later runs resume where the consumer's ack floor is.
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "dirsync example: recipient events",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: filter,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", durable, stream, err)
	}

	out := bufio.NewWriter(os.Stdout)
	wait := time.Second // short, so a signal is noticed promptly
	if once {
		wait = 2 * time.Second
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(wait))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("fetch: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			// A signal does not interrupt a batch: every message fetched is
			// printed and acknowledged, so none waits for redelivery.
			if err := handle(out, m); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if n == 0 && once {
			break
		}
	}
	return nil
}

// handle prints one event and acknowledges it once the line is flushed.
func handle(out *bufio.Writer, m jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("message on %s: %w", m.Subject(), err)
	}
	e, err := events.Decode(m.Data())
	if err != nil {
		// A message that will never decode is not retried.
		fmt.Fprintf(os.Stderr, "skipping seq %d on %s: %v\n", md.Sequence.Stream, m.Subject(), err)
		return m.Term()
	}
	kind, ok := kinds[e.Type]
	if !ok {
		fmt.Fprintf(os.Stderr, "skipping seq %d: event type %s not handled\n", md.Sequence.Stream, e.Type)
		return m.DoubleAck(ctx)
	}
	var ch events.RecipientChange
	if err := e.DecodeData(&ch); err != nil {
		fmt.Fprintf(os.Stderr, "skipping seq %d on %s: %v\n", md.Sequence.Stream, m.Subject(), err)
		return m.Term()
	}
	email := ch.Recipient.Email
	if email == "" {
		email = "-"
	}
	if _, err := fmt.Fprintf(out, "%d %s %s %s %s\n", md.Sequence.Stream, kind, email, ch.Recipient.ID, e.JobID); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
	}
	// DoubleAck waits for the server to confirm, so an exit right after
	// cannot lose the ack and print the event again on the next run.
	return m.DoubleAck(ctx)
}
