package graphsim

import (
	"strconv"
	"strings"
)

// allCompanyLimit is the largest tenant whose "All Company" group holds
// every user.
const allCompanyLimit = 100_000

// generate builds the tenant described by cfg (already defaulted).
func generate(cfg Config) *Tenant {
	t := &Tenant{ID: cfg.TenantID, Domain: cfg.TenantDomain}
	t.Users = generateUsers(cfg)
	if cfg.Attributes {
		generateAttributes(cfg, t.Users)
	}
	t.Groups = generateGroups(cfg, t.Users)
	if cfg.Attributes {
		nestGroups(t.Groups)
	}
	// Resources come after the groups are drawn, so that they change no
	// group (and are in none).
	if cfg.Resources > 0 {
		t.Users = append(t.Users, generateResources(cfg, t.Users)...)
	}
	return t
}

// nameParts splits "native|ascii" into its display and ASCII forms.
func nameParts(s string) (native, ascii string) {
	native, ascii, ok := strings.Cut(s, "|")
	if !ok {
		ascii = asciiFold(native)
	}
	return native, ascii
}

// localPart keeps the characters allowed in the generated mail local parts.
func localPart(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), ".")
}

// uniqueName returns base, or base+N for the smallest N >= 2 not yet used
// (case-insensitive), and records it.
func uniqueName(used map[string]struct{}, base, sep string) string {
	name := base
	for n := 2; ; n++ {
		k := strings.ToLower(name)
		if _, dup := used[k]; !dup {
			used[k] = struct{}{}
			return name
		}
		name = base + sep + strconv.Itoa(n)
	}
}

func pickCulture(p *prng) *culture {
	total := 0
	for i := range cultures {
		total += cultures[i].weight
	}
	n := p.intn(total)
	for i := range cultures {
		if n < cultures[i].weight {
			return &cultures[i]
		}
		n -= cultures[i].weight
	}
	return &cultures[0]
}

func generateUsers(cfg Config) []User {
	n := cfg.Users
	p := newPRNG(cfg.Seed, "users")
	users := make([]User, n)
	usedLocal := make(map[string]struct{}, n)
	usedGuest := make(map[string]struct{})
	custom := customDomain(cfg.TenantDomain)

	// Forced positions make the small-tenant guarantees hold.
	const (
		forceNoMail = iota
		forceUnlicensed
		forceDisabled
		forceGuest
		forceNonASCII
		forceCount
	)
	forced := make(map[int]int, forceCount)
	if n >= forceCount {
		for k, idx := range sampleDistinct(p, n, forceCount) {
			forced[idx] = k
		}
	}

	for i := range users {
		u := &users[i]
		u.ID = p.guid()
		f, isForced := forced[i]
		guest := p.chance(0.04)
		noMail := p.chance(0.083)
		unlicensed := p.chance(0.08)
		disabled := p.chance(0.05)
		service := p.chance(0.3)
		c := pickCulture(p)
		givenNative, givenASCII := nameParts(pick(p, c.given))
		familyNative, familyASCII := nameParts(pick(p, c.family))
		if isForced {
			switch f {
			case forceNoMail:
				guest, noMail = false, true
			case forceUnlicensed:
				unlicensed = true
			case forceDisabled:
				disabled = true
			case forceGuest:
				guest, noMail = true, false
			case forceNonASCII:
				nm := pick(p, nonASCIINames)
				c = &culture{} // given name first
				givenNative, givenASCII = nm[0], asciiFold(nm[0])
				familyNative, familyASCII = nm[1], asciiFold(nm[1])
				service = false
			}
		}
		if guest {
			noMail = false
		}
		u.AccountEnabled = !disabled
		u.UserType = "Member"

		display := givenNative + " " + familyNative
		switch {
		case c.familyFirst && c.joinNoSpace:
			display = familyNative + givenNative
		case c.familyFirst:
			display = familyNative + " " + givenNative
		}
		base := localPart(strings.ReplaceAll(givenASCII, " ", "") + "." + strings.ReplaceAll(familyASCII, " ", ""))

		switch {
		case guest:
			ext := pick(p, externalDomains)
			addr := base
			for n := 2; ; n++ {
				if _, dup := usedGuest[addr+"@"+ext]; !dup {
					break
				}
				addr = base + strconv.Itoa(n)
			}
			usedGuest[addr+"@"+ext] = struct{}{}
			u.UserType = "Guest"
			u.UserPrincipalName = addr + "_" + ext + "#EXT#@" + cfg.TenantDomain
			u.Mail = addr + "@" + ext
			u.DisplayName = display
			if p.chance(0.5) {
				u.GivenName, u.Surname = givenNative, familyNative
			}
			if p.chance(0.8) {
				unlicensed = true
			}
		case noMail && service && !isForced:
			sa := pick(p, serviceAccounts)
			local := uniqueName(usedLocal, sa.upn, "")
			u.UserPrincipalName = local + "@" + cfg.TenantDomain
			u.DisplayName = sa.name
			if local != sa.upn {
				u.DisplayName = sa.name + " " + strings.TrimPrefix(local, sa.upn)
			}
			u.Department = "IT"
		default:
			local := uniqueName(usedLocal, base, "")
			u.UserPrincipalName = local + "@" + cfg.TenantDomain
			u.DisplayName = display
			u.GivenName, u.Surname = givenNative, familyNative
			if !noMail {
				u.Mail = u.UserPrincipalName
				if custom != cfg.TenantDomain && p.chance(0.25) {
					u.Mail = local + "@" + custom
				}
			}
			if p.chance(0.95) {
				d := &departments[p.intn(len(departments))]
				u.Department = d.name
				if p.chance(0.97) {
					u.JobTitle = pick(p, d.titles)
				}
			}
		}
		if !unlicensed {
			u.AssignedLicenses = []string{pickSKU(p)}
			if p.chance(0.2) {
				if extra := pick(p, extraSKUs); extra != u.AssignedLicenses[0] {
					u.AssignedLicenses = append(u.AssignedLicenses, extra)
				}
			}
		}
	}
	return users
}

