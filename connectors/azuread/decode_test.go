package azuread

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"2", 2 * time.Second, true},
		{"2.128", 2128 * time.Millisecond, true},
		{"0.5", 500 * time.Millisecond, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"soon", 0, false},
		{"1e9", maxRetryBudget, true},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"Wed, 01 May 2024 12:00:10 GMT", 10 * time.Second, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 1; attempt <= 40; attempt++ {
		full := min(time.Second<<min(attempt-1, 30), maxBackoff)
		lo, hi := backoff(time.Second, attempt, 0), backoff(time.Second, attempt, 0.999999)
		if lo != full/2 || hi < full*99/100 || hi > full {
			t.Errorf("attempt %d: backoff from %v to %v, want %v to %v", attempt, lo, hi, full/2, full)
		}
	}
	if backoff(time.Second, 0, 0) != 500*time.Millisecond {
		t.Error("attempt 0")
	}
}

// Decoding tells absent (not changed) from null (changed to nothing).
func TestMapUserPresence(t *testing.T) {
	tests := []struct {
		name string
		json string
		want *connectorv1.User
	}{
		{"one property", `{"id":"u1","department":"Red Team"}`, &connectorv1.User{Id: "u1", Department: ptr("Red Team")}},
		{"nulls", `{"id":"u1","mail":null,"jobTitle":null,"accountEnabled":null,"assignedLicenses":null}`,
			&connectorv1.User{Id: "u1", Mail: ptr(""), JobTitle: ptr(""), AssignedLicenseCount: ptr(int32(0)), Licensed: ptr(false)}},
		{"licenses", `{"id":"u1","assignedLicenses":[{"skuId":"a","disabledPlans":[]},{"skuId":"b","disabledPlans":["x"]}]}`,
			&connectorv1.User{Id: "u1", AssignedLicenseCount: ptr(int32(2)), Licensed: ptr(true)}},
		{"disabled", `{"id":"u1","accountEnabled":false}`, &connectorv1.User{Id: "u1", AccountEnabled: ptr(false), Enabled: ptr(false)}},
		// The neutral guest: from userType, or from an invited guest's UPN
		// alone; a UPN alone does not tell a member.
		{"member", `{"id":"u1","userType":"Member"}`, &connectorv1.User{Id: "u1", UserType: ptr("Member"), Guest: ptr(false)}},
		{"guest", `{"id":"u1","userType":"Guest"}`, &connectorv1.User{Id: "u1", UserType: ptr("Guest"), Guest: ptr(true)}},
		{"invited guest by UPN", `{"id":"u1","userType":"Member","userPrincipalName":"z_f.com#EXT#@c.onmicrosoft.com"}`,
			&connectorv1.User{Id: "u1", UserType: ptr("Member"), UserPrincipalName: ptr("z_f.com#EXT#@c.onmicrosoft.com"), Guest: ptr(true)}},
		{"UPN alone", `{"id":"u1","userPrincipalName":"ann@c.com"}`, &connectorv1.User{Id: "u1", UserPrincipalName: ptr("ann@c.com")}},
		{"soft deleted", `{"id":"u1","@removed":{"reason":"changed"}}`, &connectorv1.User{Id: "u1", Removed: &connectorv1.Removal{Reason: "changed"}}},
		{"deleted", `{"id":"u1","@removed":{"reason":"deleted"},"displayName":"x"}`, &connectorv1.User{Id: "u1", Removed: &connectorv1.Removal{Reason: "deleted"}}},
		{"removed without reason", `{"id":"u1","@removed":{}}`, &connectorv1.User{Id: "u1", Removed: &connectorv1.Removal{Reason: "changed"}}},
		{"unknown property", `{"id":"u1","city":"Oslo","@odata.type":"#microsoft.graph.user"}`, &connectorv1.User{Id: "u1"}},
	}
	for _, tt := range tests {
		var u graphUser
		if err := json.Unmarshal([]byte(tt.json), &u); err != nil {
			t.Fatal(err)
		}
		got, err := mapUser(&u, nil, false)
		if err != nil || got.String() != tt.want.String() {
			t.Errorf("%s: got %v (%v), want %v", tt.name, got, err, tt.want)
		}
	}
	var u graphUser
	_ = json.Unmarshal([]byte(`{"id":"u1","mail":42,"accountEnabled":"yes"}`), &u)
	if _, err := mapUser(&u, nil, false); err == nil {
		t.Error("a number as mail was accepted")
	}
}

