package broker

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/projections"
)

// ConsumerNkeyFileName is the read-only credential the daemon writes (mode
// 0600) beside NkeyFileName for downstream services of the embedded
// server: it may read the event stream and the read models, make its own
// consumers on them, and nothing else (see ConsumerPermissions). Give this
// file, never NkeyFileName, to anything that is not dirsyncd.
const ConsumerNkeyFileName = "nats-consumer.nk"

// ConsumerStreams are the streams a downstream service may read: the event
// log and the KV buckets' streams.
func ConsumerStreams() []string {
	out := []string{store.StreamName}
	for _, b := range projections.Buckets() {
		out = append(out, "KV_"+b)
	}
	return out
}

// ConsumerPermissions is what the consumer credential may do, as NATS
// subject permissions: JetStream's API is request-reply on subjects that
// name the operation and the stream, so an allow list of read operations
// on dirsync's streams is a read-only JetStream identity. Everything not
// listed is refused by the server with a permissions violation, notably:
// publishing on dirsync.> and $KV.> (events and KV writes), stream
// create, update, delete and purge, message delete, consumer pause and
// reset.
//
// Consumers may be created, updated and deleted on dirsync's streams.
// NATS cannot tell who created a consumer, so denying deletes would not
// protect one service's durable from another, which could still update
// it or ack its messages; and nats.go deletes the consumers it creates
// (an ordered consumer at every Fetch, a KV watcher when it stops), so a
// denied delete would leave them behind and log a violation each time.
// Services sharing this credential are therefore one trust domain for
// their consumers; none of them can change the events or read models.
//
// Two refusals close ways around the list. NATS lets whoever may create a
// consumer choose its push deliver subject, and the server then publishes
// the stream's messages there itself, past this identity's permissions:
// a consumer on a KV stream delivering to dirsync.recipients.… would be
// stored in DIRSYNC by its stream, once something subscribes to that
// subject (the server delivers only to interest). So the consumer
// identity may subscribe only under _INBOX., never to dirsync.> or $KV.>,
// and may not list consumers (CONSUMER.NAMES, CONSUMER.LIST), whose
// configurations name other clients' deliver subjects; the daemon's own
// inboxes are under DaemonInboxPrefix, which it cannot subscribe to.
//
// The same list, as a nats-server configuration block, is in
// docs/events.md for an external NATS deployment.
func ConsumerPermissions() *server.Permissions {
	pub := []string{
		"$JS.API.INFO",         // JetStream account info
		"$SYS.REQ.USER.INFO",   // the caller's own user and permissions (nats account info)
		"$JS.API.STREAM.NAMES", // find a stream by subject (nats.go's legacy Subscribe)
		"$JS.API.STREAM.LIST",
	}
	for _, s := range ConsumerStreams() {
		pub = append(pub,
			"$JS.API.STREAM.INFO."+s,
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>", // last message by subject: KV Get
			// Create (and update) a consumer: legacy ephemeral, named,
			// named with a filter subject, legacy durable.
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+s+".*",
			"$JS.API.CONSUMER.INFO."+s+".*",
			"$JS.API.CONSUMER.DELETE."+s+".*",
			"$JS.API.CONSUMER.MSG.NEXT."+s+".*", // pull
			// Acks and push flow-control replies, in the v1 form
			// ($JS.ACK.<stream>.<consumer>.…) and the v2 form
			// ($JS.ACK.<domain>.<account hash>.<stream>.…).
			"$JS.ACK."+s+".>",
			"$JS.ACK.*.*."+s+".>",
			"$JS.FC."+s+".>",
			"$JS.FC.*.*."+s+".>",
		)
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub},
		// Replies and push deliveries arrive on inboxes, and only there.
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}