func pickSKU(p *prng) string {
	total := 0
	for _, s := range primarySKUs {
		total += s.weight
	}
	n := p.intn(total)
	for _, s := range primarySKUs {
		if n < s.weight {
			return s.id
		}
		n -= s.weight
	}
	return primarySKUs[0].id
}

type groupKind int

const (
	kindUnified groupKind = iota
	kindSecurity
	kindMailSecurity
	kindDistribution
)

// groupName draws a display name for a group of the given kind.
func groupName(p *prng, kind groupKind) string {
	dept := departments[p.intn(len(departments))].name
	switch kind {
	case kindUnified:
		switch p.intn(4) {
		case 0, 1:
			return pick(p, unifiedGroupNames)
		case 2:
			return dept + " " + pick(p, teamSuffixes)
		default:
			return "Project " + pick(p, codenames)
		}
	case kindSecurity:
		switch p.intn(4) {
		case 0:
			return pick(p, securityGroupNames)
		case 1:
			return "APP-" + pick(p, securityApps) + "-Users"
		case 2:
			return "sg-" + asciiFold(strings.ReplaceAll(dept, " ", "")) + "-" + asciiFold(strings.ReplaceAll(pick(p, cities), " ", ""))
		default:
			return "SG-" + asciiFold(strings.ReplaceAll(dept, " & ", "-"))
		}
	case kindMailSecurity:
		if p.chance(0.5) {
			return pick(p, mailSecurityGroupNames)
		}
		return dept + " Approvers"
	default:
		switch p.intn(3) {
		case 0:
			return pick(p, distributionGroupNames)
		case 1:
			return "Office " + pick(p, cities)
		default:
			return dept + " Managers"
		}
	}
}

// nickname derives a mailNickname (ASCII letters and digits) from a display
// name.
func nickname(display, id string) string {
	var b strings.Builder
	for _, r := range asciiFold(display) {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "group-" + id[:8]
	}
	return b.String()
}