func TestGroupKindOf(t *testing.T) {
	tests := []struct {
		json string
		kind string
		ok   bool
	}{
		{`{"groupTypes":["Unified"]}`, connector.GroupUnified, true},
		{`{"groupTypes":["DynamicMembership","Unified"],"mailEnabled":true}`, connector.GroupUnified, true},
		{`{"groupTypes":[],"mailEnabled":false,"securityEnabled":true}`, connector.GroupSecurity, true},
		{`{"groupTypes":null,"mailEnabled":true,"securityEnabled":true}`, connector.GroupMailSecurity, true},
		{`{"groupTypes":[],"mailEnabled":true,"securityEnabled":false}`, connector.GroupDistribution, true},
		{`{"groupTypes":[],"mailEnabled":false,"securityEnabled":false}`, "", true},
		{`{"groupTypes":[],"mailEnabled":true}`, "", false},
		{`{"mailEnabled":true,"securityEnabled":false}`, "", false},
		{`{"displayName":"x"}`, "", false},
	}
	for _, tt := range tests {
		var g graphGroup
		if err := json.Unmarshal([]byte(tt.json), &g); err != nil {
			t.Fatal(err)
		}
		grp, _, err := mapGroup(&g)
		if err != nil {
			t.Fatal(err)
		}
		if kind, ok := groupKindOf(grp); kind != tt.kind || ok != tt.ok {
			t.Errorf("%s: kind %q, %v; want %q, %v", tt.json, kind, ok, tt.kind, tt.ok)
		}
	}
}

// A group split across pages, in any order, is merged: one Group, its
// members added up, the kind decided once.
func TestGroupRoundMerges(t *testing.T) {
	fragments := []string{
		`{"id":"g1","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-4000-8000-000000000001"}]}`,
		`{"id":"g2","displayName":"Sec","groupTypes":[],"mailEnabled":false,"securityEnabled":true,"members@delta":[{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-4000-8000-000000000001"}]}`,
		`{"id":"g1","displayName":"Team","mail":"t@x","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,"members@delta":[{"@odata.type":"#microsoft.graph.user","id":"bbbbbbbb-0000-4000-8000-000000000002"}]}`,
		`{"id":"g2","members@delta":[{"@odata.type":"#microsoft.graph.user","id":"cccccccc-0000-4000-8000-000000000003"}]}`,
		`{"id":"g1","displayName":"Team","mail":"t@x","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,"members@delta":[{"@odata.type":"#microsoft.graph.user","id":"cccccccc-0000-4000-8000-000000000003"},{"@odata.type":"#microsoft.graph.user","id":"aaaaaaaa-0000-4000-8000-000000000001","@removed":{"reason":"deleted"}},{"@odata.type":"#microsoft.graph.device","id":"dddddddd-0000-4000-8000-000000000004"}]}`,
		`{"id":"g2","@removed":{"reason":"deleted"}}`,
		`{"id":"g3","@removed":{"reason":"deleted"}}`,
	}
	var got []*connectorv1.SyncBatch
	out := newBatcher(func(b *connectorv1.SyncBatch) error { got = append(got, b); return nil }, nil)
	gr := &groupRound{kinds: groupKinds{connector.GroupUnified: true}, seen: map[string]*groupState{}}
	for _, f := range fragments {
		var g graphGroup
		if err := json.Unmarshal([]byte(f), &g); err != nil {
			t.Fatal(err)
		}
		if err := gr.add(out, &g); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.finish("", true, ""); err != nil {
		t.Fatal(err)
	}
	b := got[0]
	var ids []string
	for _, g := range b.GetGroups() {
		ids = append(ids, g.GetId())
	}
	if len(ids) != 2 || ids[0] != "g1" || ids[1] != "g3" || b.GetGroups()[0].GetDisplayName() != "Team" || b.GetGroups()[1].GetRemoved().GetReason() != "deleted" {
		t.Errorf("groups %v", b.GetGroups())
	}
	var added, removed []string
	for _, m := range b.GetMemberships() {
		if m.GetGroupId() != "g1" {
			t.Errorf("membership of %s (not asked for) sent", m.GetGroupId())
		}
		added = append(added, m.GetAddedUserIds()...)
		removed = append(removed, m.GetRemovedUserIds()...)
	}
	if len(added) != 3 || len(removed) != 1 || b.GetProgress().GetSkippedMembers() != 1 || gr.dropped != 1 {
		t.Errorf("added %v removed %v progress %v dropped %d", added, removed, b.GetProgress(), gr.dropped)
	}
}

func TestParseCursor(t *testing.T) {
	cfg := &Config{Tenant: "contoso.onmicrosoft.com", GraphURL: "https://graph.microsoft.com/v1.0"}
	kinds := groupKinds{connector.GroupUnified: true}
	good := &cursor{V: cursorVersion, Tenant: "Contoso.onmicrosoft.com", Kinds: []string{"unified"},
		Users: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a", Groups: "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b"}
	if c, reason := parseCursor(good.encode(), cfg, kinds, nil); c == nil || reason != "" || c.Users != good.Users {
		t.Errorf("good cursor: %v %q", c, reason)
	}
	for _, bad := range []string{"", "x", "{}", `{"v":1}`, `[1]`, `{"v":1,"users":"a"}`} {
		if c, reason := parseCursor(bad, cfg, kinds, nil); c != nil || reason != reasonCursorUnreadable {
			t.Errorf("%q: %v %q", bad, c, reason)
		}
	}
	httpLink := *good
	httpLink.Users = "http://graph.microsoft.com/v1.0/users/delta"
	if c, reason := parseCursor(httpLink.encode(), cfg, kinds, nil); c != nil || reason == "" {
		t.Errorf("http link accepted: %q", reason)
	}
}
