package graphsim

import (
	"fmt"
	"strconv"
	"strings"
)

// Generation of the attributes of Config.Attributes, the resource
// mailboxes of Config.Resources and the nesting guarantee. Each draws
// from its own PRNG stream after the users and groups are made, so a
// tenant generated without these options is what it always was.

// locale is a language with the country it is spoken in.
type locale struct {
	tag, name   string // BCP 47 tag as Graph's preferredLanguage, English display name
	country     string // Graph's country is free text
	iso, dial   string // usageLocation, phone prefix
	city        string
	cultureHint int // index in cultures
}

// locales are the languages by culture (cultures' order); a culture may
// have several.
var locales = []locale{
	{"en-US", "English (United States)", "United States", "US", "1", "Seattle", 0},
	{"en-GB", "English (United Kingdom)", "United Kingdom", "GB", "44", "London", 0},
	{"en-IE", "English (Ireland)", "Ireland", "IE", "353", "Dublin", 0},
	{"es-ES", "Spanish (Spain)", "Spain", "ES", "34", "Madrid", 1},
	{"es-MX", "Spanish (Mexico)", "Mexico", "MX", "52", "Ciudad de México", 1},
	{"de-DE", "German (Germany)", "Germany", "DE", "49", "München", 2},
	{"de-CH", "German (Switzerland)", "Switzerland", "CH", "41", "Zürich", 2},
	{"de-AT", "German (Austria)", "Austria", "AT", "43", "Wien", 2},
	{"pl-PL", "Polish (Poland)", "Poland", "PL", "48", "Kraków", 3},
	{"nb-NO", "Norwegian Bokmål (Norway)", "Norway", "NO", "47", "Oslo", 4},
	{"da-DK", "Danish (Denmark)", "Denmark", "DK", "45", "København", 4},
	{"sv-SE", "Swedish (Sweden)", "Sweden", "SE", "46", "Stockholm", 4},
	{"fr-FR", "French (France)", "France", "FR", "33", "Paris", 5},
	{"fr-CA", "French (Canada)", "Canada", "CA", "1", "Montréal", 5},
	{"tr-TR", "Turkish (Türkiye)", "Türkiye", "TR", "90", "Istanbul", 6},
	{"ja-JP", "Japanese (Japan)", "Japan", "JP", "81", "Tokyo", 7},
	{"vi-VN", "Vietnamese (Vietnam)", "Vietnam", "VN", "84", "Hà Nội", 8},
	{"zh-CN", "Chinese (Simplified, China)", "China", "CN", "86", "Shanghai", 9},
	{"zh-SG", "Chinese (Simplified, Singapore)", "Singapore", "SG", "65", "Singapore", 9},
	{"en-IN", "English (India)", "India", "IN", "91", "Bangalore", 10},
	{"it-IT", "Italian (Italy)", "Italy", "IT", "39", "Milano", 11},
	{"pt-PT", "Portuguese (Portugal)", "Portugal", "PT", "351", "Lisboa", 12},
	{"pt-BR", "Portuguese (Brazil)", "Brazil", "BR", "55", "São Paulo", 12},
	{"nl-NL", "Dutch (Netherlands)", "Netherlands", "NL", "31", "Amsterdam", 13},
}

// languageName is the display name of a locale tag (the tag itself when
// unknown), as mailboxSettings.language.displayName.
func languageName(tag string) string {
	for i := range locales {
		if strings.EqualFold(locales[i].tag, tag) {
			return locales[i].name
		}
	}
	return tag
}

// cultureOf finds the culture of a generated name (family name first:
// some given names are shared by two cultures); -1 when none.
func cultureOf(given, family string) int {
	for _, names := range []struct {
		v      string
		family bool
	}{{family, true}, {given, false}} {
		if names.v == "" {
			continue
		}
		for ci := range cultures {
			list := cultures[ci].given
			if names.family {
				list = cultures[ci].family
			}
			for _, n := range list {
				if native, _ := nameParts(n); native == names.v {
					return ci
				}
			}
		}
	}
	return -1
}

// pickLocale draws a locale for a culture: one of its own, or (one time
// in ten, and for unknown cultures) en-US.
func pickLocale(p *prng, culture int) *locale {
	var own []int
	for i := range locales {
		if locales[i].cultureHint == culture {
			own = append(own, i)
		}
	}
	if len(own) == 0 || p.chance(0.1) {
		return &locales[0]
	}
	return &locales[pick(p, own)]
}

