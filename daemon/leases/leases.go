// Package leases decides which dirsyncd replica runs each connector's
// jobs. Every replica campaigns for the configured connectors through a
// JetStream KV bucket: a lease is a key per connector, taken with a
// compare-and-swap Create (or an Update of the replica's own dead
// predecessor), kept by Updates at a third of its TTL, and gone when its
// holder stops renewing it (the bucket's TTL) or lets it go at a clean
// stop. The revision of the write that took the lease is its epoch: it
// only rises, and the holder claims the connector in the event log at
// that epoch (store.Claim), which is what fences a holder that lost its
// lease without knowing it.
package leases

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Bucket is the KV bucket holding the leases and the replicas' presence.
const Bucket = "dirsync_leases"

// DefaultTTL is how long a lease outlives its holder's last renewal.
// Raft elections in a JetStream cluster take seconds: a shorter lease
// would change hands over a leader election alone.
const DefaultTTL = 24 * time.Second

// MinTTL bounds the TTL from below (tests and `make run-cluster` use a
// few seconds to see a failover sooner).
const MinTTL = 3 * time.Second

// Lease is a connector's lease as stored: who holds it, since when, at
// which epoch.
type Lease struct {
	Connector string `json:"connector"`
	// Replica is the holder's name, for operators.
	Replica string `json:"replica"`
	// Identity is the holder's stable identity (host and data
	// directory); Instance tells its processes apart.
	Identity string `json:"identity"`
	Instance string `json:"instance"`
	// Epoch is the KV revision of the write that took the lease.
	Epoch   uint64    `json:"epoch"`
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
}

// settle is how long a starting replica waits for the others' presence
// before it campaigns.
const settle = 500 * time.Millisecond

// Yielder is an optional part of a Handler: whether a held connector
// runs no job now and, if so, a promise to start none until it is
// released, so that a replica with more than its share can hand it to
// one with less without failing a job. A Handler without it has its
// connectors handed over at any time.
type Yielder interface {
	Yield(connector string) bool
}

// Handler hears when this replica takes or loses a connector. Acquired
// runs before any other call about the connector returns; ctx ends when
// the lease is lost or the replica stops. Lost is called once per
// Acquired, after ctx has ended.
type Handler interface {
	Acquired(ctx context.Context, connector string, epoch uint64) error
	Lost(connector string, epoch uint64, cause error)
}

// Options configure a replica's campaign.
type Options struct {
	// Replica is the name operators see; Identity must be unique per
	// replica and stable across its restarts (see Lease).
	Replica, Identity string
	// TTL is the leases' time to live (DefaultTTL when 0).
	TTL time.Duration
	// Replicas is the KV bucket's replica count.
	Replicas int
}

// ErrLost is the cause of a lease this replica no longer holds.
var ErrLost = errors.New("lease lost")

// Leases is one replica's campaign for connectors.
type Leases struct {
	kv       jetstream.KeyValue
	opts     Options
	instance string
	handler  Handler
	log      *zap.Logger
	now      func() time.Time

	mu      sync.Mutex
	wanted  []string
	held    map[string]*held
	view    map[string]Lease    // every lease in the bucket, as last watched
	present map[string]presence // by KV key
	// freeSince is when a wanted connector was first seen free.
	freeSince map[string]time.Time
	// campaignAt is when this replica starts taking free connectors;
	// quiet stops it for good (Quiesce).
	campaignAt time.Time
	quiet      bool
	kick       chan struct{}
	runCtx     context.Context
}

// held is a lease this replica holds.
type held struct {
	lease    Lease
	revision uint64 // of the last write
	renewed  time.Time
	cancel   context.CancelCauseFunc
	ready    chan struct{} // closed once Acquired has returned nil
	done     chan struct{} // closed once Lost has been called
}

