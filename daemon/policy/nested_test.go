package policy

import (
	"maps"
	"slices"
	"testing"

	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// nestedDirectory holds groups nested three deep (All ⊃ Europe ⊃ Oslo ⊃
// Oslo Sales), a cycle (Ring A ⊃ Ring B ⊃ Ring A) and a group that nests
// nothing.
func nestedDirectory() *projections.Directory {
	u := func(id string) events.User {
		return events.User{ID: id, Mail: id + "@contoso.com", DisplayName: id, AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1}
	}
	sec := func(id, name string) events.Group {
		return events.Group{ID: id, DisplayName: name, GroupTypes: []string{}, SecurityEnabled: true, Kind: "security"}
	}
	set := func(ids ...string) map[string]struct{} {
		m := map[string]struct{}{}
		for _, id := range ids {
			m[id] = struct{}{}
		}
		return m
	}
	return &projections.Directory{
		Users: map[string]events.User{"ann": u("ann"), "bob": u("bob"), "cat": u("cat"), "dan": u("dan"), "eve": u("eve"), "fay": u("fay")},
		Groups: map[string]events.Group{
			"all": sec("all", "All Staff"), "eu": sec("eu", "Europe"), "oslo": sec("oslo", "Oslo"), "sales": sec("sales", "Oslo Sales"),
			"ra": sec("ra", "Ring A"), "rb": sec("rb", "Ring B"), "solo": sec("solo", "Solo"),
		},
		Members: map[string]map[string]struct{}{
			"all": set("ann"), "eu": set("bob"), "oslo": set("cat"), "sales": set("dan"),
			"ra": set("eve"), "rb": set("fay"), "solo": set("ann"),
		},
		Nested: map[string]map[string]struct{}{
			"all": set("eu"), "eu": set("oslo"), "oslo": set("sales"),
			"ra": set("rb"), "rb": set("ra"),
		},
	}
}

func TestNestedGroups(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Policy)
		want   []string
		groups map[string][]string
	}{
		{"a scope counts members three deep", func(p *Policy) { p.IncludeGroups = []string{"All Staff"} },
			[]string{"ann", "bob", "cat", "dan"}, nil},
		{"an exclusion counts nested members too", func(p *Policy) { p.ExcludeGroups = []string{"Europe"} },
			[]string{"ann", "eve", "fay"}, nil},
		{"a cycle ends where it started", func(p *Policy) { p.IncludeGroups = []string{"Ring B"} },
			[]string{"eve", "fay"}, nil},
		{"nested_groups = false: direct members only", func(p *Policy) {
			p.IncludeGroups, p.NestedGroups = []string{"All Staff", "Ring B"}, false
		}, []string{"ann", "fay"}, nil},
		{"the groups shown count nesting", func(p *Policy) { p.GroupTypes = []string{"security"} },
			[]string{"ann", "bob", "cat", "dan", "eve", "fay"}, map[string][]string{
				"ann": {"All Staff", "Solo"}, "bob": {"All Staff", "Europe"}, "cat": {"All Staff", "Europe", "Oslo"},
				"dan": {"All Staff", "Europe", "Oslo", "Oslo Sales"}, "eve": {"Ring A", "Ring B"}, "fay": {"Ring A", "Ring B"},
			}},
		{"the groups shown without nesting", func(p *Policy) { p.GroupTypes, p.NestedGroups = []string{"security"}, false },
			[]string{"ann", "bob", "cat", "dan", "eve", "fay"}, map[string][]string{
				"ann": {"All Staff", "Solo"}, "dan": {"Oslo Sales"}, "eve": {"Ring A"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			tt.mod(&p)
			o := p.Decide("demo", nestedDirectory(), nil)
			if got := slices.Sorted(maps.Keys(o.Wanted)); !slices.Equal(got, tt.want) {
				t.Errorf("recipients %v, want %v (skipped %v)", got, tt.want, o.Skipped)
			}
			for id, want := range tt.groups {
				if got := o.Wanted[id].Recipient.Groups; !slices.Equal(got, want) {
					t.Errorf("%s shows groups %v, want %v", id, got, want)
				}
			}
		})
	}
}

// With nesting, a connector reads every group kind once any kind but
// Microsoft 365 groups (which hold no groups) is shown: a security group
// may hold a distribution group.
func TestReadGroupTypesNested(t *testing.T) {
	p := Default()
	if got := p.ReadGroupTypes(); !slices.Equal(got, []string{"unified"}) {
		t.Errorf("default: %v", got)
	}
	p.GroupTypes = []string{"security"}
	if got := p.ReadGroupTypes(); len(got) != 4 {
		t.Errorf("security shown, nested: %v; want every kind", got)
	}
	p.NestedGroups = false
	if got := p.ReadGroupTypes(); !slices.Equal(got, []string{"security"}) {
		t.Errorf("security shown, not nested: %v", got)
	}
}
