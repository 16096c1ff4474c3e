package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events"
)

// explained renders an explanation as the CLI's table does, for exact
// comparison.
func explained(ex Explanation) string {
	var b strings.Builder
	for _, v := range ex.Rules {
		fmt.Fprintf(&b, "%-14s %-4s %s\n", v.Rule, v.Verdict, v.Detail)
	}
	fmt.Fprintf(&b, "decision: %s", ex.Decision)
	return b.String()
}

func TestExplain(t *testing.T) {
	d := nestedDirectory()
	ann := d.Users["ann"]
	ann.ProxyAddresses = events.ListOf("SMTP:ann@contoso.com", "smtp:a.lee@contoso.com")
	d.Users["ann"] = ann
	d.Users["info"] = events.User{ID: "info", Mail: "info@contoso.com", DisplayName: "Info", AccountEnabled: true, UserType: "Member",
		AssignedLicenseCount: 0, MailboxPurpose: "shared"}
	d.Members["all"]["info"] = struct{}{}
	d.Users["kim"] = events.User{ID: "kim", Mail: "A.Lee@contoso.com", DisplayName: "Kim", AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1}
	d.Members["eu"]["kim"] = struct{}{}
	p := Default()
	p.IncludeGroups = []string{"All Staff"}
	p.ExcludeGroups = []string{"Solo"}
	current := map[string]map[string]events.Recipient{"demo": {
		"dan": {ID: "demo.dan", Connector: "demo", ObjectID: "dan", Email: "dan@contoso.com", Status: events.RecipientActive},
	}}
	tests := []struct {
		id, want string
		included bool
		reason   string
	}{
		{"dan", `email          pass dan@contoso.com, from mail (email_from = "mail")
mailbox        n/a  not classified
enabled        pass account enabled
guest          pass member
licence        n/a  not checked (exclude_unlicensed = false)
exclude_users  n/a  none listed
domains        n/a  no domain rule
include_groups pass in All Staff > Europe > Oslo > Oslo Sales
exclude_groups pass in none
duplicate      pass no other user or recipient has dan@contoso.com
decision: included: user passes the import policy; recipient demo.dan is active`, true, ""},
		{"eve", `email          pass eve@contoso.com, from mail (email_from = "mail")
mailbox        n/a  not classified
enabled        pass account enabled
guest          pass member
licence        n/a  not checked (exclude_unlicensed = false)
exclude_users  n/a  none listed
domains        n/a  no domain rule
include_groups fail in none of "All Staff"
exclude_groups pass in none
duplicate      n/a  not reached
decision: excluded: out of the import scope (groups, domains or excluded users)`, false, SkipOutOfScope},
		{"info", `email          pass info@contoso.com, from mail (email_from = "mail")
mailbox        fail shared mailbox; exclude_mailboxes lists shared
enabled        pass account enabled
guest          pass member
licence        n/a  not checked (exclude_unlicensed = false)
exclude_users  n/a  none listed
domains        n/a  no domain rule
include_groups pass in All Staff
exclude_groups pass in none
duplicate      n/a  not reached
decision: excluded: shared mailbox (exclude_mailboxes)`, false, SkipSharedMailbox},
		{"kim", `email          pass A.Lee@contoso.com, from mail (email_from = "mail")
mailbox        n/a  not classified
enabled        pass account enabled
guest          pass member
licence        n/a  not checked (exclude_unlicensed = false)
exclude_users  n/a  none listed
domains        n/a  no domain rule
include_groups pass in All Staff > Europe
exclude_groups pass in none
duplicate      fail A.Lee@contoso.com is held by user ann, an alias of it
decision: excluded: another user has the same email address`, false, SkipDuplicateEmail},
		{"ann", `email          pass ann@contoso.com, from mail (email_from = "mail")
mailbox        n/a  not classified
enabled        pass account enabled
guest          pass member
licence        n/a  not checked (exclude_unlicensed = false)
exclude_users  n/a  none listed
domains        n/a  no domain rule
include_groups pass in All Staff
exclude_groups fail in Solo
duplicate      n/a  not reached
decision: excluded: out of the import scope (groups, domains or excluded users)`, false, SkipOutOfScope},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			ex, ok := p.Explain("demo", d, current, tt.id)
			if !ok {
				t.Fatal("no explanation")
			}
			if got := explained(ex); got != tt.want {
				t.Errorf("explanation:\n%s\nwant:\n%s", got, tt.want)
			}
			if ex.Included != tt.included || ex.Reason != tt.reason {
				t.Errorf("included %v reason %q; want %v %q", ex.Included, ex.Reason, tt.included, tt.reason)
			}
			// The decision is the policy's own.
			o := p.Decide("demo", d, current["demo"])
			if _, wanted := o.Wanted[tt.id]; wanted != ex.Included || o.Skipped[tt.id] != ex.Reason {
				t.Errorf("Decide wants %s: %v (skipped %q); the explanation says %v (%q)", tt.id, wanted, o.Skipped[tt.id], ex.Included, ex.Reason)
			}
		})
	}
	if _, ok := p.Explain("demo", d, current, "nobody"); ok {
		t.Error("an explanation of a user the directory lacks")
	}
}
