package azuread

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/connectors/connector"
)

// Graph names.
const (
	// unifiedFilter selects Microsoft 365 groups in a groups listing
	// (TestConnection; delta takes no $filter).
	unifiedFilter  = "groupTypes/any(c:c eq 'Unified')"
	userODataType  = "#microsoft.graph.user"
	groupODataType = "#microsoft.graph.group"
)

// ErrUnknownGroupType is wrapped by the error of a Sync whose
// SyncRequest.group_types names a kind that connector.GroupKinds does not
// list.
var ErrUnknownGroupType = errors.New("unknown group type")

// groupKinds is the set of group kinds (connector.GroupUnified, ...) a
// sync reads.
type groupKinds map[string]bool

// parseGroupKinds checks SyncRequest.group_types. Empty means
// [connector.GroupUnified]; repeats are harmless; names are matched
// exactly, as the import policy spells them.
func parseGroupKinds(names []string) (groupKinds, error) {
	if len(names) == 0 {
		return groupKinds{connector.GroupUnified: true}, nil
	}
	allowed := connector.GroupKinds()
	kinds := groupKinds{}
	for _, n := range names {
		if !slices.Contains(allowed, n) {
			return nil, fmt.Errorf("group_types: %w %q; allowed: %s", ErrUnknownGroupType, n, strings.Join(allowed, ", "))
		}
		kinds[n] = true
	}
	return kinds, nil
}

// names lists the kinds in the order of connector.GroupKinds.
func (k groupKinds) names() []string {
	var out []string
	for _, n := range connector.GroupKinds() {
		if k[n] {
			out = append(out, n)
		}
	}
	return out
}

// entraKind classifies an Entra group the way the Entra admin center
// does. It returns "" for a group that is none of the four kinds (neither
// mail- nor security-enabled), which no policy selects. The daemon keeps
// the same rule for the groups it recorded before connectors sent kinds
// (events.Group.KindOf); a test keeps the two in step.
func entraKind(groupTypes []string, mailEnabled, securityEnabled bool) string {
	for _, t := range groupTypes {
		if strings.EqualFold(t, "Unified") {
			return connector.GroupUnified
		}
	}
	switch {
	case securityEnabled && mailEnabled:
		return connector.GroupMailSecurity
	case securityEnabled:
		return connector.GroupSecurity
	case mailEnabled:
		return connector.GroupDistribution
	}
	return ""
}
