package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/graphsim"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
)

// TestUpdateExistingFalseTakeover: with update_existing = false a stored
// recipient keeps the email it was created with, so a new user who takes
// over a renamed user's former mail must not become a second active
// recipient with that email (issue 13). The real daemon and plugin sync a
// graphsim tenant in which, between two syncs, one user is renamed and a
// new hire takes the former mail, a user leaves and a new hire takes its
// mail, and a new user gets a current recipient's mail in other letter
// case. Afterwards each email has one active recipient: the renamed
// user's recipient keeps its mail and its heir is skipped as
// duplicate_email naming it, the leaver's recipient is archived and its
// successor created, the other-case twin is skipped; a further sync
// decides the same.
func TestUpdateExistingFalseTakeover(t *testing.T) {
	f := newFixtureWith(t, "", fixtureOptions{demoExtra: "  import {\n    update_existing = false\n  }\n"})
	f.start()
	sync := func() events.Summary {
		t.Helper()
		var job jobJSON
		f.cliJSON(&job, "sync", "demo", "--wait")
		var sum events.Summary
		if job.State != "COMPLETED" || json.Unmarshal(job.Summary, &sum) != nil {
			t.Fatalf("sync: %s %s %s", job.State, job.Reason, job.Summary)
		}
		return sum
	}
	sync()
	exp := expectedRecipients(f.sim)
	if len(exp) < 3 {
		t.Fatalf("only %d recipients after the first sync", len(exp))
	}
	renamed, leaver, twinOf := exp[0], exp[1], exp[2]

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	hire := func(name, mail string) string {
		t.Helper()
		u, err := f.sim.AddUser(graphsim.User{DisplayName: name, UserPrincipalName: strings.ToLower(name) + "@" + f.sim.Tenant().Domain,
			Mail: mail, UserType: "Member", AccountEnabled: true})
		must(err)
		return u.ID
	}
	must(f.sim.UpdateUser(renamed.ObjectID, func(u *graphsim.User) { u.Mail = "renamed." + u.Mail }))
	heir := hire("Heir", renamed.Email)
	must(f.sim.DeleteUser(leaver.ObjectID, true))
	successor := hire("Successor", leaver.Email)
	twin := hire("Twin", strings.ToUpper(twinOf.Email))

	sum := sync()
	if sum.Skipped[policy.SkipDuplicateEmail] != 2 || sum.RecipientsCreated != 1 || sum.RecipientsArchived != 1 {
		t.Errorf("second sync: skipped %v, %d created, %d archived; want 2 duplicate_email (heir and twin), 1 created (successor), 1 archived (leaver)",
			sum.Skipped, sum.RecipientsCreated, sum.RecipientsArchived)
	}
	wantDup := fmt.Sprintf("%s: user %s is the recipient; skipped %s", strings.ToLower(renamed.Email), renamed.ObjectID, heir)
	if !slices.Contains(sum.DuplicateEmails, wantDup) {
		t.Errorf("duplicateEmails %q lack %q", sum.DuplicateEmails, wantDup)
	}

	check := func(when string) {
		t.Helper()
		rs := recipientsByID(t, f)
		holder := map[string]string{}
		for id, r := range rs {
			if r.Status != "active" {
				continue
			}
			k := strings.ToLower(r.Email)
			if other, ok := holder[k]; ok {
				t.Errorf("%s: active recipients %s and %s share the email %s", when, other, id, k)
			}
			holder[k] = id
		}
		if r := rs[renamed.ObjectID]; r.Status != "active" || r.Email != renamed.Email {
			t.Errorf("%s: the renamed user's recipient is %s %s, want active %s (update_existing = false keeps it)", when, r.Status, r.Email, renamed.Email)
		}
		if r := rs[leaver.ObjectID]; r.Status != "archived" {
			t.Errorf("%s: the leaver's recipient is %q, want archived", when, r.Status)
		}
		if r := rs[successor]; r.Status != "active" || r.Email != leaver.Email {
			t.Errorf("%s: the successor's recipient is %q %q, want active %s", when, r.Status, r.Email, leaver.Email)
		}
		for _, id := range []string{heir, twin} {
			if r, ok := rs[id]; ok {
				t.Errorf("%s: user %s, whose mail is another recipient's, is a recipient: %+v", when, id, r)
			}
		}
	}
	check("after the takeover")

	sum = sync()
	if sum.RecipientsCreated+sum.RecipientsUpdated+sum.RecipientsArchived+sum.RecipientsRestored+sum.RecipientsRemoved != 0 ||
		sum.Skipped[policy.SkipDuplicateEmail] != 2 {
		t.Errorf("a further sync of an unchanged tenant: %+v", sum)
	}
	check("after a further sync")
	report(t, faultRow{Case: "policy/mail-takeover", Seed: "-", Fault: "update_existing = false: a new hire takes a renamed user's former mail, a successor a leaver's, a user another's mail in other case",
		AtFault: "one active recipient per email; the holder named"})
}
