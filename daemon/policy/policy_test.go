package policy

import (
	"maps"
	"slices"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// directory is a small tenant with one user of every kind the policy
// tells apart.
func directory() *projections.Directory {
	u := func(id, mail, upn string, enabled bool, typ string, licenses int) events.User {
		return events.User{ID: id, Mail: mail, UserPrincipalName: upn, DisplayName: id, AccountEnabled: enabled,
			UserType: typ, AssignedLicenseCount: licenses}
	}
	d := &projections.Directory{
		Users: map[string]events.User{
			"ann":      u("ann", "Ann@contoso.com", "ann@contoso.onmicrosoft.com", true, "Member", 1),
			"bob":      u("bob", "bob@fabrikam.com", "bob@contoso.onmicrosoft.com", true, "Member", 1),
			"nomail":   u("nomail", "", "nomail@contoso.onmicrosoft.com", true, "Member", 1),
			"disabled": u("disabled", "disabled@contoso.com", "disabled@contoso.onmicrosoft.com", false, "Member", 1),
			"guest":    u("guest", "guest@partner.com", "guest_partner.com#EXT#@contoso.onmicrosoft.com", true, "Guest", 0),
			"nolic":    u("nolic", "nolic@contoso.com", "nolic@contoso.onmicrosoft.com", true, "Member", 0),
		},
		Groups: map[string]events.Group{
			"g-sales": {ID: "g-sales", DisplayName: "Sales", GroupTypes: []string{"Unified"}, MailEnabled: true},
			"g-sec":   {ID: "g-sec", DisplayName: "VPN Users", GroupTypes: []string{}, SecurityEnabled: true},
			"g-dist":  {ID: "g-dist", DisplayName: "Newsletter", GroupTypes: []string{}, MailEnabled: true},
		},
		Members: map[string]map[string]struct{}{
			"g-sales": {"ann": {}, "nolic": {}},
			"g-sec":   {"bob": {}, "ann": {}},
			"g-dist":  {"bob": {}},
		},
	}
	return d
}

func wanted(o Outcome) []string {
	return slices.Sorted(maps.Keys(o.Wanted))
}

func TestDecideOptions(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Policy)
		want    []string
		skipped map[string]string
	}{
		{"defaults: mail, enabled members, licensed or not", nil, []string{"ann", "bob", "nolic"},
			map[string]string{"nomail": SkipNoEmail, "disabled": SkipDisabled, "guest": SkipGuest}},
		{"email_from userPrincipalName gives the no-mail user an address", func(p *Policy) { p.EmailFrom = EmailFromUPN },
			[]string{"ann", "bob", "nolic", "nomail"}, nil},
		{"exclude_unlicensed", func(p *Policy) { p.ExcludeUnlicensed = true }, []string{"ann", "bob"},
			map[string]string{"nolic": SkipUnlicensed}},
		{"include_disabled", func(p *Policy) { p.IncludeDisabled = true }, []string{"ann", "bob", "disabled", "nolic"}, nil},
		{"include_guests", func(p *Policy) { p.IncludeGuests = true }, []string{"ann", "bob", "guest", "nolic"}, nil},
		{"include_groups by name, case-insensitive", func(p *Policy) { p.IncludeGroups = []string{"sales"} }, []string{"ann", "nolic"},
			map[string]string{"bob": SkipOutOfScope}},
		{"include_groups by ID, of a kind not shown", func(p *Policy) { p.IncludeGroups = []string{"g-sec"} }, []string{"ann", "bob"},
			map[string]string{"nolic": SkipOutOfScope}},
		{"exclude_groups wins over include_groups", func(p *Policy) {
			p.IncludeGroups = []string{"Sales", "VPN Users"}
			p.ExcludeGroups = []string{"Newsletter"}
		}, []string{"ann", "nolic"}, map[string]string{"bob": SkipOutOfScope}},
		{"exclude_groups alone", func(p *Policy) { p.ExcludeGroups = []string{"Sales"} }, []string{"bob"},
			map[string]string{"ann": SkipOutOfScope, "nolic": SkipOutOfScope}},
		{"include_domains", func(p *Policy) { p.IncludeDomains = []string{"contoso.com"} }, []string{"ann", "nolic"},
			map[string]string{"bob": SkipOutOfScope}},
		{"exclude_domains wins over include_domains", func(p *Policy) {
			p.IncludeDomains = []string{"contoso.com", "fabrikam.com"}
			p.ExcludeDomains = []string{"fabrikam.com"}
		}, []string{"ann", "nolic"}, nil},
		{"exclude_users by email (any case) and by ID", func(p *Policy) { p.ExcludeUsers = []string{"ANN@contoso.com", "bob"} },
			[]string{"nolic"}, map[string]string{"ann": SkipOutOfScope, "bob": SkipOutOfScope}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			if tt.mod != nil {
				tt.mod(&p)
			}
			o := p.Decide("demo", directory(), nil)
			if got := wanted(o); !slices.Equal(got, tt.want) {
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

func TestDecideFieldsAndGroupTypes(t *testing.T) {
	tests := []struct {
		types []string
		want  []string // groups shown on ann
	}{
		{nil, []string{"Sales"}}, // default: unified
		{[]string{"unified", "security"}, []string{"Sales", "VPN Users"}},
		{[]string{"security"}, []string{"VPN Users"}},
		{[]string{"distribution"}, []string{}},
	}
	for _, tt := range tests {
		p := Default()
		if tt.types != nil {
			p.GroupTypes = tt.types
		}
		ann := p.Decide("demo", directory(), nil).Wanted["ann"].Recipient
		if !slices.Equal(ann.Groups, tt.want) {
			t.Errorf("group_types %v: ann's groups %v, want %v", tt.types, ann.Groups, tt.want)
		}
		if ann.Email != "Ann@contoso.com" || ann.ID != "demo.ann" || ann.Connector != "demo" || ann.Status != events.RecipientActive {
			t.Errorf("ann = %+v (email kept as the directory spells it)", ann)
		}
	}
}

func TestDuplicateEmails(t *testing.T) {
	d := directory()
	d.Users["zed"] = events.User{ID: "zed", Mail: "ann@CONTOSO.com", AccountEnabled: true, UserType: "Member"}
	d.Users["aaa"] = events.User{ID: "aaa", Mail: "ANN@contoso.com", AccountEnabled: true, UserType: "Member"}
	p := Default()
	o := p.Decide("demo", d, nil)
	// Deterministic: the lowest object ID.
	if _, ok := o.Wanted["aaa"]; !ok || o.Skipped["ann"] != SkipDuplicateEmail || o.Skipped["zed"] != SkipDuplicateEmail {
		t.Errorf("wanted %v skipped %v", wanted(o), o.Skipped)
	}
	if len(o.Duplicates) != 1 {
		t.Errorf("duplicates = %v", o.Duplicates)
	}
	// The current holder of the email stays the recipient.
	cur := map[string]events.Recipient{"zed": {ObjectID: "zed", Email: "ann@CONTOSO.com", Status: events.RecipientActive}}
	o = p.Decide("demo", d, cur)
	if _, ok := o.Wanted["zed"]; !ok || o.Skipped["aaa"] != SkipDuplicateEmail {
		t.Errorf("with zed current: wanted %v skipped %v", wanted(o), o.Skipped)
	}
}

func TestMergeTagsAndUpdateExisting(t *testing.T) {
	cur := events.Recipient{ID: "demo.ann", Email: "old@contoso.com", Department: "Old", Tags: []string{"vip", "q3"},
		Groups: []string{"Old Group"}, Status: events.RecipientArchived}
	want := events.Recipient{ID: "demo.ann", Email: "ann@contoso.com", Department: "New", Tags: []string{"q4", "vip"},
		Groups: []string{"Sales"}, Status: events.RecipientActive}
	tests := []struct {
		name     string
		mode     string
		update   bool
		wantTags []string
		wantDept string
	}{
		{"append, update", TagModeAppend, true, []string{"vip", "q3", "q4"}, "New"},
		{"replace, update", TagModeReplace, true, []string{"q4", "vip"}, "New"},
		{"append, keep existing", TagModeAppend, false, []string{"vip", "q3"}, "Old"},
		{"replace, keep existing", TagModeReplace, false, []string{"vip", "q3"}, "Old"},
	}
	for _, tt := range tests {
		p := Default()
		p.TagMode, p.UpdateExisting = tt.mode, tt.update
		got, _ := p.Merge(want, &cur)
		if !slices.Equal(got.Tags, tt.wantTags) || got.Department != tt.wantDept || got.Status != events.RecipientActive {
			t.Errorf("%s: tags %v dept %q status %q; want %v %q active", tt.name, got.Tags, got.Department, got.Status, tt.wantTags, tt.wantDept)
		}
	}
	if got, _ := Default().Merge(want, nil); !slices.Equal(got.Tags, want.Tags) {
		t.Errorf("new recipient tags %v", got.Tags)
	}
}

func TestWithOneTimeOptions(t *testing.T) {
	f, tr := false, true
	p := Default()
	p.Tags = []string{"block"}
	got := p.With(&events.JobOptions{Tags: []string{"once"}, TagMode: TagModeReplace, UpdateExisting: &f, ExcludeUnlicensed: &tr})
	if !slices.Equal(got.Tags, []string{"once"}) || got.TagMode != TagModeReplace || got.UpdateExisting || !got.ExcludeUnlicensed {
		t.Errorf("With = %+v", got)
	}
	if !slices.Equal(p.Tags, []string{"block"}) {
		t.Errorf("With changed the connector's policy: %v", p.Tags)
	}
	if same := p.With(nil); !slices.Equal(same.Tags, p.Tags) {
		t.Error("With(nil) changed the policy")
	}
}

func TestUnknownScopeGroupWarns(t *testing.T) {
	p := Default()
	p.IncludeGroups = []string{"No Such Group"}
	o := p.Decide("demo", directory(), nil)
	if len(o.Wanted) != 0 || len(o.Warnings) != 1 {
		t.Errorf("wanted %v warnings %v", wanted(o), o.Warnings)
	}
}
