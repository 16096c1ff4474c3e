package policy

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"resource", "resource", true},
		{"resource", "resources", false},
		{"resource", "", false},
		{"*", "", true},
		{"*", "anything", true},
		{"conference*", "conference room 4", true},
		{"conference*", "the conference", false},
		{"*room", "meeting room", true},
		{"*room", "room", true},
		{"*room", "roomy", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*b*c", "abcbc", true},
		{"**x", "yyx", true},
		{"*ü*", "münchen", true},
		{"m?nchen", "münchen", false}, // ? is no wildcard
	}
	for _, tt := range tests {
		if got := matchPattern(tt.pattern, tt.s); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v; want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// filtered is a directory of people and resource accounts a tenant marks
// in its own ways: employeeType and officeLocation.
func filtered() *projections.Directory {
	user := func(id string, attrs map[string]string) events.User {
		return events.User{ID: id, Mail: id + "@contoso.com", DisplayName: id, AccountEnabled: true, UserType: "Member",
			AssignedLicenseCount: 1, Attributes: events.MapOf(attrs)}
	}
	return &projections.Directory{
		Users: map[string]events.User{
			"ann":   user("ann", map[string]string{"employeeType": "Employee", "officeLocation": "Oslo HQ"}),
			"bob":   user("bob", nil),
			"conf":  user("conf", map[string]string{"officeLocation": "Conference 4.12"}),
			"board": user("board", map[string]string{"officeLocation": "Board ROOM"}),
			"res":   user("res", map[string]string{"employeeType": "Resource"}),
			"blank": user("blank", map[string]string{"employeeType": "  "}),
		},
		Groups:  map[string]events.Group{},
		Members: map[string]map[string]struct{}{},
	}
}

func TestExcludeFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter map[string][]string
		want   []string
	}{
		{"unset", nil, []string{"ann", "blank", "board", "bob", "conf", "res"}},
		{"a value, case-insensitively", map[string][]string{"employeeType": {"resource"}}, []string{"ann", "blank", "board", "bob", "conf"}},
		{"any pattern of any attribute", map[string][]string{"employeeType": {"resource"}, "officeLocation": {"conference*", "*room"}},
			[]string{"ann", "blank", "bob"}},
		{"a pattern matches the whole value", map[string][]string{"officeLocation": {"oslo"}}, []string{"ann", "blank", "board", "bob", "conf", "res"}},
		{"* matches any value, never an absent or blank one", map[string][]string{"employeeType": {"*"}}, []string{"blank", "board", "bob", "conf"}},
		{"an attribute nobody has", map[string][]string{"extensionAttribute9": {"*"}}, []string{"ann", "blank", "board", "bob", "conf", "res"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			p.ExcludeFilter = tt.filter
			o := p.Decide("demo", filtered(), nil)
			if got := slices.Sorted(maps.Keys(o.Wanted)); !slices.Equal(got, tt.want) {
				t.Errorf("recipients %v; want %v", got, tt.want)
			}
			for id, reason := range o.Skipped {
				if reason != SkipOutOfScope {
					t.Errorf("%s skipped as %q; want %q", id, reason, SkipOutOfScope)
				}
			}
			// The rule reads the user alone: classifying mailboxes is
			// not asked for the users it leaves out.
			for id, u := range filtered().Users {
				if _, want := o.Wanted[id]; p.PassesUserRules(id, u) != want {
					t.Errorf("PassesUserRules(%s) = %v; Decide wants it: %v", id, !want, want)
				}
			}
		})
	}
}

func TestExcludeFilterReadAttributes(t *testing.T) {
	p := Default()
	p.Attributes = map[string]string{"site": "officeLocation"}
	p.ExcludeFilter = map[string][]string{"officeLocation": {"*room"}, "extensionAttribute2": {"shared"}, "employeeType": {"resource"}}
	want := []string{"preferredLanguage", "manager", "employeeType", "officeLocation", "extensionAttribute2"}
	if got := p.ReadAttributes(); !slices.Equal(got, want) {
		t.Errorf("ReadAttributes %v; want %v", got, want)
	}
}

