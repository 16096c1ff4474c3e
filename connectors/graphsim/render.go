package graphsim

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// The property tables below say which properties graphsim knows for each
// type and how to write them. Properties Graph has but the simulated
// directory does not model are written as null or [] (as Graph does for
// unset values), so $select accepts every name listed.

type userProp struct {
	name  string
	write func(o *jsonObj, u *User, s *Sim)
}

type groupProp struct {
	name  string
	write func(o *jsonObj, g *Group, s *Sim)
}

// memberProp describes org contacts and devices, which exist only as group
// members; their details derive from the member ID.
type memberProp struct {
	name  string
	write func(o *jsonObj, m *Member)
}

func nullUser(name string) userProp {
	return userProp{name, func(o *jsonObj, _ *User, _ *Sim) { o.null(name) }}
}

func emptyUser(name string) userProp {
	return userProp{name, func(o *jsonObj, _ *User, _ *Sim) { o.raw(name, "[]") }}
}

func nullGroup(name string) groupProp {
	return groupProp{name, func(o *jsonObj, _ *Group, _ *Sim) { o.null(name) }}
}

func emptyGroup(name string) groupProp {
	return groupProp{name, func(o *jsonObj, _ *Group, _ *Sim) { o.raw(name, "[]") }}
}

func nullMember(name string) memberProp {
	return memberProp{name, func(o *jsonObj, _ *Member) { o.null(name) }}
}

func emptyMember(name string) memberProp {
	return memberProp{name, func(o *jsonObj, _ *Member) { o.raw(name, "[]") }}
}

// derivedTime is a stable timestamp between 2016 and 2024 derived from an
// object ID.
func derivedTime(id, salt string) string {
	h := hash64(salt + id)
	t := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h%(8*365*24*3600)) * time.Second)
	return t.Format("2006-01-02T15:04:05Z")
}

// securityIdentifier is the SID Entra derives from an object ID
// (S-1-12-1-a-b-c-d, the GUID's four little-endian 32-bit words).
func securityIdentifier(id string) string {
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil || len(b) != 16 {
		return ""
	}
	be := func(x []byte) uint64 { return uint64(x[0])<<24 | uint64(x[1])<<16 | uint64(x[2])<<8 | uint64(x[3]) }
	le := func(x []byte) uint64 { return uint64(x[3])<<24 | uint64(x[2])<<16 | uint64(x[1])<<8 | uint64(x[0]) }
	d2 := uint64(b[4])<<8 | uint64(b[5])
	d3 := uint64(b[6])<<8 | uint64(b[7])
	return "S-1-12-1-" + strconv.FormatUint(be(b[0:4]), 10) + "-" + strconv.FormatUint(d2|d3<<16, 10) + "-" +
		strconv.FormatUint(le(b[8:12]), 10) + "-" + strconv.FormatUint(le(b[12:16]), 10)
}

func isGuest(u *User) bool { return strings.EqualFold(u.UserType, "Guest") }

