package jobs

import (
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// A plugin's retry report becomes the job's live progress cleaned like
// any text a plugin sends; the same wait reported again on a later batch
// keeps the time it began, and a new one starts its own.
func TestRetryingProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	t1 := t0.Add(700 * time.Millisecond)
	report := &connectorv1.Retrying{Cause: "Graph answered 503\u202e Service Unavailable", Attempt: 2, WaitMs: 4000, BudgetLeftMs: 581_000}
	first, fresh := retrying(report, nil, t0)
	want := Retrying{Cause: "Graph answered 503 Service Unavailable", Attempt: 2, WaitMS: 4000, BudgetLeftMS: 581_000, Since: t0}
	if first == nil || *first != want || !fresh {
		t.Fatalf("retrying = %+v, fresh %v; want %+v, fresh", first, fresh, want)
	}
	if again, fresh := retrying(report, first, t1); again.Since != t0 || fresh {
		t.Errorf("the same wait on a later batch starts at %v (fresh %v); want %v, not fresh", again.Since, fresh, t0)
	}
	next := &connectorv1.Retrying{Cause: report.Cause, Attempt: 3, WaitMs: 8000, BudgetLeftMs: 577_000}
	if r, fresh := retrying(next, first, t1); r.Since != t1 || r.Attempt != 3 || !fresh {
		t.Errorf("a new wait = %+v (fresh %v); want attempt 3 since %v, fresh", r, fresh, t1)
	}
	if r, fresh := retrying(nil, first, t1); r != nil || fresh {
		t.Errorf("the wave is over, yet %+v (fresh %v)", r, fresh)
	}
	hostile, _ := retrying(&connectorv1.Retrying{Cause: "x", Attempt: -1, WaitMs: -5, BudgetLeftMs: -9}, nil, t0)
	if hostile.Attempt != 0 || hostile.WaitMS != 0 || hostile.BudgetLeftMS != 0 {
		t.Errorf("negative numbers passed on: %+v", hostile)
	}
}
