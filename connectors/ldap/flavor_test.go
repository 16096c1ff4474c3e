package ldap

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestDetectFlavor(t *testing.T) {
	tests := []struct {
		name string
		attr map[string][]string
		want Flavor
	}{
		{"Samba AD", map[string][]string{
			"forestFunctionality": {"4"}, "domainControllerFunctionality": {"4"},
			"supportedCapabilities": {"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670"},
		}, FlavorActiveDirectory},
		{"AD capability only", map[string][]string{"supportedCapabilities": {"1.2.840.113556.1.4.1791", "1.2.840.113556.1.4.800"}}, FlavorActiveDirectory},
		{"AD functionality only, odd case", map[string][]string{"DomainControllerFunctionality": {"7"}}, FlavorActiveDirectory},
		{"slapd objectClass", map[string][]string{"objectClass": {"top", "OpenLDAProotDSE"}}, FlavorOpenLDAP},
		{"slapd objectClass lowercase", map[string][]string{"objectclass": {"openldaprootdse"}}, FlavorOpenLDAP},
		{"vendorName", map[string][]string{"vendorName": {"The OpenLDAP Project <http://www.openldap.org/>"}}, FlavorOpenLDAP},
		{"389 Directory Server", map[string][]string{"vendorName": {"389 Project"}, "objectClass": {"top"}}, FlavorUnknown},
		{"empty", map[string][]string{}, FlavorUnknown},
	}
	for _, tt := range tests {
		if got := DetectFlavor(goldap.NewEntry("", tt.attr)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if DetectFlavor(nil) != FlavorUnknown {
		t.Error("nil rootDSE")
	}
}

func TestPresenceAttribute(t *testing.T) {
	for filter, want := range map[string]string{
		"(pwdAccountLockedTime=*)":       "pwdAccountLockedTime",
		"(nsAccountLock=*)":              "nsAccountLock",
		"(pwdAccountLockedTime=2026*)":   "",
		"(!(pwdAccountLockedTime=*))":    "",
		"(&(a=*)(b=*))":                  "",
		"(loginDisabled=TRUE)":           "",
		"(":                              "",
		"(1.3.6.1.4.1.42.2.27.8.1.17=*)": "1.3.6.1.4.1.42.2.27.8.1.17",
	} {
		got, ok := PresenceAttribute(filter)
		if got != want || ok != (want != "") {
			t.Errorf("PresenceAttribute(%q) = %q, %v; want %q", filter, got, ok, want)
		}
	}
}
