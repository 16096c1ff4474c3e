package notify

import (
	"context"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/events"
)

// TypeConnectorStale is the CloudEvents type of connector.stale: no job
// of the connector has COMPLETED for longer than stale_after. It is not
// stored in the stream (it is a fact about time passing, not about the
// directory); the notifier derives it from the read models, so after a
// restart it is derived again while the connector stays stale.
const TypeConnectorStale = "io.dirsync.connector.stale.v1"

// ConnectorStale is the data of a connector.stale event.
type ConnectorStale struct {
	Connector string `json:"connector"`
	// LastSyncAt is the last COMPLETED job's time.
	LastSyncAt time.Time `json:"lastSyncAt"`
	// StaleAfter is the notify block's stale_after, e.g. "26h0m0s".
	StaleAfter string `json:"staleAfter"`
	// Detail says what to do.
	Detail string `json:"detail"`
}

// StaleEvent builds the connector.stale event of a connector whose last
// completed sync was at last. Its ID derives from the connector and that
// time, so one stale spell is one event whichever replica or restart
// sends it, and a receiver deduplicates it like any other.
func StaleEvent(connector string, last time.Time, staleAfter time.Duration, now time.Time) events.Event {
	subject := events.SubjectRoot + ".notify." + connector + ".stale"
	return events.New(TypeConnectorStale, subject, connector, "stale-since-"+last.UTC().Format(time.RFC3339Nano), 0, now,
		ConnectorStale{Connector: connector, LastSyncAt: last.UTC(), StaleAfter: staleAfter.String(),
			Detail: fmt.Sprintf("connector %s has not completed a sync since %s, more than stale_after (%s) ago: "+
				"check its last job's reason (dirsync jobs %s) and its schedule", connector, last.UTC().Format(time.RFC3339), staleAfter, connector)})
}

// staleEvent is a connector.stale event waiting for delivery to a sink.
type staleEvent struct {
	since   time.Time // the last sync it is about
	event   events.Event
	body    []byte
	id      string
	attempt uint64
	next    time.Time
}

// watchStale checks every CheckEvery which connectors are stale and
// delivers their connector.stale event to the webhooks that want it,
// retrying with backoff until the receiver takes it or the connector
// syncs again.
func (n *Notifier) watchStale(ctx context.Context) {
	t := time.NewTicker(n.o.CheckEvery)
	defer t.Stop()
	sent := map[string]map[string]time.Time{} // sink → connector → the last sync already notified
	for {
		n.checkStale(ctx, sent)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) checkStale(ctx context.Context, sent map[string]map[string]time.Time) {
	now := n.o.Now()
	last := n.o.LastSyncs()
	names := make([]string, 0, len(last))
	for c := range last {
		names = append(names, c)
	}
	sort.Strings(names)
	for _, s := range n.sinks {
		if !s.cfg.Wants(config.NotifyConnectorStale) {
			continue
		}
		if sent[s.cfg.Name] == nil {
			sent[s.cfg.Name] = map[string]time.Time{}
		}
		done := sent[s.cfg.Name]
		s.mu.Lock()
		for _, c := range names {
			at := last[c]
			if at == nil || now.Sub(*at) < n.o.StaleAfter {
				delete(s.stale, c) // synced again (or never): nothing to say
				continue
			}
			if d, ok := done[c]; ok && d.Equal(*at) {
				continue
			}
			if w, ok := s.stale[c]; ok && w.since.Equal(*at) {
				continue
			}
			e := StaleEvent(c, *at, n.o.StaleAfter, now)
			body, err := e.Marshal()
			if err != nil {
				n.o.Log.Error("notify: encoding a connector.stale event", zap.Error(err))
				continue
			}
			s.stale[c] = staleEvent{since: *at, event: e, body: body, id: e.ID, next: now}
		}
		var due []string
		for c, w := range s.stale {
			if !now.Before(w.next) {
				due = append(due, c)
			}
		}
		s.mu.Unlock()
		sort.Strings(due)
		for _, c := range due {
			s.mu.Lock()
			w := s.stale[c]
			s.mu.Unlock()
			w.attempt++
			res, _ := n.post(ctx, s, w.event, w.body, w.attempt)
			s.mu.Lock()
			switch res {
			case resultDelivered, resultRejected:
				delete(s.stale, c)
				done[c] = w.since
			default:
				wait := n.backoff(s, w.attempt)
				w.next = n.o.Now().Add(wait)
				s.stale[c] = w
				t := w.next
				s.stat.NextRetry = &t
			}
			s.mu.Unlock()
		}
	}
}
