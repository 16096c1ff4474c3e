package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/events"
)

// Disk is the storage under the stream when dirsyncd runs the NATS server
// itself (daemon/broker's embedded server). An external server's disk is
// out of the daemon's reach: it has none.
type Disk interface {
	// Sync makes every message of stream that the server has acknowledged
	// durable (fsync), per the configured policy; it may do nothing when
	// the server syncs on its own.
	Sync(ctx context.Context, stream string) error
	// Free returns how many bytes JetStream may still store: the smaller
	// of the file system's free space and the room under JetStream's
	// storage limit. bound names the smaller one for an admin and how to
	// make room, e.g. "the free space of the file system under
	// /var/lib/dirsync/jetstream (delete files there or grow it)".
	Free(ctx context.Context) (free int64, bound string, err error)
}

// Headroom is kept free by every append except one of a job's final
// state: a SAVING that would eat into it is refused, so the FAILED that
// follows, and the read-model writes it causes, still fit. It is the
// stream's largest message (MaxMsgSize).
const Headroom = 1 << 20

// ErrStorageFull is wrapped by an append refused for want of space: by
// Append's own check before it writes, or by the server's limits.
var ErrStorageFull = errors.New("JetStream storage is full")

// recordOverhead is what nats-server's file store adds to a message's
// subject, headers and data: length, sequence, timestamp, subject length,
// header length and checksum.
const recordOverhead = 4 + 8 + 8 + 2 + 4 + 8

// recordSize is a message's size in the file store.
func recordSize(m *nats.Msg) int64 {
	h := 0
	for k, vs := range m.Header {
		for _, v := range vs {
			h += len(k) + len(v) + 4 // "k: v\r\n"
		}
	}
	return int64(recordOverhead + len(m.Subject) + len("NATS/1.0\r\n\r\n") + h + len(m.Data))
}

// estimateSamples is how many events estimate marshals: enough to average
// the sizes of a mix, few enough to cost nothing beside the append.
const estimateSamples = 256

// estimate returns about how many bytes evs take in the stream: subjects
// and IDs exactly, the encoded events from an even sample, plus a tenth
// for the sample's error. Marshaling every event twice, or holding them
// all encoded, would cost the large SAVING it guards.
func estimate(evs []events.Event) (int64, error) {
	var fixed int64
	for _, e := range evs {
		fixed += int64(recordOverhead + len(e.Subject) + len("NATS/1.0\r\n\r\n") + len(jetstream.MsgIDHeader) + 4 + len(e.ID))
	}
	step := max(1, len(evs)/estimateSamples)
	var sampled, n int64
	var buf []byte
	for i := 0; i < len(evs); i += step {
		var err error
		if buf, err = evs[i].AppendMarshal(buf[:0]); err != nil {
			return 0, err
		}
		sampled += int64(len(buf))
		n++
	}
	data := sampled * int64(len(evs)) / n
	return fixed + data + data/10, nil
}

// finalStatesOnly reports whether evs are all job final states: they may
// use the Headroom that everything else leaves.
func finalStatesOnly(evs []events.Event) bool {
	for _, e := range evs {
		st, ok := e.Data.(events.SyncState)
		if e.Type != events.TypeSyncState || !ok || !events.Final(st.State) {
			return false
		}
	}
	return true
}

// fits returns an error wrapping ErrStorageFull unless need bytes (n
// events) can be stored with reserve bytes left free; stored of total
// events of the append are stored already. When the space
// cannot be measured it returns nil: the server's own limits still apply,
// and a daemon that stopped storing because statfs or an account lookup
// failed would be worse than one that relies on them.
func (s *Store) fits(ctx context.Context, n int, need, reserve int64, stored, total int) error {
	free, bound, ok := s.space(ctx)
	if !ok || need+reserve <= free {
		return nil
	}
	kept := ""
	if reserve > 0 {
		kept = fmt.Sprintf(", with %s kept free for the job's final state,", Bytes(reserve))
	}
	done := "nothing of this append was stored"
	if stored > 0 {
		done = fmt.Sprintf("%d of its %d events were stored before that, and the next completed sync completes them", stored, total)
	}
	return fmt.Errorf("%w: %d events need about %s%s but only %s more can be stored, bounded by %s; %s. "+
		"Make room, then run the sync again", ErrStorageFull, n, Bytes(need), kept, Bytes(max(free, 0)), bound, done)
}

// space returns the room left for the stream, what bounds it, and whether
// it could be measured: the Disk's free space for an embedded server, the
// account's JetStream limits for an external one.
func (s *Store) space(ctx context.Context) (int64, string, bool) {
	if s.disk != nil {
		free, bound, err := s.disk.Free(ctx)
		return free, bound, err == nil
	}
	// Bounded: while NATS is away the lookup would wait for the caller's
	// whole deadline, and the append's own reconnection logic is the one
	// that should wait.
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := s.js.AccountInfo(actx)
	if err != nil {
		return 0, "", false
	}
	limit, used := info.Limits.MaxStore, int64(info.Store)
	if t, ok := info.Tiers[fmt.Sprintf("R%d", s.replicas)]; ok && t.Limits.MaxStore > 0 {
		limit, used = t.Limits.MaxStore, int64(t.Store)
	}
	if limit <= 0 {
		return 0, "", false
	}
	return limit - used, fmt.Sprintf("the JetStream account's max_storage on the NATS server, %s with %s used (ask its administrator to raise it)",
		Bytes(limit), Bytes(used)), true
}

// storageFullCodes are the JetStream API errors that mean "no room":
// account resources exceeded, insufficient resources, storage resources
// exceeded.
var storageFullCodes = []jetstream.ErrorCode{10002, 10023, 10047}

// storeErr describes a failed publish of m, marking a lack of space with
// ErrStorageFull.
func (s *Store) storeErr(m *nats.Msg, err error) error {
	id := m.Header.Get(jetstream.MsgIDHeader)
	var api *jetstream.APIError
	full := strings.Contains(err.Error(), "no space left")
	if errors.As(err, &api) {
		for _, c := range storageFullCodes {
			full = full || api.ErrorCode == c
		}
	}
	if full {
		remedy := "free space on the disk under data_dir or raise nats { max_store } in plugins.hcl"
		if s.disk == nil {
			remedy = "ask the NATS server's administrator for room (its disk, its JetStream max_file_store or the account's max_storage)"
		}
		return fmt.Errorf("%w: nats-server refused event %s (%w); %s, then run the sync again", ErrStorageFull, id, err, remedy)
	}
	return fmt.Errorf("storing event %s: %w", id, err)
}

// Bytes formats a size for an admin: 1.5 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
