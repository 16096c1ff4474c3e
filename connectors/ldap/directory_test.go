package ldap

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/internal/testenv"
)

// The test directory, the same people and groups in both flavors: nested
// groups three deep, a cycle, a disabled account, an address only in
// proxyAddresses (Active Directory), and a non-ASCII name.

// person is a seeded user.
type person struct {
	key, given, sn, mail, dept, title string
	disabled                          bool
	// proxy is Active Directory's proxyAddresses; OpenLDAP has none.
	proxy []string
}

// team is a seeded group: members are person or team keys.
type team struct {
	key, mail string
	// distribution: an Active Directory distribution group (OpenLDAP has
	// no such flag: its groups are all security groups).
	distribution bool
	members      []string
}

var people = []person{
	{key: "alice", given: "Alice", sn: "Anders", mail: "alice@example.test", dept: "Engineering", title: "Engineer"},
	{key: "bob", given: "Bob", sn: "Brown", mail: "bob@example.test", dept: "Engineering"},
	{key: "carol", given: "Carol", sn: "Clark", mail: "carol@example.test", disabled: true},
	{key: "dave", given: "Dave", sn: "Dunn", proxy: []string{"smtp:dd@example.test", "SMTP:dave@example.test"}},
	{key: "zoe", given: "Zoë", sn: "Müller", mail: "zoe.muller@example.test", dept: "Ventes"},
	{key: "erin", given: "Erin", sn: "Evans", mail: "erin@example.test"},
}

var teams = []team{
	{key: "engineers", members: []string{"alice", "bob"}},
	{key: "all-staff", members: []string{"engineers", "carol", "zoe"}},
	{key: "newsletter", mail: "news@example.test", distribution: true, members: []string{"all-staff"}},
	{key: "cyc-b", members: []string{"dave"}},
	{key: "cyc-a", members: []string{"erin", "cyc-b"}},
}

// cycleEdge closes the cycle once both groups exist (Active Directory
// refuses a member that does not exist yet).
var cycleEdge = [2]string{"cyc-b", "cyc-a"}

// wantMembers is every group's expanded user members, by key.
var wantMembers = map[string][]string{
	"engineers":  {"alice", "bob"},
	"all-staff":  {"alice", "bob", "carol", "zoe"},
	"newsletter": {"alice", "bob", "carol", "zoe"},
	"cyc-a":      {"dave", "erin"},
	"cyc-b":      {"dave", "erin"},
}

func (p person) displayName() string { return p.given + " " + p.sn }

// ldifValue writes attr: value, base64 when the value is not plain ASCII.
func ldifValue(attr, v string) string {
	for _, r := range v {
		if r > 0x7e || r < 0x20 {
			return attr + ":: " + base64.StdEncoding.EncodeToString([]byte(v)) + "\n"
		}
	}
	return attr + ": " + v + "\n"
}

// directory is the seeded directory of one flavor on a running server.
type directory struct {
	srv    *testenv.LDAPServer
	flavor Flavor
	base   string // base_dn of the connector: the test's subtree
}

func (d directory) userDN(key string) string {
	if d.flavor == FlavorActiveDirectory {
		for _, p := range people {
			if p.key == key {
				return "CN=" + p.displayName() + "," + d.base
			}
		}
		return "CN=" + key + "," + d.base
	}
	return "uid=" + key + ",ou=people," + d.base
}

func (d directory) groupDN(key string) string {
	if d.flavor == FlavorActiveDirectory {
		return "CN=" + key + "," + d.base
	}
	return "cn=" + key + ",ou=groups," + d.base
}

func (d directory) memberDN(key string) string {
	for _, t := range teams {
		if t.key == key {
			return d.groupDN(key)
		}
	}
	return d.userDN(key)
}

// userLDIF is one user's entry.
func (d directory) userLDIF(p person) string {
	var b strings.Builder
	b.WriteString(ldifValue("dn", d.userDN(p.key)))
	if d.flavor == FlavorActiveDirectory {
		b.WriteString("objectClass: user\nsAMAccountName: " + p.key + "\nuserPrincipalName: " + p.key + "@example.test\n")
		b.WriteString("unicodePwd:: " + testenv.UnicodePwd("Passw0rd!"+p.key) + "\n")
		uac := "512"
		if p.disabled {
			uac = "514"
		}
		b.WriteString("userAccountControl: " + uac + "\n")
		for _, a := range p.proxy {
			b.WriteString("proxyAddresses: " + a + "\n")
		}
		if p.dept != "" {
			b.WriteString(ldifValue("department", p.dept))
		}
	} else {
		b.WriteString("objectClass: inetOrgPerson\nuid: " + p.key + "\n")
		b.WriteString(ldifValue("cn", p.displayName()))
		if p.disabled {
			b.WriteString("pwdAccountLockedTime: 000001010000Z\n")
		}
		if p.dept != "" {
			b.WriteString(ldifValue("departmentNumber", p.dept))
		}
	}
	b.WriteString(ldifValue("displayName", p.displayName()))
	b.WriteString(ldifValue("givenName", p.given))
	b.WriteString(ldifValue("sn", p.sn))
	if p.mail != "" {
		b.WriteString("mail: " + p.mail + "\n")
	}
	if p.title != "" {
		b.WriteString("title: " + p.title + "\n")
	}
	return b.String() + "\n"
}

