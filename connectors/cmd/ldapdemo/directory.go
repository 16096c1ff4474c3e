package main

import (
	"fmt"
	"strings"

	"github.com/dirsync/dirsync/connectors/ldap/ldaptest"
)

// The demo directory is the LDAP connector's test directory
// (connectors/ldap/ldaptest: nested groups, a cycle, a disabled account,
// an address only in proxyAddresses, non-ASCII names) with generated
// colleagues in departments around it, so that a sync looks like a
// company's: department groups nested up to an all-company distribution
// list, a manager group, a leaver whose account is disabled, and an
// account without a mail address.

// Generated names: person i is firstNames[i%20] and a last name such
// that no two of the first maxUsers people share both (20 and 19 are
// coprime with 21).
var (
	firstNames = [...]string{"Anna", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas",
		"Kate", "Liam", "Maya", "Noah", "Olivia", "Paul", "Rosa", "Samuel", "Tara", "Victor"}
	lastNames = [...]string{"Adler", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito",
		"Jensen", "Keller", "Larsen", "Moreau", "Novak", "Olsen", "Petit", "Rossi", "Schmidt", "Tanaka"}
)

// maxUsers is how many distinct generated people there are.
const maxUsers = len(firstNames) * len(lastNames)

// department is one department's group and titles; its first person
// holds the first title and is in the Managers group.
type department struct {
	group  string
	titles []string
}

var departments = []department{
	{"Sales", []string{"Head of Sales", "Account Executive", "Sales Development Representative"}},
	{"Marketing", []string{"Head of Marketing", "Content Marketer", "Marketing Analyst"}},
	{"Finance", []string{"CFO", "Accountant", "Financial Controller"}},
	{"Support", []string{"Head of Support", "Support Engineer", "Support Specialist"}},
	{"People Ops", []string{"Head of People", "HR Partner", "Recruiter"}},
	{"Legal", []string{"General Counsel", "Legal Counsel"}},
	{"Engineering", []string{"CTO", "Software Engineer", "Site Reliability Engineer", "QA Engineer"}},
}

// The generated people who differ: a leaver whose account is disabled,
// and an account without a mail address (skipped as no_email).
const (
	disabledIndex = 11
	noMailIndex   = 17
)

// colleague is generated person i and their department.
func colleague(i int) (ldaptest.Person, department) {
	first := firstNames[i%len(firstNames)]
	last := lastNames[(i/len(firstNames)*(len(firstNames)+1)+i%len(firstNames))%len(lastNames)]
	d := departments[i%len(departments)]
	key := strings.ToLower(first + "." + last)
	title := d.titles[0] // the department's head
	if i >= len(departments) && len(d.titles) > 1 {
		title = d.titles[1+(i/len(departments))%(len(d.titles)-1)]
	}
	p := ldaptest.Person{Key: key, Given: first, SN: last, Mail: key + "@example.test", Dept: d.group, Title: title}
	switch i {
	case disabledIndex:
		p.Disabled = true
	case noMailIndex:
		p.Mail = ""
	}
	return p, d
}

// demoSeed is the demo directory as LDIF for d's flavor: the test
// directory, then users generated people, then their groups, each after
// the groups it holds (Active Directory refuses a member that does not
// exist yet). It also returns how many groups it holds.
func demoSeed(d ldaptest.Directory, users int) (ldif string, groups int) {
	var b strings.Builder
	b.WriteString(d.Seed(0))
	exists := map[string]bool{} // the DNs written so far
	for _, t := range ldaptest.Teams() {
		exists[d.GroupDN(t.Key)] = true
	}
	members := map[string][]string{} // group key -> member DNs
	for i := range users {
		p, dept := colleague(i)
		b.WriteString(d.UserLDIF(p))
		exists[d.UserDN(p.Key)] = true
		g := dept.group
		switch {
		case i < len(departments): // the department's head: its top group
			members["Managers"] = append(members["Managers"], d.UserDN(p.Key))
		case g == "Sales":
			g = [...]string{"Sales EMEA", "Sales Americas"}[(i/len(departments))%2]
		}
		members[g] = append(members[g], d.UserDN(p.Key))
	}
	members["Sales"] = append(members["Sales"], d.GroupDN("Sales EMEA"), d.GroupDN("Sales Americas"))
	members["Engineering"] = append(members["Engineering"], d.GroupDN("engineers"))
	members["All Company"] = []string{d.GroupDN("all-staff")}
	for _, dept := range departments {
		members["All Company"] = append(members["All Company"], d.GroupDN(dept.group))
	}

	teams := []ldaptest.Team{{Key: "Sales EMEA"}, {Key: "Sales Americas"}}
	for _, dept := range departments {
		teams = append(teams, ldaptest.Team{Key: dept.group})
	}
	teams = append(teams, ldaptest.Team{Key: "Managers"},
		ldaptest.Team{Key: "All Company", Mail: "all@example.test", Distribution: true})
	groups = len(ldaptest.Teams())
	for _, t := range teams {
		entry := strings.TrimSuffix(d.GroupLDIF(t, nil), "\n")
		n := 0
		for _, dn := range members[t.Key] {
			// A group left empty (few users) was not written: a
			// groupOfNames must have a member.
			if exists[dn] {
				entry += "member: " + dn + "\n"
				n++
			}
		}
		if n == 0 {
			continue
		}
		b.WriteString(entry + "\n")
		exists[d.GroupDN(t.Key)] = true
		groups++
	}
	return b.String(), groups
}

// summary says what the directory holds, for the start message.
func summary(d ldaptest.Directory, users, groups int) string {
	disabled, noMail := 0, 0
	count := func(p ldaptest.Person) {
		if p.Disabled {
			disabled++
		}
		if d.Email(p) == "" {
			noMail++
		}
	}
	for _, p := range ldaptest.People() {
		count(p)
	}
	for i := range users {
		p, _ := colleague(i)
		count(p)
	}
	return fmt.Sprintf("%d users (%d disabled, %d without an address) and %d groups, nested up to 3 deep",
		len(ldaptest.People())+users, disabled, noMail, groups)
}
