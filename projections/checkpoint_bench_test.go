package projections

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/dirsync/dirsync/events"
)

// benchState is a connector's state at the benchmarks' main size: 100,000
// users and recipients, 5,000 groups of 50 members.
func benchState() *State {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := NewState()
	d := s.Directory("demo")
	rs := map[string]events.Recipient{}
	for i := range 100_000 {
		id := fmt.Sprintf("%08x-1111-2222-3333-%012x", i, i)
		d.Users[id] = events.User{ID: id, UserPrincipalName: id + "@contoso.com", Mail: fmt.Sprintf("user%d@contoso.com", i),
			DisplayName: fmt.Sprintf("User %d", i), GivenName: "Given", Surname: fmt.Sprintf("Surname%d", i), Department: "Sales",
			JobTitle: "Engineer", AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1}
		rs[id] = events.Recipient{ID: "demo." + id, Connector: "demo", ObjectID: id, Email: fmt.Sprintf("user%d@contoso.com", i),
			DisplayName: fmt.Sprintf("User %d", i), GivenName: "Given", Surname: fmt.Sprintf("Surname%d", i), Department: "Sales",
			JobTitle: "Engineer", Groups: []string{"Sales Team", "All Staff"}, Tags: []string{"imported"}, Status: events.RecipientActive, UpdatedAt: at}
	}
	s.Recipients["demo"] = rs
	for g := range 5000 {
		id := fmt.Sprintf("g%08x-1111-2222-3333-444444444444", g)
		d.Groups[id] = events.Group{ID: id, DisplayName: fmt.Sprintf("Group %d", g), GroupTypes: []string{"Unified"}, MailEnabled: true}
		set := map[string]struct{}{}
		for m := range 50 {
			j := (g*50 + m) % 100_000
			set[fmt.Sprintf("%08x-1111-2222-3333-%012x", j, j)] = struct{}{}
		}
		d.Members[id] = set
	}
	s.LastSeq = 1_000_000
	return s
}

// BenchmarkCheckpointLoad decodes a checkpoint of benchState, as a start
// does: `go test -run '^$' -bench Checkpoint -benchtime 3x ./projections/`.
func BenchmarkCheckpointLoad(b *testing.B) {
	var buf bytes.Buffer
	if err := encodeState(&buf, benchState()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var live uint64
	for range b.N {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		s, err := decodeState(buf.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live = ms.HeapAlloc - before
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	// The checkpoint's size, and what a loaded state holds once the
	// load's garbage is collected (after ResetTimer, which drops metrics).
	b.ReportMetric(float64(buf.Len())/(1<<20), "MiB")
	b.ReportMetric(float64(live)/(1<<20), "live-MiB")
}

// BenchmarkCheckpointSave encodes one.
func BenchmarkCheckpointSave(b *testing.B) {
	s := benchState()
	b.ResetTimer()
	for range b.N {
		var buf bytes.Buffer
		if err := encodeState(&buf, s); err != nil {
			b.Fatal(err)
		}
	}
}
