package connector

import (
	"slices"
	"strconv"
)

// User attributes, as SyncRequest.attributes, User.attributes and the
// import policy's attributes block name them: Microsoft Graph's property
// names, which Active Directory shares or maps plainly (company,
// physicalDeliveryOfficeName, l, c, mobile, employeeID), so that an admin
// who knows either recognises them. A connector reads only those asked
// for: each costs the directory work (Graph's $select, LDAP's attribute
// list).
const (
	AttrPreferredLanguage = "preferredLanguage"
	// AttrManager holds the manager's object ID, in the same directory.
	AttrManager        = "manager"
	AttrEmployeeID     = "employeeId"
	AttrEmployeeType   = "employeeType"
	AttrCompanyName    = "companyName"
	AttrOfficeLocation = "officeLocation"
	AttrCity           = "city"
	AttrCountry        = "country"
	AttrUsageLocation  = "usageLocation"
	AttrMobilePhone    = "mobilePhone"
)

// ExtensionAttribute returns the name of Exchange's custom attribute n
// (1 to 15): "extensionAttribute7". Entra serves them in
// onPremisesExtensionAttributes, Active Directory as attributes of their
// own.
func ExtensionAttribute(n int) string { return "extensionAttribute" + strconv.Itoa(n) }

// Attributes lists every attribute name, in a fixed order.
func Attributes() []string {
	names := []string{AttrPreferredLanguage, AttrManager, AttrEmployeeID, AttrEmployeeType, AttrCompanyName,
		AttrOfficeLocation, AttrCity, AttrCountry, AttrUsageLocation, AttrMobilePhone}
	for n := 1; n <= 15; n++ {
		names = append(names, ExtensionAttribute(n))
	}
	return names
}

// IsAttribute reports whether name is one of Attributes.
func IsAttribute(name string) bool { return slices.Contains(Attributes(), name) }

// Mailbox purposes, as User.mailbox_purpose names them: Exchange's
// (Graph's mailboxSettings.userPurpose).
const (
	MailboxUser      = "user"
	MailboxShared    = "shared"
	MailboxRoom      = "room"
	MailboxEquipment = "equipment"
	MailboxLinked    = "linked"
	MailboxOthers    = "others"
)

// MailboxPurposes lists every mailbox purpose.
func MailboxPurposes() []string {
	return []string{MailboxUser, MailboxShared, MailboxRoom, MailboxEquipment, MailboxLinked, MailboxOthers}
}