// userProps lists the user properties graphsim serves.
var userProps = []userProp{
	{"id", func(o *jsonObj, u *User, _ *Sim) { o.str("id", u.ID) }},
	{"accountEnabled", func(o *jsonObj, u *User, _ *Sim) { o.boolean("accountEnabled", u.AccountEnabled) }},
	nullUser("ageGroup"),
	{"assignedLicenses", func(o *jsonObj, u *User, _ *Sim) {
		o.key("assignedLicenses")
		o.b = append(o.b, '[')
		for i, sku := range u.AssignedLicenses {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = append(o.b, `{"disabledPlans":[],"skuId":`...)
			o.b = appendJSONString(o.b, sku)
			o.b = append(o.b, '}')
		}
		o.b = append(o.b, ']')
	}},
	emptyUser("assignedPlans"),
	{"businessPhones", func(o *jsonObj, u *User, _ *Sim) {
		h := hash64("phone" + u.ID)
		if u.Department == "" || isGuest(u) || h%10 < 4 {
			o.raw("businessPhones", "[]")
			return
		}
		o.strs("businessPhones", []string{"+1 425 555 0" + strconv.Itoa(100+int(h/10%900))})
	}},
	{"city", func(o *jsonObj, u *User, _ *Sim) { o.str("city", u.City) }},
	{"companyName", func(o *jsonObj, u *User, s *Sim) {
		if u.CompanyName != "" {
			o.str("companyName", u.CompanyName)
			return
		}
		if isGuest(u) || u.GivenName == "" {
			o.null("companyName")
			return
		}
		o.str("companyName", s.org)
	}},
	nullUser("consentProvidedForMinor"),
	{"country", func(o *jsonObj, u *User, _ *Sim) { o.str("country", u.Country) }},
	{"createdDateTime", func(o *jsonObj, u *User, _ *Sim) { o.str("createdDateTime", derivedTime(u.ID, "created")) }},
	{"creationType", func(o *jsonObj, u *User, _ *Sim) {
		if isGuest(u) {
			o.str("creationType", "Invitation")
			return
		}
		o.null("creationType")
	}},
	nullUser("deletedDateTime"),
	{"department", func(o *jsonObj, u *User, _ *Sim) { o.str("department", u.Department) }},
	{"displayName", func(o *jsonObj, u *User, _ *Sim) { o.str("displayName", u.DisplayName) }},
	nullUser("employeeHireDate"),
	{"employeeId", func(o *jsonObj, u *User, _ *Sim) { o.str("employeeId", u.EmployeeID) }},
	{"employeeType", func(o *jsonObj, u *User, _ *Sim) { o.str("employeeType", u.EmployeeType) }},
	{"externalUserState", func(o *jsonObj, u *User, _ *Sim) {
		if isGuest(u) {
			o.str("externalUserState", "Accepted")
			return
		}
		o.null("externalUserState")
	}},
	nullUser("externalUserStateChangeDateTime"),
	nullUser("faxNumber"),
	{"givenName", func(o *jsonObj, u *User, _ *Sim) { o.str("givenName", u.GivenName) }},
	{"identities", func(o *jsonObj, u *User, s *Sim) {
		o.key("identities")
		issuer := s.cfg.TenantDomain
		typ := "userPrincipalName"
		if isGuest(u) {
			typ = "federated"
			if _, d, ok := strings.Cut(u.Mail, "@"); ok {
				issuer = "ExternalAzureAD"
				if d == "gmail.com" || d == "outlook.com" {
					issuer = "MicrosoftAccount"
				}
			}
			o.b = append(o.b, `[{"signInType":"federated","issuer":`...)
			o.b = appendJSONString(o.b, issuer)
			o.b = append(o.b, `,"issuerAssignedId":null}]`...)
			return
		}
		o.b = append(o.b, `[{"signInType":`...)
		o.b = appendJSONString(o.b, typ)
		o.b = append(o.b, `,"issuer":`...)
		o.b = appendJSONString(o.b, issuer)
		o.b = append(o.b, `,"issuerAssignedId":`...)
		o.b = appendJSONString(o.b, u.UserPrincipalName)
		o.b = append(o.b, "}]"...)
	}},
	emptyUser("imAddresses"),
	nullUser("isResourceAccount"),
	{"jobTitle", func(o *jsonObj, u *User, _ *Sim) { o.str("jobTitle", u.JobTitle) }},
	nullUser("lastPasswordChangeDateTime"),
	nullUser("legalAgeGroupClassification"),
	{"mail", func(o *jsonObj, u *User, _ *Sim) { o.str("mail", u.Mail) }},
	{"mailNickname", func(o *jsonObj, u *User, _ *Sim) {
		nick, _, _ := strings.Cut(u.UserPrincipalName, "@")
		o.str("mailNickname", nick)
	}},
	{"mobilePhone", func(o *jsonObj, u *User, _ *Sim) { o.str("mobilePhone", u.MobilePhone) }},
	{"officeLocation", func(o *jsonObj, u *User, _ *Sim) { o.str("officeLocation", u.OfficeLocation) }},
	nullUser("onPremisesDistinguishedName"),
	nullUser("onPremisesDomainName"),
	nullUser("onPremisesImmutableId"),
	nullUser("onPremisesLastSyncDateTime"),
	nullUser("onPremisesSamAccountName"),
	nullUser("onPremisesSecurityIdentifier"),
	nullUser("onPremisesSyncEnabled"),
	nullUser("onPremisesUserPrincipalName"),
	{"otherMails", func(o *jsonObj, u *User, _ *Sim) {
		if isGuest(u) && u.Mail != "" {
			o.strs("otherMails", []string{u.Mail})
			return
		}
		o.raw("otherMails", "[]")
	}},
	nullUser("passwordPolicies"),
	nullUser("postalCode"),
	nullUser("preferredDataLocation"),
	{"preferredLanguage", func(o *jsonObj, u *User, _ *Sim) { o.str("preferredLanguage", u.PreferredLanguage) }},
	{"proxyAddresses", func(o *jsonObj, u *User, _ *Sim) {
		switch {
		case len(u.ProxyAddresses) > 0:
			o.strs("proxyAddresses", u.ProxyAddresses)
		case u.Mail == "":
			o.raw("proxyAddresses", "[]")
		case isGuest(u) || strings.EqualFold(u.Mail, u.UserPrincipalName):
			o.strs("proxyAddresses", []string{"SMTP:" + u.Mail})
		default:
			o.strs("proxyAddresses", []string{"SMTP:" + u.Mail, "smtp:" + u.UserPrincipalName})
		}
	}},
	{"securityIdentifier", func(o *jsonObj, u *User, _ *Sim) { o.str("securityIdentifier", securityIdentifier(u.ID)) }},
	nullUser("showInAddressList"),
	nullUser("state"),
	nullUser("streetAddress"),
	{"surname", func(o *jsonObj, u *User, _ *Sim) { o.str("surname", u.Surname) }},
	{"usageLocation", func(o *jsonObj, u *User, _ *Sim) {
		if u.UsageLocation != "" {
			o.str("usageLocation", u.UsageLocation)
			return
		}
		if len(u.AssignedLicenses) == 0 {
			o.null("usageLocation")
			return
		}
		o.str("usageLocation", "US")
	}},
	{"userPrincipalName", func(o *jsonObj, u *User, _ *Sim) { o.str("userPrincipalName", u.UserPrincipalName) }},
	{"userType", func(o *jsonObj, u *User, _ *Sim) { o.str("userType", u.UserType) }},
	// Appended, not in alphabetical order: a property's index is its bit
	// in the change log's masks and its number in delta tokens, which
	// state files keep.
	//
	// onPremisesExtensionAttributes is a complex property that Graph
	// always writes with its fifteen keys, null when unset
	// (https://learn.microsoft.com/graph/api/resources/onpremisesextensionattributes).
	{"onPremisesExtensionAttributes", func(o *jsonObj, u *User, _ *Sim) {
		o.key("onPremisesExtensionAttributes")
		o.b = append(o.b, '{')
		for i, v := range u.ExtensionAttributes {
			if i > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendJSONString(o.b, "extensionAttribute"+strconv.Itoa(i+1))
			o.b = append(o.b, ':')
			if v == "" {
				o.b = append(o.b, "null"...)
			} else {
				o.b = appendJSONString(o.b, v)
			}
		}
		o.b = append(o.b, '}')
	}},
}

