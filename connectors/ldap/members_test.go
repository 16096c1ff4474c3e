package ldap

import (
	"slices"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestParseRangedAttribute(t *testing.T) {
	tests := []struct {
		desc   string
		attr   string
		r      Range
		ranged bool
		bad    bool
	}{
		{desc: "member", attr: "member"},
		{desc: "member;range=0-1499", attr: "member", r: Range{0, 1499}, ranged: true},
		{desc: "member;range=1500-*", attr: "member", r: Range{1500, RangeEnd}, ranged: true},
		{desc: "Member;Range=3000-4499", attr: "Member", r: Range{3000, 4499}, ranged: true},
		{desc: "member;range=0-0", attr: "member", r: Range{0, 0}, ranged: true},
		{desc: "member;binary", attr: "member;binary"},
		{desc: "member;binary;range=5-*", attr: "member;binary", r: Range{5, RangeEnd}, ranged: true},
		{desc: "member;range=", bad: true},
		{desc: "member;range=1499-0", bad: true},
		{desc: "member;range=-5-*", bad: true},
		{desc: "member;range=0-1499x", bad: true},
		{desc: "member;range=*-*", bad: true},
		{desc: "member;range=99999999999-*", bad: true},
		{desc: "member;range=0-1;range=2-3", bad: true},
		{desc: "member;range=+1-2", bad: true},
	}
	for _, tt := range tests {
		attr, r, ranged, err := ParseRangedAttribute(tt.desc)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v", tt.desc, err)
			continue
		}
		if !tt.bad && (attr != tt.attr || r != tt.r || ranged != tt.ranged) {
			t.Errorf("%q = %q %+v %v; want %q %+v %v", tt.desc, attr, r, ranged, tt.attr, tt.r, tt.ranged)
		}
	}
	if got := (Range{0, 1499}).NextDescription("member"); got != "member;range=1500-*" {
		t.Errorf("next of 0-1499: %q", got)
	}
	if !(Range{1500, RangeEnd}).Last() || (Range{0, 1499}).Last() {
		t.Error("Last")
	}
}

func TestMembers(t *testing.T) {
	ad := goldap.NewEntry("CN=big,DC=example,DC=test", map[string][]string{
		"objectGUID":          {"x"},
		"member;range=0-1499": {"CN=a,DC=example,DC=test", "CN=b,DC=example,DC=test"},
	})
	m, err := adDecoder().Members(ad)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.DNs, []string{"CN=a,DC=example,DC=test", "CN=b,DC=example,DC=test"}) || !slices.Equal(m.Next, []string{"member;range=1500-*"}) {
		t.Errorf("first range: %+v", m)
	}
	last := goldap.NewEntry("CN=big,DC=example,DC=test", map[string][]string{"member;range=1500-*": {"CN=c,DC=example,DC=test"}})
	if m, err := adDecoder().Members(last); err != nil || len(m.Next) != 0 || len(m.DNs) != 1 {
		t.Errorf("last range: %+v, %v", m, err)
	}
	plain := goldap.NewEntry("CN=small", map[string][]string{"member": {"CN=a,DC=x"}, "memberOf": {"CN=g,DC=x"}, "member;binary": {"junk"}})
	if m, err := adDecoder().Members(plain); err != nil || !slices.Equal(m.DNs, []string{"CN=a,DC=x"}) || len(m.Next) != 0 {
		t.Errorf("unranged: %+v, %v", m, err)
	}
	bad := goldap.NewEntry("CN=bad", map[string][]string{"member;range=9-1": {"CN=a,DC=x"}})
	if _, err := adDecoder().Members(bad); err == nil {
		t.Error("malformed range accepted")
	}

	ol := goldap.NewEntry("cn=staff,ou=groups,dc=example,dc=com", map[string][]string{
		"member":       {"uid=alice,ou=people,dc=example,dc=com", ""},
		"uniqueMember": {"uid=bob,ou=people,dc=example,dc=com#'0101'B", "uid=carol,ou=people,dc=example,dc=com", "cn=odd#'x'B"},
	})
	m, err = olDecoder().Members(ol)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"uid=alice,ou=people,dc=example,dc=com", "uid=bob,ou=people,dc=example,dc=com", "uid=carol,ou=people,dc=example,dc=com", "cn=odd#'x'B"}
	if !slices.Equal(m.DNs, want) {
		t.Errorf("OpenLDAP members %q, want %q", m.DNs, want)
	}
}

