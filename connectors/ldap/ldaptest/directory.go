// Package ldaptest is the LDAP connector's test directory: the same
// people and groups seeded into a real OpenLDAP slapd or a real Samba
// Active Directory domain controller (internal/testenv), with what a read
// of them must give. The connector's tests and the daemon's end-to-end
// tests both use it.
//
// The directory has groups nested three deep, a cycle, a disabled
// account, an address found only in proxyAddresses (Active Directory),
// and non-ASCII names.
package ldaptest

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/internal/testenv"
)

// Person is a seeded user.
type Person struct {
	Key, Given, SN, Mail, Dept, Title string
	Disabled                          bool
	// Proxy is Active Directory's proxyAddresses; OpenLDAP has none.
	Proxy []string
	// Manager is the key of the person's manager, who comes earlier in
	// People (Active Directory refuses a manager DN that names no entry);
	// Language its preferredLanguage.
	Manager, Language string
}

// DisplayName is what the directory shows of p.
func (p Person) DisplayName() string { return p.Given + " " + p.SN }

// Team is a seeded group: Members are Person or Team keys.
type Team struct {
	Key, Mail string
	// Distribution: an Active Directory distribution group (OpenLDAP has
	// no such flag: its groups are all security groups).
	Distribution bool
	Members      []string
}

// People are the seeded users.
func People() []Person {
	return []Person{
		{Key: "alice", Given: "Alice", SN: "Anders", Mail: "alice@example.test", Dept: "Engineering", Title: "Engineer"},
		{Key: "bob", Given: "Bob", SN: "Brown", Mail: "bob@example.test", Dept: "Engineering", Manager: "alice", Language: "de-DE"},
		{Key: "carol", Given: "Carol", SN: "Clark", Mail: "carol@example.test", Disabled: true},
		{Key: "dave", Given: "Dave", SN: "Dunn", Proxy: []string{"smtp:dd@example.test", "SMTP:dave@example.test"}},
		{Key: "zoe", Given: "Zoë", SN: "Müller", Mail: "zoe.muller@example.test", Dept: "Ventes"},
		{Key: "erin", Given: "Erin", SN: "Evans", Mail: "erin@example.test"},
	}
}

// Teams are the seeded groups, each after the groups it holds.
func Teams() []Team {
	return []Team{
		{Key: "engineers", Members: []string{"alice", "bob"}},
		{Key: "all-staff", Members: []string{"engineers", "carol", "zoe"}},
		{Key: "newsletter", Mail: "news@example.test", Distribution: true, Members: []string{"all-staff"}},
		{Key: "cyc-b", Members: []string{"dave"}},
		{Key: "cyc-a", Members: []string{"erin", "cyc-b"}},
	}
}

// cycleEdge closes the cycle once both groups exist (Active Directory
// refuses a member that does not exist yet): cyc-b holds cyc-a.
var cycleEdge = [2]string{"cyc-b", "cyc-a"}

// WantMembers is every seeded group's user members, nested groups
// expanded, by key, sorted.
func WantMembers() map[string][]string {
	return map[string][]string{
		"engineers":  {"alice", "bob"},
		"all-staff":  {"alice", "bob", "carol", "zoe"},
		"newsletter": {"alice", "bob", "carol", "zoe"},
		"cyc-a":      {"dave", "erin"},
		"cyc-b":      {"dave", "erin"},
	}
}

// Directory is the seeded directory of one flavor on a running server.
type Directory struct {
	Srv *testenv.LDAPServer
	// Flavor is testenv.FlavorOpenLDAP or testenv.FlavorActiveDirectory.
	Flavor string
	// Base is the subtree the connector reads (its base_dn).
	Base string
}

// AD reports whether the directory is Active Directory.
func (d Directory) AD() bool { return d.Flavor == testenv.FlavorActiveDirectory }

// UserDN is the DN of the user with key.
func (d Directory) UserDN(key string) string {
	if d.AD() {
		for _, p := range People() {
			if p.Key == key {
				return "CN=" + p.DisplayName() + "," + d.Base
			}
		}
		return "CN=" + key + "," + d.Base
	}
	return "uid=" + key + ",ou=people," + d.Base
}

// GroupDN is the DN of the group with key.
func (d Directory) GroupDN(key string) string {
	if d.AD() {
		return "CN=" + key + "," + d.Base
	}
	return "cn=" + key + ",ou=groups," + d.Base
}

// MemberDN is the DN of a group's member, a user or a group.
func (d Directory) MemberDN(key string) string {
	for _, t := range Teams() {
		if t.Key == key {
			return d.GroupDN(key)
		}
	}
	return d.UserDN(key)
}

// value writes attr: v, base64 when v is not plain ASCII.
func value(attr, v string) string {
	for _, r := range v {
		if r > 0x7e || r < 0x20 {
			return attr + ":: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n"
		}
	}
	return attr + ": " + v + "\n"
}