// managerBit marks a change of User.ManagerID in a change mask; the
// manager is a navigation property, not one of userProps.
const managerBit = uint64(1) << 63

// userDefault is Graph's default property set for users, in Graph's order.
var userDefault = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

// groupProps lists the group properties graphsim serves; without $select
// Graph returns all of them.
var groupProps = []groupProp{
	{"id", func(o *jsonObj, g *Group, _ *Sim) { o.str("id", g.ID) }},
	nullGroup("deletedDateTime"),
	nullGroup("classification"),
	{"createdDateTime", func(o *jsonObj, g *Group, _ *Sim) { o.str("createdDateTime", derivedTime(g.ID, "created")) }},
	{"creationOptions", func(o *jsonObj, g *Group, _ *Sim) {
		if g.IsUnified() && hash64("team"+g.ID)%3 == 0 {
			o.strs("creationOptions", []string{"Team", "ExchangeProvisioningFlags:3552"})
			return
		}
		o.raw("creationOptions", "[]")
	}},
	{"description", func(o *jsonObj, g *Group, _ *Sim) {
		switch {
		case g.DisplayName == "All Company" && g.IsUnified():
			o.str("description", "This is the default group for everyone in the network")
		case g.IsUnified():
			o.str("description", g.DisplayName)
		default:
			o.null("description")
		}
	}},
	{"displayName", func(o *jsonObj, g *Group, _ *Sim) { o.str("displayName", g.DisplayName) }},
	{"expirationDateTime", func(o *jsonObj, g *Group, _ *Sim) { o.null("expirationDateTime") }},
	{"groupTypes", func(o *jsonObj, g *Group, _ *Sim) { o.strs("groupTypes", g.GroupTypes) }},
	{"isAssignableToRole", func(o *jsonObj, g *Group, _ *Sim) { o.null("isAssignableToRole") }},
	{"mail", func(o *jsonObj, g *Group, _ *Sim) { o.str("mail", g.Mail) }},
	{"mailEnabled", func(o *jsonObj, g *Group, _ *Sim) { o.boolean("mailEnabled", g.MailEnabled) }},
	{"mailNickname", func(o *jsonObj, g *Group, _ *Sim) { o.str("mailNickname", g.MailNickname) }},
	nullGroup("membershipRule"),
	nullGroup("membershipRuleProcessingState"),
	nullGroup("onPremisesDomainName"),
	nullGroup("onPremisesLastSyncDateTime"),
	nullGroup("onPremisesNetBiosName"),
	nullGroup("onPremisesSamAccountName"),
	nullGroup("onPremisesSecurityIdentifier"),
	nullGroup("onPremisesSyncEnabled"),
	nullGroup("preferredDataLocation"),
	nullGroup("preferredLanguage"),
	{"proxyAddresses", func(o *jsonObj, g *Group, s *Sim) {
		if g.Mail == "" {
			o.raw("proxyAddresses", "[]")
			return
		}
		addrs := []string{"SMTP:" + g.Mail}
		if local, _, ok := strings.Cut(g.Mail, "@"); ok && s.custom != s.cfg.TenantDomain {
			addrs = append(addrs, "smtp:"+local+"@"+s.custom)
		}
		o.strs("proxyAddresses", addrs)
	}},
	{"renewedDateTime", func(o *jsonObj, g *Group, _ *Sim) { o.str("renewedDateTime", derivedTime(g.ID, "created")) }},
	emptyGroup("resourceBehaviorOptions"),
	{"resourceProvisioningOptions", func(o *jsonObj, g *Group, _ *Sim) {
		if g.IsUnified() && hash64("team"+g.ID)%3 == 0 {
			o.strs("resourceProvisioningOptions", []string{"Team"})
			return
		}
		o.raw("resourceProvisioningOptions", "[]")
	}},
	{"securityEnabled", func(o *jsonObj, g *Group, _ *Sim) { o.boolean("securityEnabled", g.SecurityEnabled) }},
	{"securityIdentifier", func(o *jsonObj, g *Group, _ *Sim) { o.str("securityIdentifier", securityIdentifier(g.ID)) }},
	nullGroup("theme"),
	{"visibility", func(o *jsonObj, g *Group, _ *Sim) {
		switch {
		case !g.IsUnified():
			o.null("visibility")
		case g.DisplayName == "All Company" || hash64("vis"+g.ID)%2 == 0:
			o.str("visibility", "Public")
		default:
			o.str("visibility", "Private")
		}
	}},
	emptyGroup("onPremisesProvisioningErrors"),
	emptyGroup("serviceProvisioningErrors"),
}

