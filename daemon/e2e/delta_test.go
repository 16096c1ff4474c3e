package e2e

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/api"
	"github.com/dirsync/dirsync/events"
)

// The policy of the delta tests: licences matter, so a licence change is a
// recipient change.
const deltaImport = `
  import {
    exclude_unlicensed = true
  }`

func deltaPolicy(u graphsim.User) bool {
	return u.AccountEnabled && u.UserType != "Guest" && len(u.AssignedLicenses) > 0
}

func (f *fixture) syncJob(args ...string) api.Job {
	f.t.Helper()
	var j jobJSON
	f.cliJSON(&j, append([]string{"sync", "demo", "--wait"}, args...)...)
	full, err := f.api().Job(context.Background(), j.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return full
}

func (f *fixture) changesOf(id string) []string {
	f.t.Helper()
	return f.changes(id, false)
}

// changes lists a job's recipient events as "kind objectID", with the
// fields an update names when fields is set, sorted.
func (f *fixture) changes(id string, fields bool) []string {
	f.t.Helper()
	var ch api.Changes
	f.cliJSON(&ch, "jobs", "show", id)
	var out []string
	for _, c := range ch.Changes {
		s := c.Kind + " " + c.ObjectID
		if fields && c.Kind == "updated" {
			s += " " + strings.Join(c.Changed, ",")
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// expectedChanges derives the recipient events between two expected
// recipient sets (on_removed = archive).
func expectedChanges(before, after []recipientJSON) []string {
	b, a := map[string]recipientJSON{}, map[string]recipientJSON{}
	for _, r := range before {
		b[r.ObjectID] = r
	}
	for _, r := range after {
		a[r.ObjectID] = r
	}
	var out []string
	for id, r := range a {
		old, ok := b[id]
		switch {
		case !ok:
			out = append(out, "created "+id) // or restored: fixed up by the caller
		case old.Email != r.Email || old.DisplayName != r.DisplayName || old.Department != r.Department ||
			!slices.Equal(old.Groups, r.Groups):
			out = append(out, "updated "+id)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			out = append(out, "archived "+id)
		}
	}
	sort.Strings(out)
	return out
}

// readsChanges reports whether a Graph request (graphPaths' "METHOD path
// status") is one an incremental sync makes: a delta page, or the JSON
// batch asking what the changed users' mailboxes are for (each of its
// items counted as a mailboxSettings request; graphsim's default app has
// no MailboxSettings.Read, so they answer 403 and the sync warns).
func readsChanges(p string) bool {
	return strings.Contains(p, "/delta") || strings.HasPrefix(p, "POST /v1.0/$batch ") || strings.HasPrefix(p, "GET /v1.0/users/{id}/mailboxSettings ")
}

func graphPaths(c map[string]int64) []string {
	var out []string
	for k, n := range c {
		if n > 0 && strings.Contains(k, "/v1.0/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// After a first sync, every kind of directory change reaches the next sync
// through delta queries only, as exactly the matching recipient events.
func TestDeltaSyncAppliesChanges(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{
		users: 300, groups: 20, demoExtra: deltaImport,
		sim: func(c *graphsim.Config) { c.DeltaMembersPerPage = 25 }, // "All Company" spans pages
	})
	f.start()
	first := f.syncJob()
	if first.State != events.StateCompleted || first.Summary == nil || !first.Summary.FullRead {
		t.Fatalf("first sync: %+v", first)
	}
	before := expectedUnder(f.sim, "demo", deltaPolicy, []string{})

	// Pick users for each kind of change among the current recipients.
	var ids []string
	for _, r := range before {
		ids = append(ids, r.ObjectID)
	}
	if len(ids) < 8 {
		t.Fatalf("only %d recipients", len(ids))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	added, err := f.sim.AddUser(graphsim.User{DisplayName: "Nova Newhire", GivenName: "Nova", Surname: "Newhire",
		UserPrincipalName: "nova.newhire@" + f.sim.Tenant().Domain, Mail: "nova.newhire@contoso.com", UserType: "Member",
		AccountEnabled: true, Department: "Sales", AssignedLicenses: []string{"c7df2760-2c81-4ef7-b578-5b5392b571df"}})
	must(err)
	must(f.sim.UpdateUser(ids[0], func(u *graphsim.User) { u.Department = "Red Team" }))
	must(f.sim.DisableUser(ids[1]))
	must(f.sim.DeleteUser(ids[2], false))
	must(f.sim.DeleteUser(ids[3], true))
	must(f.sim.SetLicenses(ids[4], nil))
	var unified *graphsim.Group
	for i, g := range f.sim.Tenant().Groups {
		if g.IsUnified() && g.DisplayName != "All Company" {
			unified = &f.sim.Tenant().Groups[i]
			break
		}
	}
	if unified == nil {
		t.Fatal("no Unified group besides All Company")
	}
	if !slices.ContainsFunc(unified.Members, func(m graphsim.Member) bool { return m.ID == ids[5] }) {
		must(f.sim.AddMembers(unified.ID, ids[5]))
	} else {
		must(f.sim.RemoveMembers(unified.ID, ids[5]))
	}
	must(f.sim.AddMembers(unified.ID, added.ID))
	// 30 people leave "All Company": more member changes than fit one
	// page, so the group repeats across pages of the delta round.
	var all graphsim.Group
	for _, g := range f.sim.Tenant().Groups {
		if g.DisplayName == "All Company" {
			all = g
		}
	}
	var leavers []string
	for _, m := range all.Members {
		if m.ODataType == graphsim.TypeUser && len(leavers) < 30 && !slices.Contains(ids[:6], m.ID) {
			leavers = append(leavers, m.ID)
		}
	}
	if len(leavers) < 30 {
		t.Fatalf("All Company has only %d user members to remove", len(leavers))
	}
	must(f.sim.RemoveMembers(all.ID, leavers...))
	f.sim.ResetCounters()

	second := f.syncJob()
	if second.State != events.StateCompleted || second.Summary.FullRead {
		t.Fatalf("second sync: %s %q full=%v", second.State, second.Reason, second.Summary.FullRead)
	}
	after := expectedUnder(f.sim, "demo", deltaPolicy, []string{})
	var got []recipientJSON
	f.cliJSON(&got, "recipients", "list", "--status", "active")
	assertRecipients(t, got, after)
	if want, have := expectedChanges(before, after), f.changesOf(second.ID); !slices.Equal(want, have) {
		t.Errorf("recipient events of the delta sync:\n%s\nwant:\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}
	counters := f.sim.Counters()
	for _, p := range graphPaths(counters) {
		if !readsChanges(p) {
			t.Errorf("the delta sync made a non-delta Graph request: %s", p)
		}
	}
	if n := counters["GET /v1.0/groups/delta 200"]; n < 2 {
		t.Errorf("the groups delta round took %d page(s); the 30 member changes should have split All Company across pages (%v)", n, counters)
	}

	// Restoring the soft-deleted user brings the same recipient back.
	must(f.sim.RestoreUser(ids[2]))
	third := f.syncJob()
	var r []recipientJSON
	f.cliJSON(&r, "recipients", "list", "--status", "active")
	if !slices.ContainsFunc(r, func(x recipientJSON) bool { return x.ObjectID == ids[2] }) || third.Summary.RecipientsRestored != 1 {
		t.Errorf("restored user: summary %+v", third.Summary)
	}
	assertConvergedTo(t, f, expectedUnder(f.sim, "demo", deltaPolicy, []string{}))
}

// An expired delta token makes the next sync read everything; the result
// equals a fresh full sync and the summary says why.
func TestExpiredDeltaTokenResyncs(t *testing.T) {
	for _, mode := range []graphsim.ExpiryMode{graphsim.ExpiryBadRequest, graphsim.ExpiryGone, graphsim.ExpiryGoneEmpty} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{demoExtra: deltaImport})
			f.start()
			f.syncJob()
			// A user disappears in a way delta would not tell after expiry.
			must := func(err error) {
				if err != nil {
					t.Fatal(err)
				}
			}
			exp := expectedUnder(f.sim, "demo", deltaPolicy, []string{})
			must(f.sim.DeleteUser(exp[0].ObjectID, true))
			f.sim.ExpireDeltaTokens(mode)
			j := f.syncJob()
			if j.State != events.StateCompleted || !j.Summary.FullRead || j.Summary.ResyncReason == "" {
				t.Fatalf("after expiry: %s %q %+v", j.State, j.Reason, j.Summary)
			}
			var got []recipientJSON
			f.cliJSON(&got, "recipients", "list", "--status", "active")
			assertRecipients(t, got, expectedUnder(f.sim, "demo", deltaPolicy, []string{}))
		})
	}
}

// Throttling and server errors cost retries, not correctness; Graph down
// past the retry budget fails the job without touching recipients, and
// the next healthy sync continues from the old cursor.
func TestGraphFaults(t *testing.T) {
	f := newFixtureWith(t, `nats { listen = "127.0.0.1:0" }`, fixtureOptions{demoExtra: deltaImport,
		demoConfig: `    retry_budget       = "3s"`})
	f.start()
	f.sim.SetFaults(graphsim.Faults{ThrottleRate: 0.3, ServerErrorRate: 0.1, RetryAfter: "0.2", Seed: 5})
	j := f.syncJob()
	if j.State != events.StateCompleted || j.Summary.Retries == 0 {
		t.Fatalf("sync under 30%% throttling and 10%% 503: %s %q %+v", j.State, j.Reason, j.Summary)
	}
	var got []recipientJSON
	f.cliJSON(&got, "recipients", "list", "--status", "active")
	assertRecipients(t, got, expectedUnder(f.sim, "demo", deltaPolicy, []string{}))

	f.sim.SetFaults(graphsim.Faults{})
	exp := expectedUnder(f.sim, "demo", deltaPolicy, []string{})
	if err := f.sim.UpdateUser(exp[0].ObjectID, func(u *graphsim.User) { u.Department = "Moved" }); err != nil {
		t.Fatal(err)
	}
	f.sim.SetFaults(graphsim.Faults{Down: true})
	out, _, code := f.cli("sync", "demo", "--wait", "-o", "json")
	if code == 0 {
		t.Fatalf("sync with Graph down exited 0: %s", out)
	}
	jobs, err := f.api().Jobs(context.Background(), "demo", 1)
	if err != nil || len(jobs) != 1 {
		t.Fatal(err)
	}
	failed := jobs[0]
	if failed.State != events.StateFailed || !(strings.Contains(failed.Reason, "503") || strings.Contains(strings.ToLower(failed.Reason), "servicenotavailable")) {
		t.Errorf("with Graph down: %s %q", failed.State, failed.Reason)
	}
	// The summary agrees with the reason: the requests were made and
	// retried, not "0 Graph requests".
	if s := failed.Summary; s == nil || s.DirectoryRequests == 0 || s.GraphRequests != s.DirectoryRequests || s.Retries == 0 {
		t.Errorf("the FAILED job's summary counts no requests or retries: %+v (reason %q)", s, failed.Reason)
	}
	var still []recipientJSON
	f.cliJSON(&still, "recipients", "list", "--status", "active")
	assertRecipients(t, still, got)

	f.sim.SetFaults(graphsim.Faults{})
	f.sim.ResetCounters()
	next := f.syncJob()
	if next.State != events.StateCompleted || next.Summary.FullRead || next.Summary.RecipientsUpdated != 1 {
		t.Errorf("healthy sync after the failure: %s %q %+v", next.State, next.Reason, next.Summary)
	}
	for _, p := range graphPaths(f.sim.Counters()) {
		if !readsChanges(p) {
			t.Errorf("the sync after the failure made a non-delta request: %s (the old cursor was lost)", p)
		}
	}
}