func TestDirSyncMemberChanges(t *testing.T) {
	e := goldap.NewEntry("CN=g", map[string][]string{
		"member;range=1-1": {"CN=new,DC=x"},
		"member;range=0-0": {"CN=gone,DC=x", "CN=gone2,DC=x"},
		"objectGUID":       {"x"},
	})
	added, removed, err := adDecoder().DirSyncMemberChanges(e)
	if err != nil || !slices.Equal(added, []string{"CN=new,DC=x"}) || !slices.Equal(removed, []string{"CN=gone,DC=x", "CN=gone2,DC=x"}) {
		t.Errorf("added %q removed %q err %v", added, removed, err)
	}
	full := goldap.NewEntry("CN=g", map[string][]string{"member": {"CN=a,DC=x"}})
	if _, _, err := adDecoder().DirSyncMemberChanges(full); err == nil {
		t.Error("a full member list is not an incremental change")
	}
}

func TestNormalizeDN(t *testing.T) {
	same := [][]string{
		{"CN=Frank Foster,OU=Staff,DC=example,DC=test", "cn=frank foster,ou=staff,dc=example,dc=test",
			"CN=Frank Foster, OU=Staff, DC=example, DC=test", " cn = Frank Foster ,ou=STAFF;dc=Example,dc=TEST"},
		{`CN=Smith\, John,OU=Staff,DC=example,DC=test`, `cn=smith\2c john,ou=staff,dc=example,dc=test`,
			`CN=SMITH\2C JOHN, OU=Staff,DC=example,DC=test`},
		{`CN=a\+b,DC=x`, `cn=A\2Bb,dc=X`},
		{`uid=alice+cn=Alice,dc=x`, `CN=alice+UID=Alice,DC=X`},
		{`CN=\#hash\ ,DC=x`, `cn=\23hash\20,dc=x`},
		{`CN=Müller,DC=x`, `cn=m\c3\bcller,dc=x`, `CN=MÜLLER,DC=x`},
		{`CN=carol\0ADEL:5f8c3e2a-9b1d-474e-a1c2-d3e4f5061728,CN=Deleted Objects,DC=x`,
			`cn=carol\0adel:5f8c3e2a-9b1d-474e-a1c2-d3e4f5061728,cn=deleted objects,dc=x`},
	}
	for _, group := range same {
		first, err := NormalizeDN(group[0])
		if err != nil {
			t.Errorf("%q: %v", group[0], err)
			continue
		}
		for _, dn := range group[1:] {
			if got, err := NormalizeDN(dn); err != nil || got != first {
				t.Errorf("NormalizeDN(%q) = %q, %v; want %q (as %q)", dn, got, err, first, group[0])
			}
		}
		if again, err := NormalizeDN(first); err != nil || again != first {
			t.Errorf("not its own canonical form: %q → %q, %v", first, again, err)
		}
	}
	for in, want := range map[string]string{
		`CN=Smith\, John,OU=Staff,DC=example,DC=test`: `cn=smith\, john,ou=staff,dc=example,dc=test`,
		`CN=a\0Ab,DC=x`:     `cn=a\0ab,dc=x`,
		`cn=\ lead,dc=x`:    `cn=\ lead,dc=x`,
		`cn=x\;y\<z\>,dc=x`: `cn=x\;y\<z\>,dc=x`,
		`cn=q\"t,dc=x`:      `cn=q\"t,dc=x`,
	} {
		if got, err := NormalizeDN(in); err != nil || got != want {
			t.Errorf("NormalizeDN(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	different := [][2]string{
		{"CN=a,DC=x", "CN=a,DC=y"},
		{`CN=a\,b,DC=x`, `CN=a,CN=b,DC=x`},
		{"CN=a,DC=x", "OU=a,DC=x"},
	}
	for _, pair := range different {
		a, _ := NormalizeDN(pair[0])
		b, _ := NormalizeDN(pair[1])
		if a == b {
			t.Errorf("%q and %q both normalize to %q", pair[0], pair[1], a)
		}
	}
	for _, bad := range []string{"", "   ", "CN", "CN=a,", "=a", `CN=a\`, `CN="q"`, "a b=c", `CN=a\zz`} {
		if got, err := NormalizeDN(bad); err == nil {
			t.Errorf("NormalizeDN(%q) = %q, want an error", bad, got)
		}
	}
}
