package connector

import (
	"maps"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// MergeUser lays the fields present in u over dst, the same user sent
// again in a sync (a connector may send a user in parts, e.g. ldap sends
// a manager's ID once resolved): an absent field keeps its value, it is
// never read as empty; attributes add up.
func MergeUser(dst, u *connectorv1.User) {
	if u.UserPrincipalName != nil {
		dst.UserPrincipalName = u.UserPrincipalName
	}
	if u.Mail != nil {
		dst.Mail = u.Mail
	}
	if u.DisplayName != nil {
		dst.DisplayName = u.DisplayName
	}
	if u.GivenName != nil {
		dst.GivenName = u.GivenName
	}
	if u.Surname != nil {
		dst.Surname = u.Surname
	}
	if u.Department != nil {
		dst.Department = u.Department
	}
	if u.JobTitle != nil {
		dst.JobTitle = u.JobTitle
	}
	if u.AccountEnabled != nil {
		dst.AccountEnabled = u.AccountEnabled
	}
	if u.UserType != nil {
		dst.UserType = u.UserType
	}
	if u.AssignedLicenseCount != nil {
		dst.AssignedLicenseCount = u.AssignedLicenseCount
	}
	if u.Guest != nil {
		dst.Guest = u.Guest
	}
	if u.Licensed != nil {
		dst.Licensed = u.Licensed
	}
	if u.Enabled != nil {
		dst.Enabled = u.Enabled
	}
	if u.Removed != nil {
		dst.Removed = u.Removed
	}
	if u.GetProxyAddressesKnown() {
		dst.ProxyAddresses, dst.ProxyAddressesKnown = u.ProxyAddresses, true
	}
	if u.MailboxPurpose != nil {
		dst.MailboxPurpose = u.MailboxPurpose
	}
	if len(u.Attributes) > 0 {
		if dst.Attributes == nil {
			dst.Attributes = map[string]string{}
		}
		maps.Copy(dst.Attributes, u.Attributes)
	}
}
