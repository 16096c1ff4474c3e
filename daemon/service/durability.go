package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/broker"
	"github.com/dirsync/dirsync/events/store"
)

// warnDurability says at start what the event log's settings do not
// guarantee (docs/durability.md): a stream of one replica on a cluster
// is lost with its node, and a lazily synced server may lose
// acknowledged writes when its nodes fail together (Jepsen's analysis of
// NATS 2.12.1). It returns the warnings, for tests.
func warnDurability(ctx context.Context, js jetstream.JetStream, embedded bool, syncPolicy string, log *zap.Logger) []string {
	var warnings []string
	warn := func(msg string, fields ...zap.Field) {
		warnings = append(warnings, msg)
		log.Warn(msg, fields...)
	}
	if embedded {
		if syncPolicy == broker.SyncInterval {
			warn("nats { sync = \"interval\" }: the embedded server fsyncs every two minutes, so a power loss may lose acknowledged events; " +
				"use \"append\" (the default) or \"always\" (see docs/durability.md)")
		}
		return warnings
	}
	st, err := js.Stream(ctx, store.StreamName)
	if err != nil {
		log.Warn("cannot read the event stream's settings to check its durability", zap.Error(err))
		return warnings
	}
	info := st.CachedInfo()
	cluster := ""
	if nc := js.Conn(); nc != nil {
		cluster = nc.ConnectedClusterName()
	}
	if info.Config.Replicas < 2 && cluster != "" {
		warn("the event stream has one replica on a NATS cluster: the node that stores it takes the whole log down with it; "+
			"set nats { replicas = 3 } in plugins.hcl and restart dirsyncd (it updates the stream), see docs/durability.md",
			zap.String("stream", store.StreamName), zap.String("cluster", cluster), zap.Int("replicas", info.Config.Replicas))
	}
	// A client cannot read the servers' sync setting (only the system
	// account can): say once what it must be.
	log.Info("the event log's durability on an external NATS deployment depends on its servers' jetstream { sync_interval }: "+
		"set it to always on every node, or a coordinated crash may lose acknowledged events (see docs/durability.md)",
		zap.String("stream", store.StreamName), zap.Int("replicas", info.Config.Replicas), zap.String("cluster", cluster))
	return warnings
}

// settingUpTimeout bounds how long a start waits for a JetStream cluster
// to create or update dirsync's streams and buckets: a cluster that has
// just started, or several replicas starting at once, keep its meta
// leader busy for seconds, and each request times out meanwhile.
const settingUpTimeout = 2 * time.Minute

// settingUp runs fn, the creation of what, again while it fails for
// want of an answer (a request timeout, no responders: the cluster
// is electing a leader or busy), for up to settingUpTimeout. Each
// attempt gets a short deadline that grows: creations are idempotent,
// and when replicas create the same stream at once the meta leader
// answers one of them only, so the other's wait is best cut short.
func settingUp[T any](ctx context.Context, what string, log *zap.Logger, fn func(ctx context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(settingUpTimeout)
	wait, limit := 100*time.Millisecond, time.Second
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, limit)
		v, err := fn(actx)
		cancel()
		limit = min(2*limit, 10*time.Second)
		if err == nil || !noAnswer(err) || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil && noAnswer(err) {
				err = fmt.Errorf("%w (JetStream gave no answer for %s: is a majority of the cluster's nodes up? see nats server report jetstream)", err, settingUpTimeout)
			}
			return v, err
		}
		if attempt == 1 {
			log.Warn("JetStream does not answer yet; trying again (a cluster that has just started, or several replicas starting at once)",
				zap.String("creating", what), zap.Error(err))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return v, ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// noAnswer reports whether err is JetStream not answering in time, as
// opposed to refusing.
func noAnswer(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
