package ldap

import (
	"context"
	"errors"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
)

// A slapd without the syncprov overlay refuses the sync request control:
// its syncs are full reads, each with the reason, never failures.
func TestNoSyncprov(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{Classify(StageUsers, goldap.NewError(goldap.LDAPResultUnavailableCriticalExtension, errors.New("critical extension is unavailable")), nil, ""), true},
		{goldap.NewError(goldap.LDAPResultUnavailableCriticalExtension, errors.New("")), true},
		{goldap.NewError(goldap.LDAPResultInsufficientAccessRights, errors.New("")), false},
		{errors.New("connection reset"), false},
		{nil, false},
	} {
		if got := noSyncprov(tt.err); got != tt.want {
			t.Errorf("noSyncprov(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
	// The mark of such a server has no cookie, and the next sync gives
	// the reason before it asks the server anything.
	r := &dirReader{}
	_, reason, err := r.syncreplChanges(context.Background(), cursor{V: cursorVersion, Flavor: FlavorOpenLDAP})
	if err != nil || reason != reasonNoSyncprov {
		t.Errorf("syncreplChanges without cookies: %q, %v; want the reason %q", reason, err, reasonNoSyncprov)
	}
}
