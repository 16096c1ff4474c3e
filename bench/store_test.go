package bench

import (
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// The rebuild scenario's log has exactly the requested length (with or
// without a bound on the tenant), unique
// event IDs, and folds as real jobs: every event applies, every job
// COMPLETED, one active recipient per user.
func TestStoreLog(t *testing.T) {
	for _, tc := range []struct{ n, maxUsers int }{
		{100, 0}, {101, 0}, {107, 0}, {2_000, 0}, {2_001, 0}, {12_345, 0},
		{5_000, 300}, {12_345, 97}, // a bounded tenant: more, longer syncs
	} {
		n := tc.n
		l, err := newStoreLog(n, tc.maxUsers)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		msgs, err := l.marshal(0, n)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		s := projections.NewState()
		ids := map[string]bool{}
		for i, m := range msgs {
			if ids[m.msgID] {
				t.Fatalf("n=%d: event %d repeats ID %s", n, i, m.msgID)
			}
			ids[m.msgID] = true
			e, err := events.Decode(m.data)
			if err != nil {
				t.Fatalf("n=%d: event %d: %v", n, i, err)
			}
			if e.Subject != m.subject {
				t.Fatalf("n=%d: event %d: subject %s, published on %s", n, i, e.Subject, m.subject)
			}
			e.Seq = uint64(i + 1)
			if _, err := s.Apply(e); err != nil {
				t.Fatalf("n=%d: event %d (%s): %v", n, i, e.Type, err)
			}
		}
		if err := rebuildCheck(s, l, uint64(n)); err != nil {
			t.Errorf("n=%d: %v", n, err)
		}
		if tc.maxUsers > 0 && l.users != tc.maxUsers {
			t.Errorf("n=%d: %d users, want the bound %d", n, l.users, tc.maxUsers)
		}
	}
}
