package azuread

import (
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/events"
)

// TestEntraKind checks the classification, and that the daemon's reading
// of groups recorded before kinds (events.Group.KindOf) agrees with it.
func TestEntraKind(t *testing.T) {
	tests := []struct {
		types          []string
		mail, security bool
		want           string
	}{
		{[]string{"Unified"}, true, false, connector.GroupUnified},
		{[]string{"unified", "DynamicMembership"}, true, true, connector.GroupUnified},
		{nil, false, true, connector.GroupSecurity},
		{[]string{"DynamicMembership"}, false, true, connector.GroupSecurity},
		{nil, true, true, connector.GroupMailSecurity},
		{nil, true, false, connector.GroupDistribution},
		{nil, false, false, ""},
	}
	for _, tt := range tests {
		if got := entraKind(tt.types, tt.mail, tt.security); got != tt.want {
			t.Errorf("entraKind(%v, mail=%v, security=%v) = %q, want %q", tt.types, tt.mail, tt.security, got, tt.want)
		}
		legacy := events.Group{GroupTypes: tt.types, MailEnabled: tt.mail, SecurityEnabled: tt.security}
		if got := legacy.KindOf(); got != tt.want {
			t.Errorf("events.Group{%v, mail=%v, security=%v}.KindOf() = %q, want %q (entraKind's)", tt.types, tt.mail, tt.security, got, tt.want)
		}
	}
}
