package ldap

import (
	"strconv"

	"github.com/dirsync/dirsync/connectors/connector"
)

// The user attributes (connector.Attributes' names) this connector reads
// when a sync asks for them, by flavor: Active Directory's own attribute
// for each, and OpenLDAP's inetOrgPerson one where it has one. manager is
// not among them yet: it holds a DN, which would need resolving to an
// object ID across reads.
func attributeMap(f Flavor) map[string]string {
	m := map[string]string{
		connector.AttrPreferredLanguage: "preferredLanguage",
		connector.AttrEmployeeType:      "employeeType",
		connector.AttrOfficeLocation:    "physicalDeliveryOfficeName",
		connector.AttrCity:              "l",
		connector.AttrMobilePhone:       "mobile",
	}
	switch f {
	case FlavorActiveDirectory:
		m[connector.AttrEmployeeID] = "employeeID"
		m[connector.AttrCompanyName] = "company"
		m[connector.AttrCountry] = "co"
		// Exchange's custom attributes, in the schema where Exchange was
		// installed (an absent attribute reads as empty).
		for n := 1; n <= 15; n++ {
			m[connector.ExtensionAttribute(n)] = "extensionAttribute" + strconv.Itoa(n)
		}
	case FlavorOpenLDAP:
		m[connector.AttrEmployeeID] = "employeeNumber"
		m[connector.AttrCompanyName] = "o"
	}
	return m
}

// ReadableAttributes lists the attribute names this connector can read in
// some flavor, for Describe.
func ReadableAttributes() []string {
	ad, ol := attributeMap(FlavorActiveDirectory), attributeMap(FlavorOpenLDAP)
	var out []string
	for _, a := range connector.Attributes() {
		if ad[a] != "" || ol[a] != "" {
			out = append(out, a)
		}
	}
	return out
}

// attrRecipientTypeDetails is Exchange's msExchRecipientTypeDetails: what
// kind of recipient an Active Directory user is, in an organisation that
// runs (or ran) Exchange.
const attrRecipientTypeDetails = "msExchRecipientTypeDetails"

// MailboxPurpose returns the mailbox purpose (connector.MailboxUser, ...)
// of a msExchRecipientTypeDetails value, and false for a value that names
// no mailbox of a purpose (a mail user, a contact, a group). The remote
// kinds are hybrid mailboxes moved to Exchange Online.
func MailboxPurpose(recipientTypeDetails string) (string, bool) {
	v, err := strconv.ParseUint(recipientTypeDetails, 10, 64)
	if err != nil {
		return "", false
	}
	switch v {
	case 1, 2147483648: // UserMailbox, RemoteUserMailbox
		return connector.MailboxUser, true
	case 2: // LinkedMailbox
		return connector.MailboxLinked, true
	case 4, 34359738368: // SharedMailbox, RemoteSharedMailbox
		return connector.MailboxShared, true
	case 16, 8589934592: // RoomMailbox, RemoteRoomMailbox
		return connector.MailboxRoom, true
	case 32, 17179869184: // EquipmentMailbox, RemoteEquipmentMailbox
		return connector.MailboxEquipment, true
	}
	return "", false
}