// UserLDIF is p's entry.
func (d Directory) UserLDIF(p Person) string {
	var b strings.Builder
	b.WriteString(value("dn", d.UserDN(p.Key)))
	if d.AD() {
		b.WriteString("objectClass: user\nsAMAccountName: " + p.Key + "\nuserPrincipalName: " + p.Key + "@example.test\n")
		b.WriteString("unicodePwd:: " + testenv.UnicodePwd("Passw0rd!"+p.Key) + "\n")
		uac := "512"
		if p.Disabled {
			uac = "514"
		}
		b.WriteString("userAccountControl: " + uac + "\n")
		for _, a := range p.Proxy {
			b.WriteString("proxyAddresses: " + a + "\n")
		}
		if p.Dept != "" {
			b.WriteString(value("department", p.Dept))
		}
	} else {
		b.WriteString("objectClass: inetOrgPerson\nuid: " + p.Key + "\n")
		b.WriteString(value("cn", p.DisplayName()))
		if p.Disabled {
			b.WriteString("pwdAccountLockedTime: 000001010000Z\n")
		}
		if p.Dept != "" {
			b.WriteString(value("departmentNumber", p.Dept))
		}
	}
	b.WriteString(value("displayName", p.DisplayName()))
	b.WriteString(value("givenName", p.Given))
	b.WriteString(value("sn", p.SN))
	if p.Mail != "" {
		b.WriteString("mail: " + p.Mail + "\n")
	}
	if p.Title != "" {
		b.WriteString("title: " + p.Title + "\n")
	}
	if p.Manager != "" {
		b.WriteString(value("manager", d.UserDN(p.Manager)))
	}
	if p.Language != "" {
		b.WriteString("preferredLanguage: " + p.Language + "\n")
	}
	return b.String() + "\n"
}

// GroupLDIF is t's entry with members.
func (d Directory) GroupLDIF(t Team, members []string) string {
	var b strings.Builder
	b.WriteString("dn: " + d.GroupDN(t.Key) + "\n")
	if d.AD() {
		gt := "-2147483646" // a global security group
		if t.Distribution {
			gt = "8" // a universal distribution group
		}
		b.WriteString("objectClass: group\nsAMAccountName: " + t.Key + "\ngroupType: " + gt + "\n")
	} else {
		b.WriteString("objectClass: groupOfNames\n")
		if t.Mail != "" {
			// groupOfNames has no mail: schemas add it with an
			// auxiliary class; extensibleObject stands in for one.
			b.WriteString("objectClass: extensibleObject\n")
		}
		b.WriteString("cn: " + t.Key + "\n")
	}
	if t.Mail != "" {
		b.WriteString("mail: " + t.Mail + "\n")
	}
	for _, m := range members {
		b.WriteString("member: " + d.MemberDN(m) + "\n")
	}
	return b.String() + "\n"
}

// PadPerson is the i-th padding user (pad0001@example.test, ...), which
// makes a directory large enough for a full read to show.
func PadPerson(i int) Person {
	return Person{Key: fmt.Sprintf("pad%04d", i), Given: "Pad", SN: fmt.Sprintf("%04d", i), Mail: fmt.Sprintf("pad%04d@example.test", i)}
}

// Seed is the whole directory as LDIF, with pad padding users.
func (d Directory) Seed(pad int) string {
	var b strings.Builder
	if d.AD() {
		b.WriteString("dn: " + d.Base + "\nobjectClass: organizationalUnit\n\n")
	} else {
		b.WriteString("dn: " + d.Base + "\nobjectClass: organizationalUnit\nou: corp\n\n")
		b.WriteString("dn: ou=people," + d.Base + "\nobjectClass: organizationalUnit\nou: people\n\n")
		b.WriteString("dn: ou=groups," + d.Base + "\nobjectClass: organizationalUnit\nou: groups\n\n")
	}
	for _, p := range People() {
		b.WriteString(d.UserLDIF(p))
	}
	for i := 1; i <= pad; i++ {
		b.WriteString(d.UserLDIF(PadPerson(i)))
	}
	for _, t := range Teams() {
		members := t.Members
		if t.Key == cycleEdge[0] && !d.AD() {
			members = append(slices.Clone(members), cycleEdge[1])
		}
		b.WriteString(d.GroupLDIF(t, members))
	}
	if d.AD() {
		b.WriteString("dn: " + d.GroupDN(cycleEdge[0]) + "\nchangetype: modify\nadd: member\nmember: " + d.GroupDN(cycleEdge[1]) + "\n-\n\n")
	}
	return b.String()
}

// Start starts a server of flavor seeded with the directory and pad
// padding users. The test is skipped where the server is not installed.
func Start(t testing.TB, flavor string, pad int) Directory {
	t.Helper()
	if flavor == testenv.FlavorActiveDirectory {
		d := Directory{Flavor: flavor, Base: "OU=Corp,DC=example,DC=test"}
		d.Srv = testenv.StartSambaDC(t, "")
		d.Srv.Apply(t, d.Seed(pad))
		return d
	}
	d := Directory{Flavor: flavor, Base: "ou=corp,dc=example,dc=com"}
	// slapadd takes plain entries only: the OpenLDAP seed has no change
	// records.
	d.Srv = testenv.StartSlapd(t, d.Seed(pad))
	return d
}

// Email is the address a recipient of p gets: mail, or for Active
// Directory the primary SMTP proxy address; "" when p has none.
func (d Directory) Email(p Person) string {
	if p.Mail != "" {
		return p.Mail
	}
	if d.AD() {
		for _, a := range p.Proxy {
			if strings.HasPrefix(a, "SMTP:") {
				return strings.TrimPrefix(a, "SMTP:")
			}
		}
	}
	return ""
}

// Kind is the group kind t reads as: Active Directory's distribution
// groups are distribution groups; any other group with a mail address is
// a mail-enabled security group, the rest security groups.
func (d Directory) Kind(t Team) string {
	switch {
	case d.AD() && t.Distribution:
		return "distribution"
	case t.Mail != "":
		return "mail_security"
	}
	return "security"
}