// Open creates or updates the bucket and returns a replica's campaign,
// not yet running.
func Open(ctx context.Context, js jetstream.JetStream, opts Options, h Handler, log *zap.Logger) (*Leases, error) {
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < MinTTL {
		return nil, fmt.Errorf("lease TTL %s is shorter than %s", opts.TTL, MinTTL)
	}
	if opts.Identity == "" || opts.Replica == "" {
		return nil, errors.New("leases: a replica needs a name and an identity")
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "dirsync: which replica runs each connector's jobs",
		History:     1,
		TTL:         opts.TTL,
		// Watchers hear of a lease that timed out, so another replica
		// takes it at once rather than at its next look.
		LimitMarkerTTL: opts.TTL,
		Storage:        jetstream.FileStorage,
		Replicas:       max(opts.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", Bucket, err)
	}
	return &Leases{kv: kv, opts: opts, instance: newInstance(), handler: h, log: log, now: time.Now,
		held: map[string]*held{}, view: map[string]Lease{}, present: map[string]presence{}, freeSince: map[string]time.Time{},
		kick: make(chan struct{}, 1)}, nil
}

// TTL returns the leases' time to live.
func (l *Leases) TTL() time.Duration { return l.opts.TTL }

// Instance returns this process's instance ID, as its leases carry it.
func (l *Leases) Instance() string { return l.instance }

// Replica returns this replica's name.
func (l *Leases) Replica() string { return l.opts.Replica }

// Want sets the connectors this replica campaigns for (the configured
// ones). A held connector no longer wanted is let go.
func (l *Leases) Want(connectors []string) {
	l.mu.Lock()
	l.wanted = slices.Sorted(slices.Values(connectors))
	l.mu.Unlock()
	l.poke()
}

func (l *Leases) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Quiesce makes this replica take no more connectors (it still renews
// those it holds until Run ends): a replica that is stopping must not
// take over a connector another one lets go meanwhile.
func (l *Leases) Quiesce() {
	l.mu.Lock()
	l.quiet = true
	l.mu.Unlock()
}

// Holds reports whether this replica holds connector now, and at which
// epoch.
func (l *Leases) Holds(connector string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[connector]
	if !ok {
		return 0, false
	}
	return h.lease.Epoch, true
}

// Fresh reports whether this replica holds connector with a lease
// renewed within two thirds of the TTL: one it may still act on. A
// replica that was paused (or cut off) finds its leases stale on waking,
// before its campaign has noticed them lost.
func (l *Leases) Fresh(connector string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.held[connector]
	return ok && l.now().Sub(h.renewed) < l.opts.TTL*2/3
}

// Holder returns connector's lease as last seen in the bucket; false
// when no replica holds it.
func (l *Leases) Holder(connector string) (Lease, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.view[connector]
	return le, ok
}

// Holders returns every connector's lease as last seen in the bucket,
// by connector.
func (l *Leases) Holders() map[string]Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Lease, len(l.view))
	for c, le := range l.view {
		out[c] = le
	}
	return out
}

// Replicas returns the names of the replicas seen alive, sorted.
func (l *Leases) Replicas() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.present {
		if !slices.Contains(out, p.Replica) {
			out = append(out, p.Replica)
		}
	}
	sort.Strings(out)
	return out
}

// Run campaigns and renews until ctx ends, then lets every held lease go
// (after Lost for each), so another replica takes over at once.
func (l *Leases) Run(ctx context.Context) error {
	w, err := l.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching KV %s: %w", Bucket, err)
	}
	defer func() { _ = w.Stop() }()
	tick := time.NewTicker(l.opts.TTL / 6)
	defer tick.Stop()
	l.mu.Lock()
	l.runCtx = ctx
	// Replicas started together see one another before they campaign,
	// so that they share the connectors from the start.
	l.campaignAt = l.now().Add(settle)
	l.mu.Unlock()
	l.step(ctx)
	settled := time.After(settle)
	for {
		select {
		case <-ctx.Done():
			l.releaseAll()
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("the watch of KV %s ended", Bucket)
			}
			if e != nil && l.observe(e) {
				l.poke()
			}
		case <-settled:
			l.step(ctx)
		case <-l.kick:
			l.step(ctx)
		case <-tick.C:
			l.step(ctx)
		}
	}
}

const (
	leasePrefix    = "connectors."
	presencePrefix = "replicas."
)

// presence is a replica's presence entry: replicas count one another
// to take a fair share of the connectors each.
type presence struct {
	Replica  string `json:"replica"`
	Identity string `json:"identity"`
}

// observe records a watched entry; true when a lease or a replica went.
func (l *Leases) observe(e jetstream.KeyValueEntry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := e.Key()
	gone := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, leasePrefix):
		c := strings.TrimPrefix(key, leasePrefix)
		if gone {
			delete(l.view, c)
			return true
		}
		var le Lease
		if json.Unmarshal(e.Value(), &le) == nil {
			l.view[c] = le
		}
	case strings.HasPrefix(key, presencePrefix):
		if gone {
			delete(l.present, key)
			return true
		}
		var p presence
		if json.Unmarshal(e.Value(), &p) == nil {
			l.present[key] = p
		}
	}
	return false
}

// opTimeout bounds one KV operation: a renewal must not outlast the
// lease it renews.
func (l *Leases) opTimeout() time.Duration { return l.opts.TTL / 6 }

