package connector

// Group kinds, as SyncRequest.group_types, Group.kind and the import
// policy name them. Each connector classifies its directory's groups into
// them (azuread as the Entra admin center does, ldap by Active Directory's
// groupType); the daemon never looks at a directory's own group fields.
const (
	GroupUnified      = "unified"
	GroupSecurity     = "security"
	GroupMailSecurity = "mail_security"
	GroupDistribution = "distribution"
)

// GroupKinds lists every group kind.
func GroupKinds() []string {
	return []string{GroupUnified, GroupSecurity, GroupMailSecurity, GroupDistribution}
}