func generateGroups(cfg Config, users []User) []Group {
	m := cfg.Groups
	p := newPRNG(cfg.Seed, "groups")
	groups := make([]Group, m)
	usedNames := make(map[string]struct{}, m)
	usedNicks := make(map[string]struct{}, m)
	nUsers := len(users)

	for i := range groups {
		g := &groups[i]
		g.ID = p.guid()
		var kind groupKind
		switch r := p.intn(100); {
		case r < 55:
			kind = kindUnified
		case r < 80:
			kind = kindSecurity
		case r < 90:
			kind = kindMailSecurity
		default:
			kind = kindDistribution
		}
		var name string
		switch {
		case i == 0:
			kind, name = kindUnified, "All Company"
		case i == 1:
			kind = kindSecurity
		case i == 2:
			kind = kindDistribution
		case i == 3:
			kind = kindMailSecurity
		}
		if name == "" {
			name = groupName(p, kind)
		}
		g.DisplayName = uniqueName(usedNames, name, " ")
		g.MailNickname = uniqueName(usedNicks, nickname(g.DisplayName, g.ID), "")
		switch kind {
		case kindUnified:
			g.GroupTypes = []string{"Unified"}
			g.MailEnabled = true
		case kindSecurity:
			g.GroupTypes = []string{}
			g.SecurityEnabled = true
		case kindMailSecurity:
			g.GroupTypes = []string{}
			g.MailEnabled, g.SecurityEnabled = true, true
		default:
			g.GroupTypes = []string{}
			g.MailEnabled = true
		}
		if g.MailEnabled {
			g.Mail = g.MailNickname + "@" + cfg.TenantDomain
		}

		// Users.
		if i == 0 {
			k := min(nUsers, allCompanyLimit)
			g.Members = make([]Member, 0, k)
			for _, u := range users[:k] {
				g.Members = append(g.Members, Member{ID: u.ID, ODataType: TypeUser})
			}
			continue
		}
		var size int
		switch r := p.intn(100); {
		case r < 8:
			size = 0
		case r < 80:
			size = p.between(2, 30)
		case r < 97:
			size = p.between(30, 90)
		default:
			size = p.between(100, 400)
		}
		for _, idx := range sampleDistinct(p, nUsers, size) {
			g.Members = append(g.Members, Member{ID: users[idx].ID, ODataType: TypeUser})
		}

		// A few members that are not users.
		var prob float64
		switch kind {
		case kindUnified:
			prob = 0.05
		case kindSecurity:
			prob = 0.25
		case kindMailSecurity:
			prob = 0.15
		default:
			prob = 0.4
		}
		if p.chance(prob) {
			extra := p.between(1, 3)
			for e := 0; e < extra; e++ {
				var mem Member
				switch {
				case kind == kindSecurity && p.chance(0.4):
					mem = Member{ID: p.guid(), ODataType: TypeDevice}
				case kind == kindUnified || kind == kindDistribution && p.chance(0.7):
					mem = Member{ID: p.guid(), ODataType: TypeOrgContact}
				default:
					// Nested group: only later groups nest in earlier
					// ones, so nesting never forms a cycle.
					if i+1 >= m {
						continue
					}
					j := p.between(i+1, m-1)
					mem = Member{ID: "", ODataType: TypeGroup}
					mem.ID = groupIDPlaceholder(j)
				}
				insertMember(p, g, mem)
			}
		}
	}
	resolveNestedGroups(groups)

	// Guarantee a Unified group with a member that is not a user.
	if m >= 2 {
		has := false
		last := -1
		for i := range groups {
			if !groups[i].IsUnified() {
				continue
			}
			last = i
			for _, mem := range groups[i].Members {
				if mem.ODataType != TypeUser {
					has = true
				}
			}
		}
		if !has && last >= 0 {
			insertMember(p, &groups[last], Member{ID: p.guid(), ODataType: TypeOrgContact})
		}
	}
	return groups
}

// groupIDPlaceholder refers to group j before all group IDs exist.
func groupIDPlaceholder(j int) string { return "\x00" + strconv.Itoa(j) }

// resolveNestedGroups replaces placeholders with group IDs and drops
// duplicates.
func resolveNestedGroups(groups []Group) {
	for i := range groups {
		g := &groups[i]
		var seen map[string]struct{}
		out := g.Members[:0]
		for _, mem := range g.Members {
			if rest, ok := strings.CutPrefix(mem.ID, "\x00"); ok {
				j, _ := strconv.Atoi(rest)
				mem.ID = groups[j].ID
				if seen == nil {
					seen = map[string]struct{}{}
				}
				if _, dup := seen[mem.ID]; dup {
					continue
				}
				seen[mem.ID] = struct{}{}
			}
			out = append(out, mem)
		}
		g.Members = out
	}
}

// insertMember adds mem at a random position of g's member list.
func insertMember(p *prng, g *Group, mem Member) {
	g.Members = append(g.Members, mem)
	j := p.intn(len(g.Members))
	last := len(g.Members) - 1
	g.Members[j], g.Members[last] = g.Members[last], g.Members[j]
}
