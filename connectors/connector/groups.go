package connector

import "strings"

// Group kinds, as SyncRequest.group_types and the import policy name them.
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

// GroupKind classifies a directory group the way the Entra admin center
// does. It returns "" for a group that is none of the four (neither mail-
// nor security-enabled), which no policy selects.
func GroupKind(groupTypes []string, mailEnabled, securityEnabled bool) string {
	for _, t := range groupTypes {
		if strings.EqualFold(t, "Unified") {
			return GroupUnified
		}
	}
	switch {
	case securityEnabled && mailEnabled:
		return GroupMailSecurity
	case securityEnabled:
		return GroupSecurity
	case mailEnabled:
		return GroupDistribution
	}
	return ""
}
