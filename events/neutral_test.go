package events

import (
	"encoding/json"
	"testing"
)

// The neutral fields decide, and events recorded before them (from Entra)
// are read as they were.
func TestNeutralUserFields(t *testing.T) {
	tests := []struct {
		name              string
		u                 User
		guest, unlicensed bool
	}{
		{"ldap user: no licences, no guest", User{ID: "a"}, false, false},
		{"connector says guest", User{Guest: true, Licensed: OptTrue}, true, false},
		{"connector says unlicensed", User{Licensed: OptFalse}, false, true},
		{"legacy Entra member without licence", User{UserType: "Member"}, false, true},
		{"legacy Entra member with licence", User{UserType: "Member", AssignedLicenseCount: 2}, false, false},
		{"legacy Entra guest by userType", User{UserType: "Guest", AssignedLicenseCount: 1}, true, false},
		{"legacy Entra guest by #EXT# UPN", User{UserType: "Member", UserPrincipalName: "z_f.com#ext#@c.onmicrosoft.com", AssignedLicenseCount: 1}, true, false},
		{"licensed wins over a legacy count", User{UserType: "Member", Licensed: OptTrue}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.u.IsGuest(); got != tt.guest {
				t.Errorf("IsGuest() = %v; want %v", got, tt.guest)
			}
			if got := tt.u.IsUnlicensed(); got != tt.unlicensed {
				t.Errorf("IsUnlicensed() = %v; want %v", got, tt.unlicensed)
			}
		})
	}
}

func TestGroupKindOf(t *testing.T) {
	tests := []struct {
		g    Group
		want string
	}{
		{Group{Kind: "security", GroupTypes: []string{"Unified"}}, "security"},
		{Group{GroupTypes: []string{"Unified"}, MailEnabled: true}, "unified"},
		{Group{MailEnabled: true, SecurityEnabled: true}, "mail_security"},
		{Group{SecurityEnabled: true}, "security"},
		{Group{MailEnabled: true}, "distribution"},
		{Group{}, ""},
	}
	for _, tt := range tests {
		if got := tt.g.KindOf(); got != tt.want {
			t.Errorf("%+v.KindOf() = %q; want %q", tt.g, got, tt.want)
		}
	}
}

// licensed is a JSON boolean when known and absent when not, and survives
// a round trip; a user stays comparable with ==.
func TestOptBoolJSON(t *testing.T) {
	for _, tt := range []struct {
		u    User
		json string
	}{
		{User{ID: "a"}, `{"id":"a","accountEnabled":false,"assignedLicenseCount":0}`},
		{User{ID: "a", Licensed: OptTrue}, `{"id":"a","accountEnabled":false,"assignedLicenseCount":0,"licensed":true}`},
		{User{ID: "a", Licensed: OptFalse, Guest: true}, `{"id":"a","accountEnabled":false,"assignedLicenseCount":0,"guest":true,"licensed":false}`},
	} {
		b, err := json.Marshal(tt.u)
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tt.u, b, err, tt.json)
		}
		var back User
		if err := json.Unmarshal(b, &back); err != nil || back != tt.u {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", b, back, err, tt.u)
		}
	}
	var u User
	if err := json.Unmarshal([]byte(`{"id":"a","licensed":"yes"}`), &u); err == nil {
		t.Error(`licensed "yes" was accepted`)
	}
}
