package graphsim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxChurn bounds the number of changes of one Churn call.
const MaxChurn = 1_000_000

// churnKinds are the kinds of random changes with their weights.
var churnKinds = []struct {
	name   string
	weight int
}{
	{"add", 10}, {"update", 24}, {"toggle", 10}, {"soft-delete", 8}, {"delete", 4},
	{"restore", 8}, {"licenses", 12}, {"add-member", 12}, {"remove-member", 12},
}

// attributeChurnKinds are the kinds Churn also draws in a tenant generated
// with Config.Attributes; a plain tenant draws from churnKinds alone, so
// its churn stays what it was for a seed.
var attributeChurnKinds = []struct {
	name   string
	weight int
}{{"language", 6}, {"manager", 6}, {"alias", 6}, {"nest", 6}}

// Churn makes n random changes of the kinds the other methods make: add,
// update (department, job title or surname and display name), disable or
// enable, soft or permanent delete and restore of users, license changes,
// and group member additions and removals (of any member type). The
// changes are drawn from seed (with Config.Attributes also preferred
// languages, managers, smtp: aliases and group nesting: a group added to
// or removed from another group); the and the current tenant, so the same tenant
// and seed give the same changes, and they are applied at once, as one
// version. It returns a one-line description of each change.
func (s *Sim) Churn(n int, seed int64) ([]string, error) {
	if n < 0 || n > MaxChurn {
		return nil, fmt.Errorf("graphsim: Churn: n must be between 0 and %d, got %d", MaxChurn, n)
	}
	var out []string
	err := s.change(func(tx *txn) error {
		c := &churner{tx: tx, p: newPRNG(seed, "churn"), domain: tx.cur.tenant.Domain, custom: s.custom, attrs: s.cfg.Attributes}
		for range n {
			line, err := c.one()
			if err != nil {
				return err
			}
			out = append(out, line)
		}
		return nil
	})
	if err != nil {
		return nil, prefixErr(err)
	}
	return out, nil
}

// churner draws the changes of one Churn call.
type churner struct {
	tx             *txn
	p              *prng
	domain, custom string
	attrs          bool // Config.Attributes: attributeChurnKinds too
}

// one makes one random change.
func (c *churner) one() (string, error) {
	kinds := churnKinds
	if c.attrs {
		kinds = append(slices.Clone(churnKinds), attributeChurnKinds...)
	}
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	r := c.p.intn(total)
	kind := kinds[0].name
	for _, k := range kinds {
		if r < k.weight {
			kind = k.name
			break
		}
		r -= k.weight
	}
	// Fall back to what the tenant allows.
	live := len(c.tx.users) - c.tx.removed
	switch {
	case live == 0 && kind != "restore":
		kind = "add"
	case kind == "restore" && len(c.tx.deleted) == 0:
		kind = "update"
	case (kind == "add-member" || kind == "remove-member" || kind == "nest") && len(c.tx.groups) == 0:
		kind = "update"
	}
	if kind == "restore" && live == 0 && len(c.tx.deleted) == 0 {
		kind = "add"
	}
	switch kind {
	case "add":
		return c.addUser()
	case "update":
		return c.updateUser()
	case "toggle":
		i := c.pickUser()
		u := &c.tx.users[i]
		verb := "disable"
		if !u.AccountEnabled {
			verb = "enable"
		}
		id, enable := u.ID, !u.AccountEnabled
		return verb + " user " + id, c.tx.updateUser(i, func(u *User) { u.AccountEnabled = enable })
	case "soft-delete", "delete":
		id := c.tx.users[c.pickUser()].ID
		if kind == "delete" {
			return "delete user " + id + " permanently", c.tx.deleteUser(id, true)
		}
		return "soft-delete user " + id, c.tx.deleteUser(id, false)
	case "restore":
		keys := sortedKeys(c.tx.deleted)
		u := c.tx.deleted[keys[c.p.intn(len(keys))]]
		if err := c.tx.restoreUser(u.ID); err != nil {
			// Its UPN was taken meanwhile: delete it for good instead.
			return "delete user " + u.ID + " permanently", c.tx.deleteUser(u.ID, true)
		}
		return "restore user " + u.ID, nil
	case "licenses":
		return c.licenses()
	case "add-member":
		return c.addMember()
	case "language":
		return c.language()
	case "manager":
		return c.manager()
	case "alias":
		return c.alias()
	case "nest":
		return c.nest()
	default:
		return c.removeMember()
	}
}

// pickUser returns the index of a random live user (there is one).
func (c *churner) pickUser() int {
	for {
		if i := c.p.intn(len(c.tx.users)); c.tx.users[i].ID != "" {
			return i
		}
	}
}

