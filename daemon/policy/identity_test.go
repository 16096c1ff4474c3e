package policy

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// people is a directory of a person with aliases and a manager, the
// manager, and a shared, a room and an equipment mailbox (sign-in
// blocked, as Exchange creates them) and an enabled shared one.
func people() *projections.Directory {
	person := func(id, mail string, proxies []string, attrs map[string]string, purpose string, enabled bool) events.User {
		return events.User{ID: id, Mail: mail, UserPrincipalName: id + "@contoso.onmicrosoft.com", DisplayName: id,
			AccountEnabled: enabled, UserType: "Member", AssignedLicenseCount: 1,
			ProxyAddresses: events.ListOf(proxies...), Attributes: events.MapOf(attrs), MailboxPurpose: purpose}
	}
	return &projections.Directory{
		Users: map[string]events.User{
			"ann": person("ann", "ann@contoso.com", []string{"smtp:ann@contoso.com", "SMTP:Ann.Lee@contoso.com", "smtp:al@contoso.com"},
				map[string]string{"preferredLanguage": "de-DE", "manager": "max", "officeLocation": "Oslo HQ", "extensionAttribute3": "CC-12"}, "user", true),
			"max":       person("max", "max@contoso.com", []string{"SMTP:max@contoso.com"}, map[string]string{"preferredLanguage": "en-GB"}, "user", true),
			"reception": person("reception", "reception@contoso.com", []string{"SMTP:reception@contoso.com"}, nil, "shared", false),
			"info":      person("info", "info@contoso.com", []string{"SMTP:info@contoso.com"}, nil, "shared", true),
			"room":      person("room", "room.4-12@contoso.com", nil, nil, "room", false),
			"beamer":    person("beamer", "beamer@contoso.com", nil, nil, "equipment", false),
			// The manager named is no user of this directory.
			"eve": person("eve", "eve@contoso.com", nil, map[string]string{"manager": "gone"}, "", true),
			// Disabled with a mailbox: the connector could not say what
			// it is, and said it has none.
			"leaver": person("leaver", "leaver@contoso.com", nil, nil, events.MailboxUnknown, false),
			"nobox":  person("nobox", "nobox@contoso.com", nil, nil, events.MailboxNone, false),
		},
		Groups:  map[string]events.Group{},
		Members: map[string]map[string]struct{}{},
	}
}

func TestMailboxesAliasesAndPrimary(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Policy)
		want    []string
		skipped map[string]string
	}{
		{"default: shared, room and equipment mailboxes are skipped as what they are, disabled or not", nil,
			[]string{"ann", "eve", "max"},
			map[string]string{"reception": SkipSharedMailbox, "info": SkipSharedMailbox, "room": SkipRoom, "beamer": SkipEquipment}},
		{"exclude_mailboxes = [] includes the enabled shared mailbox", func(p *Policy) { p.ExcludeMailboxes = []string{} },
			[]string{"ann", "eve", "info", "max"},
			map[string]string{"reception": SkipDisabled, "room": SkipDisabled, "beamer": SkipDisabled}},
		{"an excluded purpose other than the three; a user not classified is kept", func(p *Policy) { p.ExcludeMailboxes = []string{"user"} },
			[]string{"eve", "info"},
			map[string]string{"ann": "mailbox_user", "max": "mailbox_user"}},
		{"exclude_users names an alias", func(p *Policy) { p.ExcludeUsers = []string{"al@contoso.com"} },
			[]string{"eve", "max"}, map[string]string{"ann": SkipOutOfScope}},
		{"exclude_users names the primary SMTP address in another case", func(p *Policy) { p.ExcludeUsers = []string{"ann.lee@CONTOSO.com"} },
			[]string{"eve", "max"}, map[string]string{"ann": SkipOutOfScope}},
		{"email_from primary_smtp: users without one have no email", func(p *Policy) { p.EmailFrom = EmailFromPrimary },
			[]string{"ann", "max"}, map[string]string{"eve": SkipNoEmail}},
		{"include_disabled: a disabled account with a mailbox the connector could not classify is taken for a shared one", func(p *Policy) { p.IncludeDisabled = true },
			[]string{"ann", "eve", "max", "nobox"},
			map[string]string{"leaver": SkipSharedMailbox, "reception": SkipSharedMailbox, "room": SkipRoom, "beamer": SkipEquipment}},
		{"include_disabled, exclude_mailboxes = []: no guess", func(p *Policy) { p.IncludeDisabled, p.ExcludeMailboxes = true, []string{} },
			[]string{"ann", "beamer", "eve", "info", "leaver", "max", "nobox", "reception", "room"}, nil},
		{"include_disabled, shared not excluded: no guess", func(p *Policy) { p.IncludeDisabled, p.ExcludeMailboxes = true, []string{"room"} },
			[]string{"ann", "beamer", "eve", "info", "leaver", "max", "nobox", "reception"}, map[string]string{"room": SkipRoom}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			if tt.mod != nil {
				tt.mod(&p)
			}
			o := p.Decide("demo", people(), nil)
			if got := slices.Sorted(maps.Keys(o.Wanted)); !slices.Equal(got, tt.want) {
				t.Errorf("recipients %v, want %v (skipped %v)", got, tt.want, o.Skipped)
			}
			for id, reason := range tt.skipped {
				if o.Skipped[id] != reason {
					t.Errorf("%s skipped as %q, want %q", id, o.Skipped[id], reason)
				}
			}
		})
	}
}

