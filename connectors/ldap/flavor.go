package ldap

import (
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// Flavor is the kind of directory server: it picks the default filters
// and attributes, how IDs are encoded, how a disabled account and a
// group's kind are read.
type Flavor string

// The flavors.
const (
	// FlavorUnknown is a flavor not configured and not yet detected.
	FlavorUnknown Flavor = ""
	// FlavorActiveDirectory is Microsoft Active Directory or a Samba AD DC.
	FlavorActiveDirectory Flavor = "active_directory"
	// FlavorOpenLDAP is OpenLDAP's slapd (inetOrgPerson users,
	// groupOfNames or groupOfUniqueNames groups).
	FlavorOpenLDAP Flavor = "openldap"
)

// Default filters of each flavor.
const (
	adUserFilter  = "(&(objectCategory=person)(objectClass=user))"
	adGroupFilter = "(objectClass=group)"
	olUserFilter  = "(objectClass=inetOrgPerson)"
	olGroupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
)

// Attributes names the LDAP attributes a user or group is read from.
// Besides these, decoding reads cn (the display name's fallback), and for
// Active Directory sAMAccountName, proxyAddresses, userAccountControl,
// groupType and isDeleted (see Decoder.UserAttributes).
type Attributes struct {
	// ID holds the object's GUID: binary objectGUID (Active Directory)
	// or the textual entryUUID (OpenLDAP).
	ID string
	// Mail holds the e-mail address.
	Mail string
	// DisplayName holds the display name; cn stands in when it is empty.
	DisplayName string
	// GivenName holds the given (first) name.
	GivenName string
	// Surname holds the surname.
	Surname string
	// Department holds the department.
	Department string
	// JobTitle holds the job title.
	JobTitle string
	// UPN holds the user principal name; "" when the schema has none
	// (OpenLDAP), and user_principal_name is then not sent.
	UPN string
	// Members lists the group attributes holding member DNs.
	Members []string
}

// DefaultAttributes returns the attribute names of flavor f. An unknown
// flavor gets OpenLDAP's, the standard (RFC 4519, RFC 2798) names.
func DefaultAttributes(f Flavor) Attributes {
	if f == FlavorActiveDirectory {
		return Attributes{
			ID: "objectGUID", Mail: "mail", DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
			Department: "department", JobTitle: "title", UPN: "userPrincipalName", Members: []string{"member"},
		}
	}
	return Attributes{
		ID: "entryUUID", Mail: "mail", DisplayName: "displayName", GivenName: "givenName", Surname: "sn",
		Department: "departmentNumber", JobTitle: "title", Members: []string{"member", "uniqueMember"},
	}
}

// RootDSEAttributes are the rootDSE attributes DetectFlavor looks at; a
// base search of "" must ask for them by name, as most are operational.
var RootDSEAttributes = []string{
	"objectClass", "vendorName", "vendorVersion", "supportedCapabilities",
	"forestFunctionality", "domainControllerFunctionality", "defaultNamingContext", "namingContexts",
}

// adCapabilityOID is LDAP_CAP_ACTIVE_DIRECTORY_OID, which every Active
// Directory (and Samba AD) domain controller lists in
// supportedCapabilities.
const adCapabilityOID = "1.2.840.113556.1.4.800"

// DetectFlavor tells the flavor of a server from its rootDSE entry.
// Active Directory publishes forestFunctionality and
// domainControllerFunctionality and lists LDAP_CAP_ACTIVE_DIRECTORY_OID in
// supportedCapabilities; OpenLDAP's rootDSE has the object class
// OpenLDAProotDSE, or a vendorName naming OpenLDAP. It returns
// FlavorUnknown when neither is recognised (then flavor must be set).
func DetectFlavor(rootDSE *goldap.Entry) Flavor {
	if rootDSE == nil {
		return FlavorUnknown
	}
	if len(rootDSE.GetEqualFoldAttributeValues("forestFunctionality")) > 0 ||
		len(rootDSE.GetEqualFoldAttributeValues("domainControllerFunctionality")) > 0 {
		return FlavorActiveDirectory
	}
	for _, v := range rootDSE.GetEqualFoldAttributeValues("supportedCapabilities") {
		if strings.TrimSpace(v) == adCapabilityOID {
			return FlavorActiveDirectory
		}
	}
	for _, v := range rootDSE.GetEqualFoldAttributeValues("objectClass") {
		if strings.EqualFold(strings.TrimSpace(v), "OpenLDAProotDSE") {
			return FlavorOpenLDAP
		}
	}
	for _, v := range rootDSE.GetEqualFoldAttributeValues("vendorName") {
		if strings.Contains(strings.ToLower(v), "openldap") {
			return FlavorOpenLDAP
		}
	}
	return FlavorUnknown
}

// PresenceAttribute returns X when filter is the presence filter (X=*),
// such as the default disabled_filter (pwdAccountLockedTime=*): whether it
// matches an entry can then be told from the entry itself, without a
// second search.
func PresenceAttribute(filter string) (string, bool) {
	p, err := goldap.CompileFilter(filter)
	if err != nil || p == nil || p.Tag != goldap.FilterPresent {
		return "", false
	}
	name, _ := p.Value.(string)
	if !isAttributeName(name) {
		return "", false
	}
	return name, true
}
