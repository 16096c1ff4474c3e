package ldap

import (
	"context"
	"strconv"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// The user attributes (connector.Attributes' names) this connector reads
// when a sync asks for them, by flavor: Active Directory's own attribute
// for each, and OpenLDAP's inetOrgPerson one where it has one. manager
// holds a DN, which the reader resolves to the manager's object ID
// (resolveManagers).
func attributeMap(f Flavor) map[string]string {
	m := map[string]string{
		connector.AttrManager:           "manager",
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

// managerRef is a user whose manager's DN is still to resolve.
type managerRef struct{ user, dn string }

// takeManager removes a user's manager DN from its attributes, to send
// once resolved, and returns the reference (false when there is none to
// resolve: not asked for, not said, or no manager).
func takeManager(u *connectorv1.User) (managerRef, bool) {
	dn, ok := u.GetAttributes()[connector.AttrManager]
	if !ok || dn == "" {
		return managerRef{}, false
	}
	delete(u.Attributes, connector.AttrManager)
	if len(u.Attributes) == 0 {
		u.Attributes = nil
	}
	return managerRef{user: u.GetId(), dn: normalOrRaw(dn)}, true
}

// resolveManagers sends, for each user of refs, its manager's object ID
// (as a change of that attribute alone, which the host merges into the
// user): from known (user DN key to ID) where the manager was read, else
// by searching the DNs; a DN that names no entry with an ID (a manager
// deleted since) gives "".
func (r *dirReader) resolveManagers(ctx context.Context, refs []managerRef, known map[string]string) error {
	if len(refs) == 0 {
		return nil
	}
	ids := map[string]string{}
	var search []string
	for _, ref := range refs {
		if id, ok := known[ref.dn]; ok {
			ids[ref.dn] = id
		} else if _, asked := ids[ref.dn]; !asked {
			ids[ref.dn] = ""
			search = append(search, ref.dn)
		}
	}
	if len(search) > 0 {
		err := r.byDN(ctx, StageUsers, "(objectClass=*)", search, []string{r.dec.Attrs.ID}, func(e *goldap.Entry) error {
			if id, ok := r.dec.id(e); ok {
				ids[normalOrRaw(e.DN)] = id
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, ref := range refs {
		u := &connectorv1.User{Id: ref.user, Attributes: map[string]string{connector.AttrManager: ids[ref.dn]}}
		if err := r.out.user(u); err != nil {
			return err
		}
	}
	return nil
}