// contactDetails derives an org contact's person from its ID.
func contactDetails(id string) (given, family, company, mail string) {
	p := &prng{s: hash64("contact" + id)}
	c := pickCulture(p)
	given, ga := nameParts(pick(p, c.given))
	family, fa := nameParts(pick(p, c.family))
	company = pick(p, contactCompanies)
	mail = localPart(strings.ReplaceAll(ga, " ", "")+"."+strings.ReplaceAll(fa, " ", "")) + "@" + pick(p, externalDomains)
	return given, family, company, mail
}

// contactDisplayName orders the parts as the generator does for users.
func contactDisplayName(id string) string {
	p := &prng{s: hash64("contact" + id)}
	c := pickCulture(p)
	given, family, _, _ := contactDetails(id)
	switch {
	case c.familyFirst && c.joinNoSpace:
		return family + given
	case c.familyFirst:
		return family + " " + given
	}
	return given + " " + family
}

var contactProps = []memberProp{
	{"id", func(o *jsonObj, m *Member) { o.str("id", m.ID) }},
	nullMember("deletedDateTime"),
	emptyMember("addresses"),
	{"companyName", func(o *jsonObj, m *Member) { _, _, c, _ := contactDetails(m.ID); o.str("companyName", c) }},
	nullMember("department"),
	{"displayName", func(o *jsonObj, m *Member) { o.str("displayName", contactDisplayName(m.ID)) }},
	{"givenName", func(o *jsonObj, m *Member) { g, _, _, _ := contactDetails(m.ID); o.str("givenName", g) }},
	nullMember("jobTitle"),
	{"mail", func(o *jsonObj, m *Member) { _, _, _, mail := contactDetails(m.ID); o.str("mail", mail) }},
	{"mailNickname", func(o *jsonObj, m *Member) {
		_, _, _, mail := contactDetails(m.ID)
		nick, _, _ := strings.Cut(mail, "@")
		o.str("mailNickname", nick)
	}},
	nullMember("onPremisesLastSyncDateTime"),
	emptyMember("onPremisesProvisioningErrors"),
	nullMember("onPremisesSyncEnabled"),
	emptyMember("phones"),
	{"proxyAddresses", func(o *jsonObj, m *Member) {
		_, _, _, mail := contactDetails(m.ID)
		o.strs("proxyAddresses", []string{"SMTP:" + mail})
	}},
	emptyMember("serviceProvisioningErrors"),
	{"surname", func(o *jsonObj, m *Member) { _, f, _, _ := contactDetails(m.ID); o.str("surname", f) }},
}

