package bench

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ldapBase is the subtree the ldap scenario's directory lives in and the
// connector reads (base_dn).
const ldapBase = "OU=Corp,DC=example,DC=test"

// ldapMembersPerGroup is how many users each group holds directly: the
// directory has a group per this many users.
const ldapMembersPerGroup = 100

// ldapDir is the ldap scenario's Active Directory: users u00000 to
// u(users-1) under ldapBase, every one a direct member of exactly one
// global security group (user i of group i % groups, so about
// ldapMembersPerGroup each), and some groups nested (every tenth group
// holds the next two) or universal distribution groups with an address.
// Every 50th user is disabled and every 40th has no mail, so that the
// recipients (enabled users with mail) are not simply every user.
type ldapDir struct {
	users, groups int
}

// newLDAPDir is the directory of users users.
func newLDAPDir(users int) ldapDir {
	return ldapDir{users: users, groups: max(1, users/ldapMembersPerGroup)}
}

func userKey(i int) string { return fmt.Sprintf("u%05d", i) }

func userDN(i int) string { return "CN=User " + userKey(i) + "," + ldapBase }

func groupKey(g int) string { return fmt.Sprintf("grp%04d", g) }

func groupDN(g int) string { return "CN=" + groupKey(g) + "," + ldapBase }

// userDisabled and userMailless pick the users who are no recipients.
func userDisabled(i int) bool { return i%50 == 49 }
func userMailless(i int) bool { return i%40 == 39 }

// recipient says whether user i becomes a recipient: the default import
// policy keeps enabled users with an address.
func recipient(i int) bool { return !userDisabled(i) && !userMailless(i) }

// recipients counts the users that become recipients.
func (d ldapDir) recipients() int {
	n := 0
	for i := range d.users {
		if recipient(i) {
			n++
		}
	}
	return n
}

// nested lists the groups group g holds besides its users.
func (d ldapDir) nested(g int) []int {
	var out []int
	if g%10 == 0 {
		for _, c := range []int{g + 1, g + 2} {
			if c < d.groups {
				out = append(out, c)
			}
		}
	}
	return out
}

// distribution picks the universal distribution groups; none of them
// is nested (a global group may not hold a universal one).
func distribution(g int) bool { return g%25 == 24 }

// memberships counts the user memberships the directory's groups give,
// nested groups expanded: what a full read's member lists hold.
func (d ldapDir) memberships() int {
	direct := make([]int, d.groups)
	for i := range d.users {
		direct[i%d.groups]++
	}
	n := 0
	for g := range d.groups {
		n += direct[g]
		for _, c := range d.nested(g) {
			n += direct[c]
		}
	}
	return n
}

var givenNames = []string{"Alice", "Bob", "Chloé", "David", "Emma", "Farid", "Grace", "Hugo", "Inès", "Jonas"}

var departments = []string{"Engineering", "Sales", "Marketing", "Finance", "Support", "Legal", "Operations", "Research"}

// userAttrs are the attributes of user i: names, mail, department and
// title as an HR feed writes them. No password: userAccountControl 544
// (a normal account that needs none, enabled) or 546 (disabled). A
// password would cost Samba its hashes and Kerberos keys at every add,
// and the connector never reads it.
func userAttrs(i int) []ldap.Attribute {
	key := userKey(i)
	given := givenNames[i%len(givenNames)]
	uac := "544"
	if userDisabled(i) {
		uac = "546"
	}
	attrs := []ldap.Attribute{
		{Type: "objectClass", Vals: []string{"user"}},
		{Type: "sAMAccountName", Vals: []string{key}},
		{Type: "givenName", Vals: []string{given}},
		{Type: "sn", Vals: []string{strings.ToUpper(key[:1]) + key[1:]}},
		{Type: "displayName", Vals: []string{given + " " + key}},
		{Type: "department", Vals: []string{departments[i%len(departments)]}},
		{Type: "title", Vals: []string{fmt.Sprintf("Grade %d", i%7)}},
		{Type: "userAccountControl", Vals: []string{uac}},
	}
	if !userMailless(i) {
		attrs = append(attrs, ldap.Attribute{Type: "mail", Vals: []string{key + "@example.test"}})
	}
	return attrs
}

// groupAttrs are the attributes of group g with its direct members.
func (d ldapDir) groupAttrs(g int) []ldap.Attribute {
	gt := "-2147483646" // global security
	if distribution(g) {
		gt = "8" // universal distribution
	}
	var members []string
	for i := g; i < d.users; i += d.groups {
		members = append(members, userDN(i))
	}
	for _, c := range d.nested(g) {
		members = append(members, groupDN(c))
	}
	attrs := []ldap.Attribute{
		{Type: "objectClass", Vals: []string{"group"}},
		{Type: "sAMAccountName", Vals: []string{groupKey(g)}},
		{Type: "groupType", Vals: []string{gt}},
		{Type: "member", Vals: members},
	}
	if distribution(g) {
		attrs = append(attrs, ldap.Attribute{Type: "mail", Vals: []string{groupKey(g) + "@example.test"}})
	}
	return attrs
}

