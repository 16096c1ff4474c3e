package jobs

import (
	"slices"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// fullRead is a complete snapshot of the given users.
func fullRead(users ...*connectorv1.User) *snapshot {
	snap := newSnapshot()
	snap.complete = true
	for _, u := range users {
		snap.users[u.GetId()] = u
	}
	return snap
}

// planJob plans job jobID of connector c over s, folds its events and
// returns them with the job's summary.
func planJob(t *testing.T, s *projections.State, c, jobID string, pol policy.Policy, snap *snapshot) ([]events.Event, *events.Summary) {
	t.Helper()
	sum := &events.Summary{}
	evs := planned(plan(s, c, jobID, Spec{Name: c, Policy: pol}, nil, snap, time.Unix(1, 0), sum, nil))
	fold(t, s, evs)
	return evs, sum
}

// recipientEvents describes a job's recipient events in stream order, as
// "type object-ID email".
func recipientEvents(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		if c, ok := e.Data.(events.RecipientChange); ok {
			kind := strings.TrimSuffix(strings.TrimPrefix(e.Type, "io.dirsync.recipient."), ".v1")
			out = append(out, kind+" "+c.Recipient.ObjectID+" "+c.Recipient.Email)
		}
	}
	return out
}

// TestTakeoverOrderAndReasons: a job in which users take over other
// users' mails stores the recipient giving an email up before the one
// taking it, and a user whose mail a stored recipient still has is
// skipped with a reason naming it.
func TestTakeoverOrderAndReasons(t *testing.T) {
	tests := []struct {
		name      string
		update    bool
		onRemoved string
		next      []*connectorv1.User // after a first sync of z (x@), y (y@) and l (l@)
		want      []string            // recipient events of the second job, in order
		skipped   map[string]int
		reason    string // a substring of the reason of the first event
	}{
		{"update_existing=true: the leaver first, the renamed user before the taker", true, policy.OnRemovedArchive,
			[]*connectorv1.User{user("z", "z2@contoso.com", "Z", ""), user("y", "y@contoso.com", "Y", ""),
				user("a", "x@contoso.com", "A", ""), user("b", "L@contoso.com", "B", "")},
			[]string{"archived l l@contoso.com", "created b L@contoso.com", "updated z z2@contoso.com", "created a x@contoso.com"},
			nil, "user is no longer in the directory"},
		{"update_existing=false: the stored email is still z's, a waits", false, policy.OnRemovedDelete,
			[]*connectorv1.User{user("z", "z2@contoso.com", "Z", ""), user("y", "y@contoso.com", "Y", ""),
				user("a", "X@contoso.com", "A", ""), user("b", "l@contoso.com", "B", "")},
			[]string{"removed l l@contoso.com", "created b l@contoso.com"},
			map[string]int{policy.SkipDuplicateEmail: 1}, "user is no longer in the directory"},
		{"keep: a leaver's recipient yields its email to the taker, archived", true, policy.OnRemovedKeep,
			[]*connectorv1.User{user("z", "x@contoso.com", "Z", ""), user("y", "y@contoso.com", "Y", ""),
				user("b", "l@contoso.com", "B", "")},
			[]string{"archived l l@contoso.com", "created b l@contoso.com"},
			nil, "archived although on_removed is keep: its email is now user b's"},
		{"a chain of takeovers: each email given up before it is taken", true, policy.OnRemovedArchive,
			[]*connectorv1.User{user("z", "n@contoso.com", "Z", ""), user("y", "x@contoso.com", "Y", ""), user("l", "y@contoso.com", "L", "")},
			[]string{"updated z n@contoso.com", "updated y x@contoso.com", "updated l y@contoso.com"},
			nil, ""},
		{"a swap: both updated, in object ID order", true, policy.OnRemovedArchive,
			[]*connectorv1.User{user("z", "y@contoso.com", "Z", ""), user("y", "x@contoso.com", "Y", ""), user("l", "l@contoso.com", "L", "")},
			[]string{"updated y x@contoso.com", "updated z y@contoso.com"},
			nil, ""},
		{"a user takes a mail another still has: skipped, the holder stays", true, policy.OnRemovedArchive,
			[]*connectorv1.User{user("z", "x@contoso.com", "Z", ""), user("y", "X@CONTOSO.COM", "Y", ""), user("l", "l@contoso.com", "L", "")},
			[]string{"archived y y@contoso.com"},
			map[string]int{policy.SkipDuplicateEmail: 1}, "another user has the same email address; user z is the recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := policy.Default()
			pol.UpdateExisting, pol.OnRemoved = tt.update, tt.onRemoved
			s := projections.NewState()
			planJob(t, s, "demo", "j1", pol, fullRead(user("z", "x@contoso.com", "Z", ""), user("y", "y@contoso.com", "Y", ""), user("l", "l@contoso.com", "L", "")))
			evs, sum := planJob(t, s, "demo", "j2", pol, fullRead(tt.next...))
			got := recipientEvents(evs)
			if !slices.Equal(got, tt.want) {
				t.Errorf("recipient events\n%q, want\n%q", got, tt.want)
			}
			if !mapsEqual(sum.Skipped, tt.skipped) {
				t.Errorf("skipped %v, want %v", sum.Skipped, tt.skipped)
			}
			if tt.reason != "" {
				c, _ := evs[len(evs)-len(got)].Data.(events.RecipientChange)
				if !strings.Contains(c.Reason, tt.reason) {
					t.Errorf("reason %q, want it to contain %q", c.Reason, tt.reason)
				}
			}
			if bad := sharedEmails(s); len(bad) > 0 {
				t.Errorf("active recipients share emails: %v", bad)
			}
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// sharedEmails lists the emails several active recipients have.
func sharedEmails(s *projections.State) []string {
	by := map[string][]string{}
	for _, rs := range s.Recipients {
		for _, r := range rs {
			if r.Status == events.RecipientActive {
				k := strings.ToLower(r.Email)
				by[k] = append(by[k], r.ID)
			}
		}
	}
	var out []string
	for k, ids := range by {
		if len(ids) > 1 {
			slices.Sort(ids)
			out = append(out, k+": "+strings.Join(ids, ", "))
		}
	}
	slices.Sort(out)
	return out
}

// TestRenamedConnectorIsVisible: a connector renamed in plugins.hcl
// without retiring the old name does not make a second list of the same
// people: its users are skipped as duplicate_email, with one warning
// naming the old connector, and become recipients once the old
// connector's recipients are archived.
func TestRenamedConnectorIsVisible(t *testing.T) {
	pol := policy.Default()
	s := projections.NewState()
	people := []*connectorv1.User{user("u1", "ann@contoso.com", "Ann", ""), user("u2", "bob@contoso.com", "Bob", ""), user("u3", "cy@contoso.com", "Cy", "")}
	planJob(t, s, "old", "j1", pol, fullRead(people...))

	evs, sum := planJob(t, s, "new", "j2", pol, fullRead(people...))
	if got := recipientEvents(evs); len(got) != 0 {
		t.Errorf("the renamed connector made recipient events %q", got)
	}
	if sum.Skipped[policy.SkipDuplicateEmail] != 3 || sum.RecipientsCreated != 0 {
		t.Errorf("skipped %v, created %d; want 3 duplicate_email, none created", sum.Skipped, sum.RecipientsCreated)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], `3 users skipped as duplicate_email: their emails belong to active recipients of connector "old"`) {
		t.Errorf("warnings %q, want one naming connector old and its 3 users", sum.Warnings)
	}
	if len(sum.DuplicateEmails) != 3 || sum.DuplicateEmails[0] != `ann@contoso.com: recipient old.u1 of connector "old" is the recipient; skipped u1` {
		t.Errorf("duplicate emails %q", sum.DuplicateEmails)
	}

	// The old connector's recipients archived (as retiring it does), the
	// new one's next sync makes them its own.
	planJob(t, s, "old", "j3", pol, fullRead())
	_, sum = planJob(t, s, "new", "j4", pol, fullRead(people...))
	if sum.RecipientsCreated != 3 || len(sum.Skipped) != 0 || len(sum.Warnings) != 0 {
		t.Errorf("after the old connector's recipients left: created %d, skipped %v, warnings %q", sum.RecipientsCreated, sum.Skipped, sum.Warnings)
	}
	if bad := sharedEmails(s); len(bad) > 0 {
		t.Errorf("active recipients share emails: %v", bad)
	}
}

// planned drops plan's memo.
func planned(evs []events.Event, _ *planMemo) []events.Event { return evs }
