package connector

import "testing"

func TestGroupKind(t *testing.T) {
	tests := []struct {
		types          []string
		mail, security bool
		want           string
	}{
		{[]string{"Unified"}, true, false, GroupUnified},
		{[]string{"unified", "DynamicMembership"}, true, true, GroupUnified},
		{nil, false, true, GroupSecurity},
		{[]string{"DynamicMembership"}, false, true, GroupSecurity},
		{nil, true, true, GroupMailSecurity},
		{nil, true, false, GroupDistribution},
		{nil, false, false, ""},
	}
	for _, tt := range tests {
		if got := GroupKind(tt.types, tt.mail, tt.security); got != tt.want {
			t.Errorf("GroupKind(%v, mail=%v, security=%v) = %q, want %q", tt.types, tt.mail, tt.security, got, tt.want)
		}
	}
}
