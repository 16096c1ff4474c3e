package policy

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// TestOneRecipientPerEmail: who gets an email that several want, against
// the directory, this connector's stored recipients and other connectors'.
func TestOneRecipientPerEmail(t *testing.T) {
	user := func(id, mail string, enabled bool) events.User {
		return events.User{ID: id, Mail: mail, DisplayName: id, AccountEnabled: enabled, UserType: "Member"}
	}
	rec := func(connector, id, email, status string) events.Recipient {
		return events.Recipient{ID: RecipientID(connector, id), Connector: connector, ObjectID: id, Email: email,
			Groups: []string{}, Tags: []string{}, Status: status}
	}
	const active, archived = events.RecipientActive, events.RecipientArchived
	tests := []struct {
		name       string
		update     bool
		onRemoved  string
		users      []events.User
		recipients []events.Recipient // of connector "demo" unless another is named
		want       []string           // wanted object IDs
		heldBy     map[string]string  // skipped as duplicate_email → holder
		released   []string
		warning    string // a substring of the only warning
	}{
		{name: "update_existing=false: the stored, stale email is still taken", update: false, onRemoved: OnRemovedArchive,
			users:      []events.User{user("a", "a.new@contoso.com", true), user("b", "a@contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "a", "a@contoso.com", active)},
			want:       []string{"a"}, heldBy: map[string]string{"b": "user a"}},
		{name: "update_existing=true: a renamed user's old email goes to who takes it", update: true, onRemoved: OnRemovedArchive,
			users:      []events.User{user("a", "a.new@contoso.com", true), user("b", "a@contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "a", "a@contoso.com", active)},
			want:       []string{"a", "b"}},
		{name: "update_existing=false: a leaver's email goes to who takes it", update: false, onRemoved: OnRemovedArchive,
			users:      []events.User{user("b", "a@contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "a", "a@contoso.com", active)},
			want:       []string{"b"}},
		{name: "keep: a disabled user's recipient yields its email, case aside", update: false, onRemoved: OnRemovedKeep,
			users:      []events.User{user("a", "a@contoso.com", false), user("b", "A@Contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "a", "a@contoso.com", active)},
			want:       []string{"b"}, released: []string{"a"}},
		{name: "keep: a leaver's recipient nobody's email is kept", update: true, onRemoved: OnRemovedKeep,
			users:      []events.User{user("b", "b@contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "a", "a@contoso.com", active)},
			want:       []string{"b"}},
		{name: "keep: of two kept recipients with one email (stored before the rule), the lowest ID stays", update: true, onRemoved: OnRemovedKeep,
			recipients: []events.Recipient{rec("demo", "b", "x@contoso.com", active), rec("demo", "a", "X@contoso.com", active)},
			released:   []string{"b"}},
		{name: "the current holder keeps an email a lower ID now has too", update: true, onRemoved: OnRemovedDelete,
			users:      []events.User{user("z", "x@contoso.com", true), user("a", "X@CONTOSO.COM", true)},
			recipients: []events.Recipient{rec("demo", "z", "x@contoso.com", active)},
			want:       []string{"z"}, heldBy: map[string]string{"a": "user z"}},
		{name: "an archived recipient holds nothing: the lowest ID wins", update: true, onRemoved: OnRemovedArchive,
			users:      []events.User{user("z", "x@contoso.com", true), user("a", "x@contoso.com", true)},
			recipients: []events.Recipient{rec("demo", "z", "x@contoso.com", archived)},
			want:       []string{"a"}, heldBy: map[string]string{"z": "user a"}},
		{name: "another connector's active recipient keeps its email", update: true, onRemoved: OnRemovedArchive,
			users: []events.User{user("a", "A@contoso.com", true), user("b", "b@contoso.com", true)},
			recipients: []events.Recipient{rec("old", "a", "a@contoso.com", active),
				rec("demo", "a", "a@contoso.com", active)}, // a duplicate stored before the rule
			want: []string{"b"}, heldBy: map[string]string{"a": `recipient old.a of connector "old"`},
			warning: `1 users skipped as duplicate_email: their emails belong to active recipients of connector "old"`},
		{name: "another connector's archived recipient holds nothing", update: false, onRemoved: OnRemovedArchive,
			users:      []events.User{user("a", "a@contoso.com", true)},
			recipients: []events.Recipient{rec("old", "a", "a@contoso.com", archived)},
			want:       []string{"a"}},
		{name: "keep: a kept recipient yields to another connector's", update: true, onRemoved: OnRemovedKeep,
			recipients: []events.Recipient{rec("old", "a", "a@contoso.com", active), rec("demo", "a", "a@contoso.com", active)},
			released:   []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &projections.Directory{Users: map[string]events.User{}, Groups: map[string]events.Group{}, Members: map[string]map[string]struct{}{}}
			for _, u := range tt.users {
				d.Users[u.ID] = u
			}
			all := map[string]map[string]events.Recipient{}
			for _, r := range tt.recipients {
				if all[r.Connector] == nil {
					all[r.Connector] = map[string]events.Recipient{}
				}
				all[r.Connector][r.ObjectID] = r
			}
			p := Default()
			p.UpdateExisting, p.OnRemoved = tt.update, tt.onRemoved
			o := p.DecideAmong("demo", d, all)
			if got := wanted(o); !slices.Equal(got, tt.want) {
				t.Errorf("wanted %v, want %v (skipped %v, held by %v)", got, tt.want, o.Skipped, o.HeldBy)
			}
			for id, by := range tt.heldBy {
				if o.Skipped[id] != SkipDuplicateEmail || o.HeldBy[id] != by {
					t.Errorf("%s: skipped %q held by %q, want %q held by %q", id, o.Skipped[id], o.HeldBy[id], SkipDuplicateEmail, by)
				}
			}
			if n := o.SkipCounts()[SkipDuplicateEmail]; n != len(tt.heldBy) {
				t.Errorf("%d skipped as %s, want %d", n, SkipDuplicateEmail, len(tt.heldBy))
			}
			if got := slices.Sorted(maps.Keys(o.Released)); !slices.Equal(got, tt.released) {
				t.Errorf("released %v, want %v", o.Released, tt.released)
			}
			switch {
			case tt.warning == "" && len(o.Warnings) != 0:
				t.Errorf("warnings %q, want none", o.Warnings)
			case tt.warning != "" && (len(o.Warnings) != 1 || !strings.Contains(o.Warnings[0], tt.warning)):
				t.Errorf("warnings %q, want one containing %q", o.Warnings, tt.warning)
			}
		})
	}
}

// TestDuplicatesNameTheHolder: the summary's duplicateEmails line says who
// has the email and who was skipped, in the form it always had.
func TestDuplicatesNameTheHolder(t *testing.T) {
	d := &projections.Directory{Users: map[string]events.User{
		"b": {ID: "b", Mail: "x@contoso.com", AccountEnabled: true},
		"c": {ID: "c", Mail: "X@contoso.com", AccountEnabled: true},
		"d": {ID: "d", Mail: "y@contoso.com", AccountEnabled: true},
	}}
	all := map[string]map[string]events.Recipient{
		"old": {"d": {ID: "old.d", Connector: "old", ObjectID: "d", Email: "Y@contoso.com", Status: events.RecipientActive}},
	}
	got := Default().DecideAmong("demo", d, all).Duplicates
	want := []string{"x@contoso.com: user b is the recipient; skipped c",
		`y@contoso.com: recipient old.d of connector "old" is the recipient; skipped d`}
	if !slices.Equal(got, want) {
		t.Errorf("duplicates\n%q, want\n%q", got, want)
	}
}

// emailOf gives the email Merge gives, under either update_existing, for a
// new and an existing recipient.
func TestEmailOfAgreesWithMerge(t *testing.T) {
	want := events.Recipient{ObjectID: "u1", Email: "new@contoso.com", Tags: []string{"a"}}
	stored := events.Recipient{ObjectID: "u1", Email: "old@contoso.com", Status: events.RecipientArchived}
	for _, update := range []bool{true, false} {
		p := Default()
		p.UpdateExisting = update
		for _, current := range []map[string]events.Recipient{nil, {"u1": stored}} {
			var cur *events.Recipient
			if c, ok := current["u1"]; ok {
				cur = &c
			}
			merged, _ := p.Merge(want, cur)
			if got := p.emailOf(want, current); got != merged.Email {
				t.Errorf("update_existing=%v, existing=%v: emailOf %q, Merge %q", update, cur != nil, got, merged.Email)
			}
		}
	}
}
