package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
	"github.com/dirsync/dirsync/internal/testenv"
)

// TestFailedSavingTagsRepaired: a sync with one-time tags (the most a
// request may carry, on about 10,000 recipients) dies in SAVING after part
// of its events are stored, so part of the recipients have the tags.
//
// The kill comes when the watcher sees the job's event number
// store.MaxPending+1 published, which the append's flow control makes a
// point inside its second chunk: an append publishes a chunk (at most
// store.MaxPending events) only once the one before is stored, so the
// first chunk is stored, and the third, not yet published, is not. (A
// kill a few events in could land before any was stored, or, the events
// being few, after all were.) The
// next sync, requested without options, carries the failed job's tags on
// (its record names the job it resumes) and, once COMPLETED, every active
// recipient has them; the sync after that resumes nothing and changes
// nothing.
func TestFailedSavingTagsRepaired(t *testing.T) {
	listen := testenv.FreeAddr(t)
	f := newFixtureWith(t, fmt.Sprintf("nats { listen = %q }", listen), fixtureOptions{users: 12000, groups: 60})
	f.start()
	if j := f.syncJob(); j.State != events.StateCompleted {
		t.Fatalf("first sync: %s %s", j.State, j.Reason)
	}
	var tags []string
	for i := range events.MaxJobTags {
		tags = append(tags, fmt.Sprintf("campaign-2026-q4-%02d", i+1))
	}

	began := time.Now()
	w := watch(t, f, "nats://"+listen, killPoint{state: events.StateSaving, after: store.MaxPending + 1})
	_, reqErr := f.api().Sync(context.Background(), "demo", api.SyncRequest{JobOptions: events.JobOptions{Tags: tags}})
	select {
	case <-w.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the tagging job never reached SAVING (request: %v)", reqErr)
	}
	w.nc.Close()
	<-f.daemon.Done()
	f.daemon = nil
	w.mu.Lock()
	failedID, at := w.jobID, w.at
	w.mu.Unlock()

	f.start()
	failed := f.waitJob(failedID, 30*time.Second, final)
	if failed.State != events.StateFailed {
		t.Fatalf("the job killed in SAVING: %s %q; want FAILED", failed.State, failed.Reason)
	}
	tagged, active := countTagged(t, f, tags)
	if tagged == 0 || tagged == active {
		t.Fatalf("%d of %d active recipients have the tags after the kill (%s): the premise, a part applied, does not hold", tagged, active, at)
	}
	t.Logf("killed %s: %d of %d recipients tagged", at, tagged, active)

	next := f.syncJob()
	if next.State != events.StateCompleted || next.Resumes != failedID {
		t.Fatalf("the next sync: %s %q, resumes %q; want COMPLETED resuming %s", next.State, next.Reason, next.Resumes, failedID)
	}
	if next.Options == nil || !slices.Equal(next.Options.Tags, tags) {
		t.Errorf("the next sync ran with options %+v; want the failed job's tags", next.Options)
	}
	if tagged, active := countTagged(t, f, tags); tagged != active {
		t.Errorf("after the next sync %d of %d active recipients have the tags; want all", tagged, active)
	}
	after := f.syncJob()
	if after.Resumes != "" || after.Summary == nil || after.Summary.RecipientsUpdated != 0 {
		t.Errorf("the sync after the repair: resumes %q, summary %+v; want nothing resumed or changed", after.Resumes, after.Summary)
	}
	report(t, faultRow{Case: "saving/tags-repaired", Seed: "-", Fault: fmt.Sprintf("SIGKILL in SAVING of a sync with %d one-time tags on %d recipients", len(tags), active),
		AtFault: at, Recovery: time.Since(began), Events: assertConvergedLog(t, f)})
}

// countTagged counts the active recipients that have every tag, and the
// active ones.
func countTagged(t *testing.T, f *fixture, tags []string) (tagged, active int) {
	t.Helper()
	var rs []recipientJSON
	f.cliJSON(&rs, "recipients", "list")
	for _, r := range rs {
		if r.Status != events.RecipientActive {
			continue
		}
		active++
		if !slices.ContainsFunc(tags, func(tag string) bool { return !slices.Contains(r.Tags, tag) }) {
			tagged++
		}
	}
	return tagged, active
}