// deviceDetails derives a device from its ID.
func deviceDetails(id string) (name, deviceID string, model int) {
	p := &prng{s: hash64("device" + id)}
	model = p.intn(len(deviceModels))
	deviceID = p.guid()
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [7]byte
	for i := range b {
		b[i] = letters[p.intn(len(letters))]
	}
	switch deviceModels[model].os {
	case "Windows":
		name = "DESKTOP-" + string(b[:])
	case "MacMDM":
		name = "MAC-" + string(b[:])
	default:
		name = deviceModels[model].model + " " + string(b[:4])
	}
	return name, deviceID, model
}

var deviceProps = []memberProp{
	{"id", func(o *jsonObj, m *Member) { o.str("id", m.ID) }},
	nullMember("deletedDateTime"),
	{"accountEnabled", func(o *jsonObj, m *Member) { o.boolean("accountEnabled", true) }},
	emptyMember("alternativeSecurityIds"),
	{"approximateLastSignInDateTime", func(o *jsonObj, m *Member) {
		o.str("approximateLastSignInDateTime", derivedTime(m.ID, "signin"))
	}},
	nullMember("complianceExpirationDateTime"),
	{"deviceId", func(o *jsonObj, m *Member) { _, id, _ := deviceDetails(m.ID); o.str("deviceId", id) }},
	nullMember("deviceMetadata"),
	{"deviceVersion", func(o *jsonObj, m *Member) { o.raw("deviceVersion", "2") }},
	{"displayName", func(o *jsonObj, m *Member) { n, _, _ := deviceDetails(m.ID); o.str("displayName", n) }},
	{"isCompliant", func(o *jsonObj, m *Member) { o.boolean("isCompliant", hash64("c"+m.ID)%5 != 0) }},
	{"isManaged", func(o *jsonObj, m *Member) { o.boolean("isManaged", true) }},
	{"manufacturer", func(o *jsonObj, m *Member) {
		_, _, i := deviceDetails(m.ID)
		o.str("manufacturer", deviceModels[i].manufacturer)
	}},
	{"model", func(o *jsonObj, m *Member) { _, _, i := deviceDetails(m.ID); o.str("model", deviceModels[i].model) }},
	nullMember("onPremisesLastSyncDateTime"),
	nullMember("onPremisesSyncEnabled"),
	{"operatingSystem", func(o *jsonObj, m *Member) {
		_, _, i := deviceDetails(m.ID)
		o.str("operatingSystem", deviceModels[i].os)
	}},
	{"operatingSystemVersion", func(o *jsonObj, m *Member) {
		_, _, i := deviceDetails(m.ID)
		o.str("operatingSystemVersion", deviceModels[i].version)
	}},
	emptyMember("physicalIds"),
	{"profileType", func(o *jsonObj, m *Member) { o.str("profileType", "RegisteredDevice") }},
	{"registrationDateTime", func(o *jsonObj, m *Member) { o.str("registrationDateTime", derivedTime(m.ID, "created")) }},
	emptyMember("systemLabels"),
	{"trustType", func(o *jsonObj, m *Member) {
		_, _, i := deviceDetails(m.ID)
		if deviceModels[i].os == "Windows" {
			o.str("trustType", "AzureAd")
			return
		}
		o.str("trustType", "Workplace")
	}},
}