// A recipient carries its aliases, language and manager, and the fields
// the attributes block maps.
func TestRecipientCarries(t *testing.T) {
	p := Default()
	p.Attributes = map[string]string{"site": "officeLocation", "cost_center": "extensionAttribute3", "city": "city"}
	o := p.Decide("demo", people(), nil)
	ann := o.Wanted["ann"].Recipient
	want := events.Recipient{Aliases: []string{"al@contoso.com", "ann.lee@contoso.com"}, Language: "de-DE",
		ManagerID: "max", ManagerEmail: "max@contoso.com", Attributes: map[string]string{"site": "Oslo HQ", "cost_center": "CC-12"}}
	got := events.Recipient{Aliases: ann.Aliases, Language: ann.Language, ManagerID: ann.ManagerID, ManagerEmail: ann.ManagerEmail, Attributes: ann.Attributes}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ann carries %+v\nwant        %+v", got, want)
	}
	if ann.Email != "ann@contoso.com" {
		t.Errorf("ann's email %q; want her mail", ann.Email)
	}
	// Under primary_smtp the mail address becomes an alias.
	p.EmailFrom = EmailFromPrimary
	ann = p.Decide("demo", people(), nil).Wanted["ann"].Recipient
	if ann.Email != "Ann.Lee@contoso.com" || !slices.Equal(ann.Aliases, []string{"al@contoso.com", "ann@contoso.com"}) {
		t.Errorf("primary_smtp: ann is %q with aliases %v; want Ann.Lee@contoso.com with al@ and ann@", ann.Email, ann.Aliases)
	}
	// A manager outside the directory is named by ID only; no
	// attributes, no map.
	eve := o.Wanted["eve"].Recipient
	if eve.ManagerID != "gone" || eve.ManagerEmail != "" || eve.Attributes != nil || eve.Aliases != nil || eve.Language != "" {
		t.Errorf("eve carries manager %q <%s>, attributes %v, aliases %v, language %q; want manager gone without email and nothing else",
			eve.ManagerID, eve.ManagerEmail, eve.Attributes, eve.Aliases, eve.Language)
	}
	// The manager's email comes from a directory cut down to the users
	// decided, through Others.
	d := people()
	max := d.Users["max"]
	delete(d.Users, "max")
	d.Others = func(id string) (events.User, bool) { return max, id == "max" }
	if got := p.Decide("demo", d, nil).Wanted["ann"].Recipient.ManagerEmail; got != "max@contoso.com" {
		t.Errorf("with the manager among Others: manager email %q; want max@contoso.com", got)
	}
}

func TestReadAttributes(t *testing.T) {
	p := Default()
	if got := p.ReadAttributes(); !slices.Equal(got, []string{"preferredLanguage", "manager"}) {
		t.Errorf("default ReadAttributes %v; want the language and the manager", got)
	}
	p.Attributes = map[string]string{"site": "officeLocation", "cc": "extensionAttribute3", "lang": "preferredLanguage"}
	if got := p.ReadAttributes(); !slices.Equal(got, []string{"preferredLanguage", "manager", "officeLocation", "extensionAttribute3"}) {
		t.Errorf("ReadAttributes %v", got)
	}
	if !p.ReadMailboxPurpose() {
		t.Error("the default policy excludes shared mailboxes but does not ask for mailbox purposes")
	}
	p.ExcludeMailboxes = []string{}
	if p.ReadMailboxPurpose() {
		t.Error("exclude_mailboxes = [] still asks for mailbox purposes")
	}
}

// An address is one mailbox's: a user whose email is another user's
// alias, or an alias of another connector's active recipient, is a
// duplicate, since mail to it reaches the alias's owner.
func TestAliasesCollide(t *testing.T) {
	d := people()
	// Old mail left on a leaver's successor: kim's mail is ann's alias.
	d.Users["kim"] = events.User{ID: "kim", Mail: "al@contoso.com", DisplayName: "kim", AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1}
	p := Default()
	o := p.Decide("demo", d, nil)
	if o.Skipped["kim"] != SkipDuplicateEmail || o.HeldBy["kim"] != "user ann, an alias of it" {
		t.Errorf("kim: skipped %q held by %q; want duplicate_email held by ann, whose alias it is", o.Skipped["kim"], o.HeldBy["kim"])
	}
	if _, ok := o.Wanted["ann"]; !ok {
		t.Error("ann, whose alias kim wants, is not a recipient")
	}
	// The alias is ann's mailbox's whether or not ann is a recipient.
	ann := d.Users["ann"]
	ann.AccountEnabled = false
	d.Users["ann"] = ann
	if o = p.Decide("demo", d, nil); o.Skipped["kim"] != SkipDuplicateEmail {
		t.Errorf("with ann disabled, kim is skipped as %q; want duplicate_email", o.Skipped["kim"])
	}
	// Another connector's recipient has max's address as an alias (the
	// same person in Active Directory and Entra).
	other := map[string]events.Recipient{"x1": {ID: "onprem.x1", Connector: "onprem", ObjectID: "x1", Email: "m.smith@contoso.com",
		Aliases: []string{"max@contoso.com"}, Status: events.RecipientActive}}
	o = p.DecideAmong("demo", people(), map[string]map[string]events.Recipient{"onprem": other})
	if o.Skipped["max"] != SkipDuplicateEmail || o.HeldBy["max"] != `recipient onprem.x1 of connector "onprem", an alias of it` {
		t.Errorf("max: skipped %q held by %q; want duplicate_email held by onprem.x1", o.Skipped["max"], o.HeldBy["max"])
	}
	// An archived recipient holds nothing.
	other["x1"] = events.Recipient{ID: "onprem.x1", Connector: "onprem", ObjectID: "x1", Email: "m.smith@contoso.com",
		Aliases: []string{"max@contoso.com"}, Status: events.RecipientArchived}
	if o = p.DecideAmong("demo", people(), map[string]map[string]events.Recipient{"onprem": other}); o.Skipped["max"] != "" {
		t.Errorf("max skipped %q by an archived recipient's alias", o.Skipped["max"])
	}
}