// isPerson reports whether a generated user is a member person (not a
// guest, not a service or resource account).
func isPerson(u *User) bool {
	return !isGuest(u) && u.GivenName != "" && u.MailboxPurpose != MailboxShared && u.MailboxPurpose != MailboxRoom && u.MailboxPurpose != MailboxEquipment
}

// generateAttributes gives the users the attributes of Config.Attributes.
func generateAttributes(cfg Config, users []User) {
	p := newPRNG(cfg.Seed, "attributes")
	org, custom := orgName(cfg.TenantDomain), customDomain(cfg.TenantDomain)
	var people []int
	firstMail, lastAliasUser := -1, -1
	primaryClash := false
	for i := range users {
		u := &users[i]
		loc := pickLocale(p, cultureOf(u.GivenName, u.Surname))
		if u.Mail != "" && !isGuest(u) {
			u.MailboxPurpose = MailboxUser
			u.ProxyAddresses = derivedProxies(u)
			if p.chance(0.1) {
				ga, fa := asciiFold(u.GivenName), asciiFold(u.Surname)
				if ga == "" || fa == "" {
					ga, fa = "x", strings.Split(u.UserPrincipalName, "@")[0]
				}
				alias := localPart(ga[:1]+strings.ReplaceAll(fa, " ", "")) + "@" + custom
				// About one alias in ten is another user's primary
				// address: a directory that has such clashes is what a
				// sync must cope with.
				if firstMail >= 0 && p.chance(0.1) {
					alias, primaryClash = users[p.intn(i)].Mail, true
					if alias == "" || strings.EqualFold(alias, u.Mail) {
						alias, primaryClash = users[firstMail].Mail, !strings.EqualFold(users[firstMail].Mail, u.Mail)
					}
				}
				u.ProxyAddresses = appendProxy(u.ProxyAddresses, "smtp:"+alias)
				lastAliasUser = i
			}
			if p.chance(0.05) {
				u.ProxyAddresses = append(u.ProxyAddresses, "SIP:"+u.Mail)
			}
			if p.chance(0.05) {
				nick, _, _ := strings.Cut(u.UserPrincipalName, "@")
				u.ProxyAddresses = append(u.ProxyAddresses, "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn="+strings.ReplaceAll(u.ID, "-", "")[:32]+"-"+nick)
			}
			if firstMail < 0 {
				firstMail = i
			}
		}
		switch {
		case isGuest(u):
			if p.chance(0.3) {
				u.PreferredLanguage = loc.tag
			}
			continue
		case !isPerson(u):
			continue // service accounts
		}
		people = append(people, i)
		u.PreferredLanguage, u.Country, u.UsageLocation = loc.tag, loc.country, loc.iso
		if p.chance(0.85) {
			u.City = loc.city
			u.OfficeLocation = fmt.Sprintf("%s %d/%d", loc.city, p.between(1, 12), p.between(100, 999))
		}
		u.EmployeeType = "Employee"
		switch r := p.intn(100); {
		case r < 10:
			u.EmployeeType = "Contractor"
		case r < 12:
			u.EmployeeType = "Intern"
		}
		u.CompanyName = org
		if u.EmployeeType == "Contractor" {
			u.CompanyName = pick(p, contactCompanies)
		}
		if p.chance(0.9) {
			u.EmployeeID = strconv.Itoa(100000 + i)
		}
		if p.chance(0.6) {
			u.MobilePhone = "+" + loc.dial + " " + strconv.Itoa(p.between(100, 999)) + " " + strconv.Itoa(p.between(1000000, 9999999))
		}
		// Extension attributes are sparse, as a directory uses a few.
		if p.chance(0.3) {
			u.ExtensionAttributes[0] = "CC-" + strconv.Itoa(p.between(1000, 9999))
		}
		if p.chance(0.05) {
			u.ExtensionAttributes[6] = "Badge " + strconv.Itoa(p.between(10000, 99999))
		}
		if p.chance(0.1) {
			u.ExtensionAttributes[14] = "NoGAL"
		}
	}
	// Guarantee one clash with a primary address when there are two
	// mailboxes: the last user with an alias (else the last mailbox)
	// also claims the first mailbox's address.
	if !primaryClash && firstMail >= 0 {
		last := lastAliasUser
		for j := len(users) - 1; last < 0 && j > firstMail; j-- {
			if users[j].MailboxPurpose == MailboxUser {
				last = j
			}
		}
		if last > firstMail {
			users[last].ProxyAddresses = appendProxy(users[last].ProxyAddresses, "smtp:"+users[firstMail].Mail)
		}
	}
	// Managers form a tree: a person's manager is a person listed before
	// them, drawn from the first quarter of those, so the tree is deep
	// and broad at the top and has no cycle.
	for k := 1; k < len(people); k++ {
		if p.chance(0.92) {
			users[people[k]].ManagerID = users[people[p.intn((k+3)/4)]].ID
		}
	}
}

