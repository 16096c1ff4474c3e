package jobs

import (
	"context"
	"errors"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
)

// A job says the read it did: a first sync reads the whole directory
// though nobody asked for --full, and its "full" agrees with its
// summary's fullRead; an incremental one is not full; a first sync that
// fails is still recorded as the full read it tried.
func TestJobFullAgreesWithSummary(t *testing.T) {
	d := &dir{users: manyUsers(2), delta: []*connectorv1.SyncBatch{{}}}
	e := startEnv(t, d)

	first := e.sync()
	if first.State != events.StateCompleted || !first.Full || first.Summary == nil || !first.Summary.FullRead {
		t.Fatalf("first sync: state %s full %v summary %+v; want COMPLETED, full, fullRead", first.State, first.Full, first.Summary)
	}
	next := e.sync()
	if next.State != events.StateCompleted || next.Full || next.Summary.FullRead {
		t.Errorf("incremental sync: full %v, fullRead %v; want both false", next.Full, next.Summary.FullRead)
	}

	d2 := &dir{fail: errors.New("directory unreachable")}
	e2 := startEnv(t, d2)
	id, err := e2.runner.Request(context.Background(), "demo", Request{})
	if err != nil {
		t.Fatal(err)
	}
	if j := e2.waitFinal(id); j.State != events.StateFailed || !j.Full {
		t.Errorf("failed first sync: state %s full %v; want FAILED, full", j.State, j.Full)
	}
}