// step renews what this replica holds, lets go of what it no longer
// wants, and campaigns for a fair share of the free connectors.
func (l *Leases) step(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := l.now()
	pkey := presencePrefix + keySafe(l.opts.Identity)
	if b, err := json.Marshal(presence{Replica: l.opts.Replica, Identity: l.opts.Identity}); err == nil {
		octx, cancel := context.WithTimeout(ctx, l.opTimeout())
		_, _ = l.kv.Put(octx, pkey, b)
		cancel()
	}
	l.mu.Lock()
	wanted := slices.Clone(l.wanted)
	var renew []string
	yielder, _ := l.handler.(Yielder)
	for c, h := range l.held {
		// A connector taken for one job (TryAcquire) goes once idle.
		if !slices.Contains(wanted, c) && now.Sub(h.lease.Since) > settle && (yielder == nil || yielder.Yield(c)) {
			l.mu.Unlock()
			l.release(c, errors.New("connector no longer in plugins.hcl"))
			l.mu.Lock()
			continue
		}
		if now.Sub(h.renewed) >= l.opts.TTL/3 {
			renew = append(renew, c)
		}
	}
	l.mu.Unlock()
	for _, c := range renew {
		l.renew(ctx, c, now)
	}

	l.mu.Lock()
	if now.Before(l.campaignAt) || l.quiet {
		l.mu.Unlock()
		return
	}
	replicas := max(1, len(l.present))
	fair := (len(wanted) + replicas - 1) / replicas
	var free []string
	for _, c := range wanted {
		_, mine := l.held[c]
		le, taken := l.view[c]
		if taken && !mine && le.Identity == l.opts.Identity {
			// This replica's predecessor's, or its own that it let go
			// when a renewal failed (NATS did not answer) and no other
			// replica has taken since: taken back at once, at a new
			// epoch, rather than left unrun until the TTL ends.
			free = append(free, c)
			continue
		}
		if mine || taken {
			delete(l.freeSince, c)
			continue
		}
		if _, ok := l.freeSince[c]; !ok {
			l.freeSince[c] = now
		}
		// A replica with its fair share leaves a free connector to the
		// others for a moment; if none takes it, it does.
		if len(l.held) >= fair && now.Sub(l.freeSince[c]) < l.opts.TTL/3 {
			continue
		}
		free = append(free, c)
	}
	handOver := l.surplus(fair)
	l.mu.Unlock()
	for _, c := range free {
		l.acquire(ctx, c, now)
	}
	if handOver != "" {
		l.release(handOver, errors.New("handed over to a replica with fewer connectors"))
	}
}

// surplus returns an idle connector this replica should hand over, and
// has its handler promise to start no job for it (Yield): it holds more
// than its fair share while another replica holds less. l.mu is held.
func (l *Leases) surplus(fair int) string {
	yielder, ok := l.handler.(Yielder)
	if !ok || len(l.held) <= fair {
		return ""
	}
	count := map[string]int{}
	for _, p := range l.present {
		count[p.Identity] = 0
	}
	for _, le := range l.view {
		if _, ok := count[le.Identity]; ok {
			count[le.Identity]++
		}
	}
	short := false
	for id, n := range count {
		short = short || (id != l.opts.Identity && n < fair)
	}
	if !short {
		return ""
	}
	for _, c := range slices.Sorted(maps.Keys(l.held)) {
		if yielder.Yield(c) {
			return c
		}
	}
	return ""
}

// value encodes a lease.
func value(le Lease) []byte {
	b, _ := json.Marshal(le)
	return b
}

// acquire tries to take connector's lease: free, or held by this
// replica's predecessor (the same identity, another process: the data
// directory's lock says that process is gone).
func (l *Leases) acquire(ctx context.Context, connector string, now time.Time) {
	key := leasePrefix + connector
	le := Lease{Connector: connector, Replica: l.opts.Replica, Identity: l.opts.Identity, Instance: l.instance, Since: now, Renewed: now}
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	defer cancel()
	rev, err := l.kv.Create(octx, key, value(le))
	if errors.Is(err, jetstream.ErrKeyExists) {
		entry, gerr := l.kv.Get(octx, key)
		if gerr != nil {
			return
		}
		var old Lease
		if json.Unmarshal(entry.Value(), &old) != nil || old.Identity != l.opts.Identity {
			return // another replica's
		}
		l.mu.Lock()
		_, held := l.held[connector]
		l.mu.Unlock()
		if held {
			return
		}
		rev, err = l.kv.Update(octx, key, value(le), entry.Revision())
	}
	if err != nil {
		return
	}
	// The epoch is the revision of the write that took the lease; the
	// value says so from the first renewal on.
	le.Epoch = rev
	if r, err := l.kv.Update(octx, key, value(le), rev); err == nil {
		rev = r
	}
	l.mu.Lock()
	if l.runCtx == nil || l.runCtx.Err() != nil {
		l.mu.Unlock()
		return
	}
	hctx, hcancel := context.WithCancelCause(l.runCtx)
	h := &held{lease: le, revision: rev, renewed: now, cancel: hcancel, ready: make(chan struct{}), done: make(chan struct{})}
	l.held[connector] = h
	l.view[connector] = le
	l.mu.Unlock()
	l.log.Info("lease taken", zap.String("connector", connector), zap.Uint64("epoch", le.Epoch), zap.Duration("ttl", l.opts.TTL))
	go func() {
		defer close(h.done)
		err := l.handler.Acquired(hctx, connector, le.Epoch)
		if err == nil {
			close(h.ready)
		}
		if err != nil && hctx.Err() == nil {
			l.log.Warn("connector not taken over; letting its lease go", zap.String("connector", connector), zap.Error(err))
			hcancel(fmt.Errorf("%w: %w", ErrLost, err))
		}
		<-hctx.Done()
		l.handler.Lost(connector, le.Epoch, context.Cause(hctx))
	}()
}