// groupLDIF is one group's entry, with members.
func (d directory) groupLDIF(t team, members []string) string {
	var b strings.Builder
	b.WriteString("dn: " + d.groupDN(t.key) + "\n")
	if d.flavor == FlavorActiveDirectory {
		gt := "-2147483646"
		if t.distribution {
			gt = "8"
		}
		b.WriteString("objectClass: group\nsAMAccountName: " + t.key + "\ngroupType: " + gt + "\n")
	} else {
		b.WriteString("objectClass: groupOfNames\n")
		if t.mail != "" {
			// groupOfNames has no mail: schemas add it with an auxiliary
			// class; extensibleObject stands in for one.
			b.WriteString("objectClass: extensibleObject\n")
		}
		b.WriteString("cn: " + t.key + "\n")
	}
	if t.mail != "" {
		b.WriteString("mail: " + t.mail + "\n")
	}
	for _, m := range members {
		b.WriteString("member: " + d.memberDN(m) + "\n")
	}
	return b.String() + "\n"
}

// seed is the whole directory as LDIF, with pad extra users
// (pad0001@example.test, ...) to make a full read span batches.
func (d directory) seed(pad int) string {
	var b strings.Builder
	if d.flavor == FlavorActiveDirectory {
		b.WriteString("dn: " + d.base + "\nobjectClass: organizationalUnit\n\n")
	} else {
		b.WriteString("dn: " + d.base + "\nobjectClass: organizationalUnit\nou: corp\n\n")
		b.WriteString("dn: ou=people," + d.base + "\nobjectClass: organizationalUnit\nou: people\n\n")
		b.WriteString("dn: ou=groups," + d.base + "\nobjectClass: organizationalUnit\nou: groups\n\n")
	}
	for _, p := range people {
		b.WriteString(d.userLDIF(p))
	}
	for i := 1; i <= pad; i++ {
		b.WriteString(d.userLDIF(person{key: fmt.Sprintf("pad%04d", i), given: "Pad", sn: fmt.Sprintf("%04d", i), mail: fmt.Sprintf("pad%04d@example.test", i)}))
	}
	for _, t := range teams {
		members := t.members
		if t.key == cycleEdge[0] && d.flavor == FlavorOpenLDAP {
			members = append(members, cycleEdge[1])
		}
		b.WriteString(d.groupLDIF(t, members))
	}
	if d.flavor == FlavorActiveDirectory {
		b.WriteString("dn: " + d.groupDN(cycleEdge[0]) + "\nchangetype: modify\nadd: member\nmember: " + d.groupDN(cycleEdge[1]) + "\n-\n\n")
	}
	return b.String()
}

// startDirectory starts a server of flavor with the test directory.
func startDirectory(t *testing.T, flavor Flavor, pad int) directory {
	t.Helper()
	if flavor == FlavorActiveDirectory {
		d := directory{flavor: flavor, base: "OU=Corp,DC=example,DC=test"}
		d.srv = testenv.StartSambaDC(t, "")
		d.srv.Apply(t, d.seed(pad))
		return d
	}
	d := directory{flavor: flavor, base: "ou=corp,dc=example,dc=com"}
	// slapadd takes plain entries only: the seed has no change records
	// for OpenLDAP.
	d.srv = testenv.StartSlapd(t, d.seed(pad))
	return d
}

// config is the connector's config block for the directory, bound as the
// server's least privileged reader over ldaps://, or plain ldap:// at url
// when given (a counting proxy).
func (d directory) config(t *testing.T, url string, override map[string]any) *connectorv1.Config {
	t.Helper()
	m := map[string]any{
		"url":           d.srv.LDAPSURL,
		"ca_file":       d.srv.CAFile,
		"bind_dn":       d.srv.ReaderDN,
		"bind_password": d.srv.ReaderPassword,
		"base_dn":       d.base,
	}
	if url != "" {
		m["url"] = url
		delete(m, "ca_file")
	}
	for k, v := range override {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return rawConfig(t, t.TempDir(), m)
}

// wantKind is the kind a seeded group reads as.
func (d directory) wantKind(t team) string {
	switch {
	case d.flavor == FlavorActiveDirectory && t.distribution:
		return connector.GroupDistribution
	case t.mail != "":
		return connector.GroupMailSecurity
	}
	return connector.GroupSecurity
}

// id reads the ID the server gave the entry at dn.
func (d directory) id(t *testing.T, dn string) string {
	t.Helper()
	attr := DefaultAttributes(d.flavor).ID
	res, err := d.srv.Dial(t).Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("reading the ID of %s: %v", dn, err)
	}
	v := res.Entries[0].GetRawAttributeValue(attr)
	id, ok := GUIDFromBytes(v)
	if !ok {
		id, ok = CanonicalGUID(string(v))
	}
	if !ok {
		t.Fatalf("%s: %s %q is no GUID", dn, attr, v)
	}
	return id
}