// derivedProxies are the proxy addresses graphsim serves for a user
// whose ProxyAddresses are empty.
func derivedProxies(u *User) []string {
	switch {
	case u.Mail == "":
		return nil
	case isGuest(u) || strings.EqualFold(u.Mail, u.UserPrincipalName):
		return []string{"SMTP:" + u.Mail}
	}
	return []string{"SMTP:" + u.Mail, "smtp:" + u.UserPrincipalName}
}

// appendProxy adds an address unless the user has it already.
func appendProxy(list []string, addr string) []string {
	_, a, _ := strings.Cut(addr, ":")
	for _, v := range list {
		if _, b, _ := strings.Cut(v, ":"); strings.EqualFold(a, b) {
			return list
		}
	}
	return append(list, addr)
}

// resourceNames are the shared mailboxes and equipment a tenant has.
var (
	sharedMailboxNames = []string{"Info", "Support", "Sales Inbox", "Billing", "HR Inbox", "Reception", "Careers", "Press", "Invoices", "Helpdesk"}
	equipmentNames     = []string{"Projector", "Pool Car", "Camera Kit", "Loaner Laptop", "Delivery Van"}
)

// generateResources makes the accounts of Config.Resources: shared, room
// and equipment mailboxes, unlicensed, most of them disabled as Exchange
// creates them (a resource mailbox's account needs no sign-in).
func generateResources(cfg Config, users []User) []User {
	p := newPRNG(cfg.Seed, "resources")
	custom := customDomain(cfg.TenantDomain)
	used := make(map[string]struct{}, len(users)+cfg.Resources)
	for i := range users {
		local, _, _ := strings.Cut(users[i].UserPrincipalName, "@")
		used[strings.ToLower(local)] = struct{}{}
	}
	out := make([]User, cfg.Resources)
	for i := range out {
		u := &out[i]
		u.ID = p.guid()
		u.UserType = "Member"
		u.AccountEnabled = p.chance(0.2)
		switch r := p.intn(100); {
		case r < 50:
			u.MailboxPurpose, u.DisplayName = MailboxShared, pick(p, sharedMailboxNames)
		case r < 85:
			city := pick(p, cities)
			u.MailboxPurpose = MailboxRoom
			u.DisplayName = fmt.Sprintf("Room %s %d.%02d", city, p.between(1, 9), p.between(1, 40))
			u.City, u.OfficeLocation = city, u.DisplayName
		default:
			u.MailboxPurpose, u.DisplayName = MailboxEquipment, pick(p, equipmentNames)
		}
		local := uniqueName(used, localPart(strings.ReplaceAll(asciiFold(u.DisplayName), " ", "-")), "")
		u.DisplayName += strings.TrimPrefix(local, localPart(strings.ReplaceAll(asciiFold(u.DisplayName), " ", "-")))
		u.UserPrincipalName = local + "@" + cfg.TenantDomain
		u.Mail = u.UserPrincipalName
		if custom != cfg.TenantDomain {
			u.Mail = local + "@" + custom
		}
		u.ProxyAddresses = derivedProxies(u)
	}
	return out
}

// nestGroups guarantees, when at least four groups are not Unified
// (Microsoft 365 groups cannot hold groups), a chain nested three deep,
// A ⊃ B ⊃ C ⊃ D, and a cycle, D ⊃ B, made of the first four such groups
// after "All Company".
func nestGroups(groups []Group) {
	var pick []int
	for i := 1; i < len(groups) && len(pick) < 4; i++ {
		if !groups[i].IsUnified() {
			pick = append(pick, i)
		}
	}
	if len(pick) < 4 {
		return
	}
	for _, e := range [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 1}} {
		outer, inner := &groups[pick[e[0]]], &groups[pick[e[1]]]
		has := false
		for _, m := range outer.Members {
			has = has || strings.EqualFold(m.ID, inner.ID)
		}
		if !has {
			outer.Members = append(outer.Members, Member{ID: inner.ID, ODataType: TypeGroup})
		}
	}
}