// TryAcquire takes connector's lease now if it is free (a connector no
// longer configured, for its retire job) and returns once the handler
// has taken it over; false when another replica holds it. A connector
// not wanted is let go again once idle.
func (l *Leases) TryAcquire(ctx context.Context, connector string) (bool, error) {
	l.mu.Lock()
	h, ok := l.held[connector]
	l.mu.Unlock()
	if !ok {
		l.acquire(ctx, connector, l.now())
		l.mu.Lock()
		h, ok = l.held[connector]
		l.mu.Unlock()
		if !ok {
			return false, nil
		}
	}
	select {
	case <-h.ready:
		return true, nil
	case <-h.done:
		return false, fmt.Errorf("connector %s's lease was lost while taking it over", connector)
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// renew extends a held lease; a lease that cannot be renewed in time, or
// that another write replaced, is lost.
func (l *Leases) renew(ctx context.Context, connector string, now time.Time) {
	l.mu.Lock()
	h, ok := l.held[connector]
	if !ok {
		l.mu.Unlock()
		return
	}
	le, rev, last := h.lease, h.revision, h.renewed
	l.mu.Unlock()
	le.Renewed = now
	octx, cancel := context.WithTimeout(ctx, l.opTimeout())
	next, err := l.kv.Update(octx, leasePrefix+connector, value(le), rev)
	cancel()
	if err == nil {
		l.mu.Lock()
		if h, ok := l.held[connector]; ok {
			h.lease, h.revision, h.renewed = le, next, now
		}
		l.mu.Unlock()
		return
	}
	var api *jetstream.APIError
	replaced := errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || errors.Is(err, jetstream.ErrKeyNotFound)
	// Past two thirds of the TTL without a renewal, another replica may
	// take the lease any moment: stop first.
	if replaced || now.Sub(last) >= l.opts.TTL*2/3 {
		l.lose(connector, fmt.Errorf("%w: connector %s's lease (epoch %d) could not be renewed: %w", ErrLost, connector, le.Epoch, err))
	}
}

// Drop gives up connector at once (its appends were fenced: another
// replica claimed it), without deleting the lease, which is no longer
// this replica's.
func (l *Leases) Drop(connector string, cause error) { l.lose(connector, cause) }

// lose forgets a held lease and ends its context with cause.
func (l *Leases) lose(connector string, cause error) *held {
	l.mu.Lock()
	h, ok := l.held[connector]
	delete(l.held, connector)
	l.mu.Unlock()
	if !ok {
		return nil
	}
	l.log.Warn("lease lost", zap.String("connector", connector), zap.Uint64("epoch", h.lease.Epoch), zap.Error(cause))
	h.cancel(cause)
	l.poke()
	return h
}

// release lets a held lease go: once its handler has stopped (Lost), the
// key is deleted so that another replica takes the connector at once.
func (l *Leases) release(connector string, cause error) {
	h := l.lose(connector, cause)
	if h == nil {
		return
	}
	<-h.done
	ctx, cancel := context.WithTimeout(context.Background(), l.opTimeout())
	defer cancel()
	if err := l.kv.Delete(ctx, leasePrefix+connector, jetstream.LastRevision(h.revision)); err != nil {
		l.log.Info("lease not deleted; it times out instead", zap.String("connector", connector), zap.Error(err))
	}
}

// releaseAll lets every held lease go, and this replica's presence.
func (l *Leases) releaseAll() {
	l.mu.Lock()
	var cs []string
	for c := range l.held {
		cs = append(cs, c)
	}
	l.mu.Unlock()
	for _, c := range cs {
		l.release(c, errors.New("dirsyncd is stopping"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.opTimeout())
	defer cancel()
	_ = l.kv.Delete(ctx, presencePrefix+keySafe(l.opts.Identity))
}

// keySafe makes s a KV key token: letters, digits, '-' and '_' kept,
// anything else as '_' with a hash of s appended, so that distinct
// identities stay distinct.
func keySafe(s string) string {
	var b strings.Builder
	changed := false
	for _, r := range s {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	if changed {
		fmt.Fprintf(&b, "-%08x", fnv32(s))
	}
	return b.String()
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// newInstance returns a random ID for this process.
func newInstance() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