func (c *churner) addUser() (string, error) {
	p := c.p
	cu := pickCulture(p)
	given, ga := nameParts(pick(p, cu.given))
	family, fa := nameParts(pick(p, cu.family))
	display := given + " " + family
	switch {
	case cu.familyFirst && cu.joinNoSpace:
		display = family + given
	case cu.familyFirst:
		display = family + " " + given
	}
	base := localPart(strings.ReplaceAll(ga, " ", "") + "." + strings.ReplaceAll(fa, " ", ""))
	if base == "" {
		base = "user"
	}
	var id, upn string
	for {
		id = p.guid()
		upn = base + "." + strconv.FormatUint(p.next()%0x10000, 16) + "@" + c.domain
		if _, taken := c.tx.userIndex(id); taken {
			continue
		}
		if _, taken := c.tx.deleted[id]; taken {
			continue
		}
		if !c.upnTaken(upn) {
			break
		}
	}
	d := &departments[p.intn(len(departments))]
	u := User{ID: id, UserPrincipalName: upn, Mail: upn, DisplayName: display, GivenName: given, Surname: family,
		Department: d.name, JobTitle: pick(p, d.titles), UserType: "Member", AccountEnabled: true,
		AssignedLicenses: []string{pickSKU(p)}}
	if c.custom != c.domain && p.chance(0.25) {
		local, _, _ := strings.Cut(upn, "@")
		u.Mail = local + "@" + c.custom
	}
	return "add user " + id + " " + upn, c.tx.addUser(u)
}

// upnTaken reports whether a live or deleted user has the UPN.
func (c *churner) upnTaken(upn string) bool {
	if c.tx.liveUPN(upn) {
		return true
	}
	if c.tx.deletedUPN == nil {
		c.tx.deletedUPN = make(map[string]bool, len(c.tx.deleted))
		for _, u := range c.tx.deleted {
			c.tx.deletedUPN[strings.ToLower(u.UserPrincipalName)] = true
		}
	}
	return c.tx.deletedUPN[strings.ToLower(upn)]
}

func (c *churner) updateUser() (string, error) {
	p := c.p
	i := c.pickUser()
	u := c.tx.users[i]
	var what string
	var fn func(u *User)
	switch p.intn(3) {
	case 0:
		d := departments[p.intn(len(departments))].name
		if d == u.Department {
			d += " & Strategy"
		}
		what = fmt.Sprintf("department %q -> %q", u.Department, d)
		fn = func(u *User) { u.Department = d }
	case 1:
		d := &departments[p.intn(len(departments))]
		t := pick(p, d.titles)
		if t == u.JobTitle {
			t = "Senior " + t
		}
		what = fmt.Sprintf("jobTitle %q -> %q", u.JobTitle, t)
		fn = func(u *User) { u.JobTitle = t }
	default:
		cu := pickCulture(p)
		family, _ := nameParts(pick(p, cu.family))
		if family == u.Surname {
			family += "-" + family
		}
		given := u.GivenName
		display := strings.TrimSpace(given + " " + family)
		if given == "" {
			display = u.DisplayName + " " + family
		}
		what = fmt.Sprintf("surname %q -> %q, displayName %q -> %q", u.Surname, family, u.DisplayName, display)
		fn = func(u *User) { u.Surname, u.DisplayName = family, display }
	}
	return "update user " + u.ID + ": " + what, c.tx.updateUser(i, fn)
}

func (c *churner) licenses() (string, error) {
	p := c.p
	i := c.pickUser()
	u := c.tx.users[i]
	var skus []string
	switch {
	case len(u.AssignedLicenses) == 0:
		skus = []string{pickSKU(p)}
	case p.chance(0.5):
		skus = nil
	default:
		skus = []string{pickSKU(p)}
		if slices.Equal(skus, u.AssignedLicenses) {
			skus = append(skus, pick(p, extraSKUs))
		}
	}
	line := fmt.Sprintf("set licenses of user %s: [%s] -> [%s]", u.ID, strings.Join(u.AssignedLicenses, " "), strings.Join(skus, " "))
	return line, c.tx.updateUser(i, func(u *User) { u.AssignedLicenses = skus })
}

func (c *churner) addMember() (string, error) {
	p := c.p
	for range 20 {
		g := p.intn(len(c.tx.groups))
		id := c.tx.users[c.pickUser()].ID
		if c.tx.hasMember(g, id) {
			continue
		}
		gid := c.tx.groups[g].ID
		return "add user " + id + " to group " + gid, c.tx.addMembers(gid, []string{id})
	}
	return c.updateUser()
}