// ldif is the whole directory as LDIF, parents first: the OU, the
// users, then the groups from the last, so that a group holding others
// comes after them.
func (d ldapDir) ldif() string {
	var b strings.Builder
	entry := func(dn string, attrs []ldap.Attribute) {
		b.WriteString("dn: " + dn + "\n")
		for _, a := range attrs {
			for _, v := range a.Vals {
				b.WriteString(ldifValue(a.Type, v))
			}
		}
		b.WriteString("\n")
	}
	entry(ldapBase, []ldap.Attribute{{Type: "objectClass", Vals: []string{"organizationalUnit"}}})
	for i := range d.users {
		entry(userDN(i), userAttrs(i))
	}
	for g := d.groups - 1; g >= 0; g-- {
		entry(groupDN(g), d.groupAttrs(g))
	}
	return b.String()
}

// ldifValue is one "attr: value" line, base64 when the value is not
// plain ASCII (the accented given names).
func ldifValue(attr, v string) string {
	for _, r := range v {
		if r < 0x20 || r > 0x7e {
			return attr + ":: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n"
		}
	}
	return attr + ": " + v + "\n"
}

// ldapChange is one change the scenario makes before the incremental
// sync; each touches a different recipient, so each should give exactly
// one recipient event.
type ldapChange struct {
	kind string // mail, department, delete, add, join, leave
	user int
	do   func(conn *ldap.Conn) error
}

// changes returns n changes to the directory as seeded: about 40% mail
// and 20% department changes, 10% deletions, 10% new users, and 20%
// membership changes (half join a group they are not in, directly or
// through nesting; half leave their group). The users are recipients,
// spread over the directory, each changed once.
func (d ldapDir) changes(n int) []ldapChange {
	del, add := max(1, n/10), max(1, n/10)
	join := max(1, n/10)
	leave := join
	if d.groups < 3 {
		join = 0 // no group the users are not in (see otherGroup)
	}
	dept := n / 5
	mail := max(0, n-del-add-join-leave-dept)
	var picked []int
	step := max(1, d.users/(n+1))
	for i := step / 2; len(picked) < n-add && i < d.users; i += step {
		if recipient(i) {
			picked = append(picked, i)
		}
	}
	var out []ldapChange
	next := func() int {
		i := picked[0]
		picked = picked[1:]
		return i
	}
	modify := func(dn string, change func(*ldap.ModifyRequest)) func(*ldap.Conn) error {
		return func(conn *ldap.Conn) error {
			req := ldap.NewModifyRequest(dn, nil)
			change(req)
			return conn.Modify(req)
		}
	}
	for k := 0; k < mail && len(picked) > 0; k++ {
		i := next()
		out = append(out, ldapChange{"mail", i, modify(userDN(i), func(r *ldap.ModifyRequest) {
			r.Replace("mail", []string{userKey(i) + ".new@example.test"})
		})})
	}
	for k := 0; k < dept && len(picked) > 0; k++ {
		i := next()
		out = append(out, ldapChange{"department", i, modify(userDN(i), func(r *ldap.ModifyRequest) {
			r.Replace("department", []string{"Reorganised " + departments[i%len(departments)]})
		})})
	}
	for k := 0; k < del && len(picked) > 0; k++ {
		i := next()
		out = append(out, ldapChange{"delete", i, func(conn *ldap.Conn) error {
			return conn.Del(ldap.NewDelRequest(userDN(i), nil))
		}})
	}
	for k := 0; k < join && len(picked) > 0; k++ {
		i := next()
		g := d.otherGroup(i)
		out = append(out, ldapChange{"join", i, modify(groupDN(g), func(r *ldap.ModifyRequest) {
			r.Add("member", []string{userDN(i)})
		})})
	}
	for k := 0; k < leave && len(picked) > 0; k++ {
		i := next()
		out = append(out, ldapChange{"leave", i, modify(groupDN(i%d.groups), func(r *ldap.ModifyRequest) {
			r.Delete("member", []string{userDN(i)})
		})})
	}
	for k := range add {
		i := d.users + k
		out = append(out, ldapChange{"add", i, func(conn *ldap.Conn) error {
			req := ldap.NewAddRequest(userDN(i), nil)
			req.Attributes = userAttrs(i)
			if err := conn.Add(req); err != nil {
				return err
			}
			// A new hire joins a group too, as the seeded users are.
			g := ldap.NewModifyRequest(groupDN(i%d.groups), nil)
			g.Add("member", []string{userDN(i)})
			return conn.Modify(g)
		}})
	}
	return out
}

// otherGroup is a group user i is not in, directly or through nesting:
// joining it changes the user's groups (changes asks only when there
// are three groups or more, so that there is one).
func (d ldapDir) otherGroup(i int) int {
	own := i % d.groups
	in := map[int]bool{own: true}
	for g := range d.groups { // the groups holding own: nesting is one level deep
		if slices.Contains(d.nested(g), own) {
			in[g] = true
		}
	}
	for k := 1; k < d.groups; k++ {
		if g := (own + k) % d.groups; !in[g] {
			return g
		}
	}
	return own
}

// changeKinds counts changes by kind, e.g. "40 mail, 20 department".
func changeKinds(list []ldapChange) string {
	count := map[string]int{}
	var order []string
	for _, c := range list {
		if count[c.kind] == 0 {
			order = append(order, c.kind)
		}
		count[c.kind]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	return strings.Join(parts, ", ")
}
