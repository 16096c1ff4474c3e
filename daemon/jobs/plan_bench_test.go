package jobs

import (
	"fmt"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// benchDirectory is a full read of 100,000 users, 5,000 groups of 30
// members and an "All Company" group of every user, as graphsim makes
// the bench's tenant.
func benchDirectory() *snapshot {
	snap := newSnapshot()
	snap.complete = true
	for i := range 100_000 {
		id := fmt.Sprintf("%08x-1111-2222-3333-%012x", i, i)
		snap.users[id] = &connectorv1.User{Id: id, UserPrincipalName: ptr(fmt.Sprintf("user%d@contoso.onmicrosoft.com", i)),
			Mail: ptr(fmt.Sprintf("User%d@contoso.com", i)), DisplayName: ptr(fmt.Sprintf("User %d", i)), Department: ptr("Sales"),
			AccountEnabled: ptr(i%50 != 0), UserType: ptr("Member"), AssignedLicenseCount: ptr(int32(1))}
	}
	for g := range 5000 {
		id := fmt.Sprintf("g%07x-1111-2222-3333-444444444444", g)
		snap.groups[id] = &connectorv1.Group{Id: id, DisplayName: ptr(fmt.Sprintf("Group %d", g)), GroupTypes: []string{"Unified"},
			GroupTypesKnown: true, MailEnabled: ptr(true), SecurityEnabled: ptr(false)}
		for m := range 30 {
			j := (g*30 + m*7) % 100_000
			setAdd(snap.added, id, fmt.Sprintf("%08x-1111-2222-3333-%012x", j, j))
		}
	}
	all := "all-company-1111-2222-3333-444444444444"
	snap.groups[all] = &connectorv1.Group{Id: all, DisplayName: ptr("All Company"), GroupTypes: []string{"Unified"},
		GroupTypesKnown: true, MailEnabled: ptr(true), SecurityEnabled: ptr(false)}
	for id := range snap.users {
		setAdd(snap.added, all, id)
	}
	return snap
}

// benchChanges is an incremental read of 100 changes to benchDirectory:
// renames, disables, deletions, new users and members coming and going.
func benchChanges() *snapshot {
	snap := newSnapshot()
	for i := range 100 {
		n := i * 997
		id := fmt.Sprintf("%08x-1111-2222-3333-%012x", n, n)
		gid := fmt.Sprintf("g%07x-1111-2222-3333-444444444444", i*37)
		switch i % 5 {
		case 0:
			snap.users[id] = &connectorv1.User{Id: id, Mail: ptr(fmt.Sprintf("renamed%d@contoso.com", i))}
		case 1:
			snap.users[id] = &connectorv1.User{Id: id, AccountEnabled: ptr(false)}
		case 2:
			snap.users[id] = &connectorv1.User{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}
		case 3:
			nid := fmt.Sprintf("new-%04d", i)
			snap.users[nid] = &connectorv1.User{Id: nid, Mail: ptr(fmt.Sprintf("new%d@contoso.com", i)), AccountEnabled: ptr(true), UserType: ptr("Member")}
			setAdd(snap.added, gid, nid)
			setAdd(snap.added, "all-company-1111-2222-3333-444444444444", nid)
		case 4:
			setAdd(snap.removed, gid, fmt.Sprintf("%08x-1111-2222-3333-%012x", (i*37*30)%100_000, (i*37*30)%100_000))
		}
	}
	return snap
}

// BenchmarkPlanDelta plans 100 changes to a directory of 100,000 users
// and 5,000 groups, from the memo of the full sync before (delta) or over
// the whole directory (whole), as PROCESSING does:
// `go test -run '^$' -bench PlanDelta ./daemon/jobs/`.
func BenchmarkPlanDelta(b *testing.B) {
	s := projections.NewState()
	spec := Spec{Name: "c", Policy: policy.Default()}
	var sum events.Summary
	evs, memo := plan(s, "c", "full", spec, nil, benchDirectory(), time.Unix(1, 0), &sum, nil)
	for _, e := range evs {
		if _, err := s.Apply(e); err != nil {
			b.Fatal(err)
		}
	}
	changes := benchChanges()
	for _, tt := range []struct {
		name string
		memo *planMemo
	}{{"delta", memo}, {"whole", nil}} {
		b.Run(tt.name, func(b *testing.B) {
			for range b.N {
				var sum events.Summary
				evs, next := plan(s, "c", "delta", spec, nil, changes, time.Unix(2, 0), &sum, tt.memo)
				if len(evs) == 0 || next == nil {
					b.Fatalf("%d events, memo %v", len(evs), next)
				}
			}
		})
	}
}

// BenchmarkPlanFirst plans a connector's first full read of 100,000
// users and 5,000 groups, the largest plan PROCESSING makes:
// `go test -run '^$' -bench PlanFirst -benchmem ./daemon/jobs/`.
func BenchmarkPlanFirst(b *testing.B) {
	s := projections.NewState()
	spec := Spec{Name: "c", Policy: policy.Default()}
	snap := benchDirectory()
	for range b.N {
		var sum events.Summary
		evs, _ := plan(s, "c", "full", spec, nil, snap, time.Unix(1, 0), &sum, nil)
		if len(evs) < 200_000 {
			b.Fatalf("%d events", len(evs))
		}
	}
}