// selection is a parsed $select (or the default set) resolved against each
// type's property table. Indexes exclude "id", which is always written
// first.
type selection struct {
	names   []string // canonical names as selected, for @odata.context; nil without $select
	user    []int
	group   []int
	contact []int
	device  []int
}

func indexOfUserProp(name string) int {
	for i := range userProps {
		if strings.EqualFold(userProps[i].name, name) {
			return i
		}
	}
	return -1
}

func indexOfGroupProp(name string) int {
	for i := range groupProps {
		if strings.EqualFold(groupProps[i].name, name) {
			return i
		}
	}
	return -1
}

func indexOfMemberProp(props []memberProp, name string) int {
	for i := range props {
		if strings.EqualFold(props[i].name, name) {
			return i
		}
	}
	return -1
}

// defaultSelection is what Graph returns without $select.
func defaultSelection() *selection {
	sel := &selection{}
	for _, n := range userDefault {
		if n != "id" {
			sel.user = append(sel.user, indexOfUserProp(n))
		}
	}
	for i := 1; i < len(groupProps); i++ {
		sel.group = append(sel.group, i)
	}
	for i := 1; i < len(contactProps); i++ {
		sel.contact = append(sel.contact, i)
	}
	for i := 1; i < len(deviceProps); i++ {
		sel.device = append(sel.device, i)
	}
	return sel
}

// writeUser writes one user object, as the content faults cf serve it.
// Without $select id comes last, as Graph writes the default property
// set.
func (s *Sim) writeUser(o *jsonObj, u *User, sel *selection, odataType bool, cf *contentFaults) {
	u, raw := cf.user(u)
	o.keepInvalid = raw
	defer func() { o.keepInvalid = false }()
	o.begin()
	if odataType {
		o.str("@odata.type", TypeUser)
	}
	if sel.names != nil || odataType {
		o.str("id", u.ID)
	}
	for _, i := range sel.user {
		userProps[i].write(o, u, s)
	}
	if sel.names == nil && !odataType {
		o.str("id", u.ID)
	}
	o.end()
}

func (s *Sim) writeGroup(o *jsonObj, g *Group, sel *selection, odataType bool) {
	o.begin()
	if odataType {
		o.str("@odata.type", TypeGroup)
	}
	o.str("id", g.ID)
	for _, i := range sel.group {
		groupProps[i].write(o, g, s)
	}
	o.end()
}

// writeMember writes a directoryObject of any type with its @odata.type.
func (s *Sim) writeMember(o *jsonObj, snap *snapshot, m *Member, sel *selection, cf *contentFaults) {
	switch m.ODataType {
	case TypeUser:
		if u := snap.user(m.ID); u != nil {
			s.writeUser(o, u, sel, true, cf)
			return
		}
	case TypeGroup:
		if g := snap.group(m.ID); g != nil {
			s.writeGroup(o, g, sel, true)
			return
		}
	case TypeOrgContact, TypeDevice:
		props, idx := contactProps, sel.contact
		if m.ODataType == TypeDevice {
			props, idx = deviceProps, sel.device
		}
		o.begin()
		o.str("@odata.type", m.ODataType)
		o.str("id", m.ID)
		for _, i := range idx {
			props[i].write(o, m)
		}
		o.end()
		return
	}
	// A member whose object no longer exists: type and ID only.
	o.begin()
	o.str("@odata.type", m.ODataType)
	o.str("id", m.ID)
	o.end()
}