func TestExplainExcludeFilter(t *testing.T) {
	filter := map[string][]string{"employeeType": {"resource"}, "officeLocation": {"conference*", "*room"}}
	tests := []struct {
		id     string
		filter map[string][]string
		want   string // the exclude_filter verdict, "" for none
	}{
		{"board", filter, `exclude_filter fail officeLocation "Board ROOM" matches "*room"`},
		{"res", filter, `exclude_filter fail employeeType "Resource" matches "resource"`},
		{"ann", filter, `exclude_filter pass no pattern matches (employeeType "Employee", officeLocation "Oslo HQ")`},
		{"bob", filter, `exclude_filter pass no pattern matches (employeeType (none), officeLocation (none))`},
		{"res", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			p := Default()
			p.ExcludeFilter = tt.filter
			ex, ok := p.Explain("demo", filtered(), nil, tt.id)
			if !ok {
				t.Fatal("no explanation")
			}
			got := ""
			for _, line := range strings.Split(explained(ex), "\n") {
				if strings.HasPrefix(line, "exclude_filter") {
					got = line
				}
			}
			if got != tt.want {
				t.Errorf("verdict %q; want %q\n%s", got, tt.want, explained(ex))
			}
			if failed := strings.Contains(tt.want, " fail "); ex.Included == failed || (failed && ex.Reason != SkipOutOfScope) {
				t.Errorf("included %v (%q); the verdict says %q", ex.Included, ex.Reason, tt.want)
			}
		})
	}
}

// Without MailboxSettings.Read the connector cannot say what a mailbox is
// for: under include_disabled a disabled account with a mailbox is taken
// for a shared one, and explain says it is a guess.
func TestSharedMailboxFallback(t *testing.T) {
	user := func(purpose string, enabled bool, mail string) events.User {
		return events.User{ID: "u", Mail: mail, UserPrincipalName: "u@contoso.onmicrosoft.com", AccountEnabled: enabled,
			UserType: "Member", AssignedLicenseCount: 1, MailboxPurpose: purpose}
	}
	tests := []struct {
		name    string
		u       events.User
		mod     func(*Policy)
		reason  string // "" for included
		mailbox string // the mailbox verdict
	}{
		{"disabled, with a mailbox, not classified: taken for a shared mailbox", user(events.MailboxUnknown, false, "u@contoso.com"), nil,
			SkipSharedMailbox, "mailbox        fail not classified (the connector could not say); sign-in disabled with a mailbox, so taken for a shared mailbox: a guess until the connector is granted MailboxSettings.Read"},
		{"the connector said it is a person's", user("user", false, "u@contoso.com"), nil,
			"", "mailbox        pass user mailbox"},
		{"enabled", user(events.MailboxUnknown, true, "u@contoso.com"), nil,
			"", "mailbox        n/a  not classified: the connector could not say (grant it MailboxSettings.Read)"},
		{"include_disabled = false: skipped as disabled", user(events.MailboxUnknown, false, "u@contoso.com"), func(p *Policy) { p.IncludeDisabled = false },
			SkipDisabled, "mailbox        n/a  not classified: the connector could not say (grant it MailboxSettings.Read)"},
		{"exclude_mailboxes = []: no guess", user(events.MailboxUnknown, false, "u@contoso.com"), func(p *Policy) { p.ExcludeMailboxes = []string{} },
			"", "mailbox        n/a  not classified: the connector could not say (grant it MailboxSettings.Read)"},
		{"never asked (a connector that cannot classify): no guess", user("", false, "u@contoso.com"), nil,
			"", "mailbox        n/a  not classified"},
		{"no mail under email_from = userPrincipalName: no guess", user(events.MailboxUnknown, false, ""), func(p *Policy) { p.EmailFrom = EmailFromUPN },
			"", "mailbox        n/a  not classified: the connector could not say (grant it MailboxSettings.Read)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			p.IncludeDisabled = true
			if tt.mod != nil {
				tt.mod(&p)
			}
			d := &projections.Directory{Users: map[string]events.User{"u": tt.u}, Groups: map[string]events.Group{}, Members: map[string]map[string]struct{}{}}
			if got := p.Decide("demo", d, nil).Skipped["u"]; got != tt.reason {
				t.Errorf("skipped as %q; want %q", got, tt.reason)
			}
			ex, _ := p.Explain("demo", d, nil, "u")
			if got := strings.Split(explained(ex), "\n")[1]; got != tt.mailbox {
				t.Errorf("mailbox verdict:\n%s\nwant:\n%s", got, tt.mailbox)
			}
			// The guess is no rule of the user alone: mailboxes stay
			// worth classifying.
			if !p.PassesUserRules("u", tt.u) && tt.reason != SkipDisabled {
				t.Error("PassesUserRules leaves the user out; the fallback must not apply there")
			}
		})
	}
}
