package service

import (
	"testing"

	"github.com/dirsync/dirsync/daemon/leases"
	"github.com/dirsync/dirsync/projections"
)

type fakeWriter struct {
	writes, holding bool
}

func (f fakeWriter) Writes(string) bool            { return f.writes }
func (f fakeWriter) Holding(string) (uint64, bool) { return 7, f.holding }

type fakeLeases struct {
	fresh  bool
	holder string // instance in the lease view; "" none
}

func (f fakeLeases) Fresh(string) bool { return f.fresh }
func (f fakeLeases) Holder(c string) (leases.Lease, bool) {
	return leases.Lease{Connector: c, Instance: f.holder}, f.holder != ""
}
func (f fakeLeases) Instance() string { return "me" }

// A replica writes a connector's KV entries only while it holds it on a
// fresh lease; a lease it is losing, even one its stale view still shows
// as its own (a replica woken from a pause), leaves them waiting, since
// writing would put its older values over the new holder's (CI rehearsal
// 05:53, TestReplicaPausedIsFenced: a job's entry left at SAVING).
func TestKVWrites(t *testing.T) {
	for _, tt := range []struct {
		name   string
		runner fakeWriter
		camp   fakeLeases
		want   projections.KVWrite
	}{
		{"holds on a fresh lease", fakeWriter{true, true}, fakeLeases{true, "me"}, projections.KVWriteNow},
		{"taking over", fakeWriter{true, false}, fakeLeases{false, "me"}, projections.KVWriteNow},
		{"holds on a stale lease", fakeWriter{true, true}, fakeLeases{false, "me"}, projections.KVLater},
		{"another holds it", fakeWriter{false, false}, fakeLeases{false, "other"}, projections.KVSkip},
		{"lost, own lease still in view", fakeWriter{false, false}, fakeLeases{false, "me"}, projections.KVLater},
		{"none holds it", fakeWriter{false, false}, fakeLeases{false, ""}, projections.KVWriteUnheld},
	} {
		if got := kvWrites(tt.runner, tt.camp)("demo"); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