func (c *churner) removeMember() (string, error) {
	p := c.p
	for range 20 {
		g := p.intn(len(c.tx.groups))
		ms := c.tx.currentMembers(g)
		if len(ms) == 0 {
			continue
		}
		for range 5 {
			m := ms[p.intn(len(ms))]
			if m.ID == "" {
				continue
			}
			gid := c.tx.groups[g].ID
			return "remove " + memberNoun(m.ODataType) + " " + m.ID + " from group " + gid, c.tx.removeMembers(gid, []string{m.ID})
		}
	}
	return c.updateUser()
}

// memberNoun names a member type ("user", "orgContact").
func memberNoun(typ string) string {
	if n, ok := strings.CutPrefix(typ, "#microsoft.graph."); ok {
		return n
	}
	return "member"
}

func (c *churner) language() (string, error) {
	i := c.pickUser()
	u := c.tx.users[i]
	loc := locales[c.p.intn(len(locales))].tag
	if loc == u.PreferredLanguage {
		loc = locales[0].tag
		if loc == u.PreferredLanguage {
			loc = locales[1].tag
		}
	}
	line := fmt.Sprintf("update user %s: preferredLanguage %q -> %q", u.ID, u.PreferredLanguage, loc)
	return line, c.tx.updateUser(i, func(u *User) { u.PreferredLanguage = loc })
}

// manager gives a user another manager (never one of its own reports, so
// the managers stay a tree), or now and then takes the manager away.
func (c *churner) manager() (string, error) {
	i := c.pickUser()
	u := c.tx.users[i]
	if u.ManagerID != "" && c.p.chance(0.25) {
		return "remove manager of user " + u.ID, c.tx.updateUser(i, func(u *User) { u.ManagerID = "" })
	}
	for range 20 {
		m := c.tx.users[c.pickUser()]
		if m.ID == u.ID || strings.EqualFold(m.ID, u.ManagerID) || c.reportsTo(m.ID, u.ID) {
			continue
		}
		return "set manager of user " + u.ID + " to " + m.ID, c.tx.updateUser(i, func(u *User) { u.ManagerID = m.ID })
	}
	return c.updateUser()
}

// reportsTo reports whether id has boss above it in the manager chain.
func (c *churner) reportsTo(id, boss string) bool {
	for n := 0; id != "" && n < len(c.tx.users); n++ {
		j, ok := c.tx.userIndex(id)
		if !ok {
			return false
		}
		id = c.tx.users[j].ManagerID
		if strings.EqualFold(id, boss) {
			return true
		}
	}
	return false
}

// alias adds an smtp: alias to a mailbox, or removes one it has.
func (c *churner) alias() (string, error) {
	for range 20 {
		i := c.pickUser()
		u := c.tx.users[i]
		if u.Mail == "" || isGuest(&u) {
			continue
		}
		addrs := u.ProxyAddresses
		if len(addrs) == 0 {
			addrs = derivedProxies(&u)
		}
		for j, a := range addrs {
			if strings.HasPrefix(a, "smtp:") && !strings.EqualFold(a[5:], u.UserPrincipalName) && c.p.chance(0.5) {
				next := slices.Delete(slices.Clone(addrs), j, j+1)
				return "remove alias " + a + " of user " + u.ID, c.tx.updateUser(i, func(u *User) { u.ProxyAddresses = next })
			}
		}
		local, _, _ := strings.Cut(u.Mail, "@")
		alias := "smtp:" + local + "." + strconv.FormatUint(c.p.next()%0x10000, 16) + "@" + c.custom
		next := append(slices.Clone(addrs), alias)
		return "add alias " + alias + " to user " + u.ID, c.tx.updateUser(i, func(u *User) { u.ProxyAddresses = next })
	}
	return c.updateUser()
}

// nest adds a group to a group that is not Unified (Microsoft 365 groups
// hold no groups), or removes a nested group; cycles may form, as in a
// directory synced from Active Directory.
func (c *churner) nest() (string, error) {
	p := c.p
	if p.chance(0.5) {
		for range 20 {
			g := p.intn(len(c.tx.groups))
			for _, m := range c.tx.currentMembers(g) {
				if m.ID != "" && m.ODataType == TypeGroup {
					gid := c.tx.groups[g].ID
					return "remove group " + m.ID + " from group " + gid, c.tx.removeMembers(gid, []string{m.ID})
				}
			}
		}
	}
	for range 20 {
		g, h := p.intn(len(c.tx.groups)), p.intn(len(c.tx.groups))
		outer, inner := &c.tx.groups[g], &c.tx.groups[h]
		if g == h || outer.IsUnified() || c.tx.hasMember(g, inner.ID) {
			continue
		}
		return "add group " + inner.ID + " to group " + outer.ID, c.tx.addMembers(outer.ID, []string{inner.ID})
	}
	return c.updateUser()
}
