package azuread

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

func TestWantAttributes(t *testing.T) {
	got := wantAttributes([]string{"city", "manager", "extensionAttribute15", "city", "nickname", "extensionAttribute2", ""})
	if want := (userAttrs{"manager", "city", "extensionAttribute2", "extensionAttribute15"}); !slices.Equal(got, want) {
		t.Errorf("wantAttributes = %v, want %v (connector.Attributes' order, no repeats, unknown names dropped)", got, want)
	}
	if props := got.selectProps(); !slices.Equal(props, []string{"manager", "city", onPremisesExtensionAttributes}) {
		t.Errorf("selectProps = %v", props)
	}
	if wantAttributes(nil) != nil || len(userAttrs(nil).selectProps()) != 0 || userAttrs(nil).String() != "none" {
		t.Error("no attributes asked for should select none")
	}
	all := wantAttributes(connector.Attributes())
	if !slices.Equal(all, ReadableAttributes()) {
		t.Errorf("every attribute asked for: %v", all)
	}
	// Ten plain properties (manager among them) and one complex one for
	// the fifteen extension attributes.
	if props := all.selectProps(); len(props) != 11 {
		t.Errorf("selectProps of all = %v", props)
	}
	sel := userSelect(all)
	if !slices.Contains(sel, "proxyAddresses") || !slices.Contains(sel, "manager") || !slices.Contains(sel, onPremisesExtensionAttributes) ||
		slices.Contains(sel, "extensionAttribute1") {
		t.Errorf("userSelect = %v", sel)
	}
	if !slices.Contains(userSelect(nil), "proxyAddresses") {
		t.Error("proxyAddresses is read whatever the attributes")
	}
}

// extAttrs returns Graph's onPremisesExtensionAttributes with the values
// given (1-based) and null for the others, as Graph sends the complex
// property: always whole.
func extAttrs(values map[int]string) string {
	var parts []string
	for n := 1; n <= 15; n++ {
		v := "null"
		if s, ok := values[n]; ok {
			v = fmt.Sprintf("%q", s)
		}
		parts = append(parts, fmt.Sprintf(`"extensionAttribute%d":%s`, n, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Attributes and proxy addresses tell absent (not changed) from null
// (changed to nothing), and only the attributes asked for are sent.
func TestMapUserAttributes(t *testing.T) {
	asked := wantAttributes([]string{"preferredLanguage", "manager", "employeeId", "mobilePhone", "extensionAttribute1", "extensionAttribute7"})
	const mgr = "99789584-a1e1-4232-90e5-866170e3d4e7"
	tests := []struct {
		name      string
		json      string
		full      bool
		attrs     map[string]string
		proxies   []string
		proxyKnow bool
	}{
		{name: "full read", full: true,
			json: `{"id":"u1","proxyAddresses":["SMTP:adele@contoso.com","smtp:adelev@contoso.onmicrosoft.com","SIP:adele@contoso.com"],
				"preferredLanguage":"en-US","employeeId":"E-1","mobilePhone":"+1 425 555 0109","officeLocation":"18/2111",
				"onPremisesExtensionAttributes":` + extAttrs(map[int]string{1: "Cost centre 12", 2: "not asked"}) + `,
				"manager@delta":[{"@odata.type":"#microsoft.graph.user","id":"` + mgr + `"}]}`,
			attrs: map[string]string{"preferredLanguage": "en-US", "manager": mgr, "employeeId": "E-1", "mobilePhone": "+1 425 555 0109",
				"extensionAttribute1": "Cost centre 12", "extensionAttribute7": ""},
			proxies: []string{"SMTP:adele@contoso.com", "smtp:adelev@contoso.onmicrosoft.com", "SIP:adele@contoso.com"}, proxyKnow: true},
		// Graph leaves manager@delta out for a user without a manager.
		{name: "full read, nulls, no manager", full: true,
			json:      `{"id":"u1","proxyAddresses":[],"preferredLanguage":null,"employeeId":null,"mobilePhone":null,"onPremisesExtensionAttributes":` + extAttrs(nil) + `}`,
			attrs:     map[string]string{"preferredLanguage": "", "manager": "", "employeeId": "", "mobilePhone": "", "extensionAttribute1": "", "extensionAttribute7": ""},
			proxyKnow: true},
		{name: "change of another property", json: `{"id":"u1","department":"Sales"}`},
		{name: "change of the addresses",
			json:    `{"id":"u1","proxyAddresses":["SMTP:a@contoso.com","smtp:alias@contoso.com"]}`,
			proxies: []string{"SMTP:a@contoso.com", "smtp:alias@contoso.com"}, proxyKnow: true},
		{name: "addresses null", json: `{"id":"u1","proxyAddresses":null}`, proxyKnow: true},
		{name: "language cleared", json: `{"id":"u1","preferredLanguage":null}`, attrs: map[string]string{"preferredLanguage": ""}},
		{name: "manager changed",
			json:  `{"id":"u1","manager@delta":[{"@odata.type":"#microsoft.graph.user","id":"` + mgr + `"}]}`,
			attrs: map[string]string{"manager": mgr}},
		{name: "manager removed",
			json:  `{"id":"u1","manager@delta":[{"@odata.type":"#microsoft.graph.user","id":"` + mgr + `","@removed":{"reason":"deleted"}}]}`,
			attrs: map[string]string{"manager": ""}},
		{name: "manager replaced",
			json: `{"id":"u1","manager@delta":[{"@odata.type":"#microsoft.graph.user","id":"` + mgr + `","@removed":{"reason":"deleted"}},` +
				`{"@odata.type":"#microsoft.graph.user","id":"a11ce000-0000-4000-8000-000000000001"}]}`,
			attrs: map[string]string{"manager": "a11ce000-0000-4000-8000-000000000001"}},
		{name: "extension attributes changed",
			json:  `{"id":"u1","onPremisesExtensionAttributes":{"extensionAttribute7":"B"}}`,
			attrs: map[string]string{"extensionAttribute1": "", "extensionAttribute7": "B"}},
		{name: "extension attributes null",
			json:  `{"id":"u1","onPremisesExtensionAttributes":null}`,
			attrs: map[string]string{"extensionAttribute1": "", "extensionAttribute7": ""}},
		{name: "not asked for", json: `{"id":"u1","city":"Oslo","usageLocation":"NO"}`},
		{name: "removed", json: `{"id":"u1","@removed":{"reason":"changed"},"preferredLanguage":"en-US"}`},
	}
	for _, tt := range tests {
		var u graphUser
		if err := json.Unmarshal([]byte(tt.json), &u); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := mapUser(&u, asked, tt.full)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !maps.Equal(got.GetAttributes(), tt.attrs) {
			t.Errorf("%s: attributes %v, want %v", tt.name, got.GetAttributes(), tt.attrs)
		}
		if got.GetProxyAddressesKnown() != tt.proxyKnow || !slices.Equal(got.GetProxyAddresses(), tt.proxies) {
			t.Errorf("%s: proxy addresses %v (known %v), want %v (known %v)", tt.name, got.GetProxyAddresses(), got.GetProxyAddressesKnown(), tt.proxies, tt.proxyKnow)
		}
	}

	// Nothing asked for: nothing sent, whatever Graph says.
	var u graphUser
	_ = json.Unmarshal([]byte(`{"id":"u1","preferredLanguage":"en-US","manager@delta":[{"id":"`+mgr+`"}]}`), &u)
	if got, err := mapUser(&u, nil, true); err != nil || got.Attributes != nil {
		t.Errorf("no attributes asked: %v (%v)", got, err)
	}

	for _, bad := range []string{
		`{"id":"u1","proxyAddresses":"SMTP:a@contoso.com"}`,
		`{"id":"u1","proxyAddresses":[1]}`,
		`{"id":"u1","preferredLanguage":1}`,
		`{"id":"u1","manager@delta":{"id":"x"}}`,
		`{"id":"u1","onPremisesExtensionAttributes":["x"]}`,
		`{"id":"u1","onPremisesExtensionAttributes":{"extensionAttribute1":true}}`,
	} {
		var u graphUser
		if err := json.Unmarshal([]byte(bad), &u); err != nil {
			t.Fatal(err)
		}
		if got, err := mapUser(&u, asked, true); err == nil {
			t.Errorf("%s accepted: %v", bad, got)
		}
	}
}

// Group members of members@delta are nesting, passed on; devices and
// contacts are skipped and counted.
func TestGroupRoundNesting(t *testing.T) {
	const (
		user   = "aaaaaaaa-0000-4000-8000-000000000001"
		child  = "6a000002-0000-4000-8000-000000000002"
		gone   = "6a000003-0000-4000-8000-000000000003"
		old    = "6a000004-0000-4000-8000-000000000004"
		device = "de000001-0000-4000-8000-000000000001"
	)
	fragment := `{"id":"g1","displayName":"Team","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,"members@delta":[
		{"@odata.type":"#microsoft.graph.user","id":"` + user + `"},
		{"@odata.type":"#microsoft.graph.group","id":"` + child + `"},
		{"@odata.type":"#microsoft.graph.group","id":"` + gone + `","@removed":{"reason":"deleted"}},
		{"id":"` + old + `","@removed":{"reason":"deleted"}},
		{"@odata.type":"#microsoft.graph.device","id":"` + device + `"},
		{"@odata.type":"#microsoft.graph.orgContact","id":"c0000001-0000-4000-8000-000000000001"}]}`
	var got []*connectorv1.SyncBatch
	out := newBatcher(func(b *connectorv1.SyncBatch) error { got = append(got, b); return nil }, nil)
	gr := &groupRound{kinds: groupKinds{connector.GroupUnified: true}, seen: map[string]*groupState{}}
	var g graphGroup
	if err := json.Unmarshal([]byte(fragment), &g); err != nil {
		t.Fatal(err)
	}
	if err := gr.add(out, &g); err != nil {
		t.Fatal(err)
	}
	if err := out.finish("", true, ""); err != nil {
		t.Fatal(err)
	}
	var m connectorv1.Membership
	for _, x := range got[0].GetMemberships() {
		m.AddedUserIds = append(m.AddedUserIds, x.GetAddedUserIds()...)
		m.RemovedUserIds = append(m.RemovedUserIds, x.GetRemovedUserIds()...)
		m.AddedGroupIds = append(m.AddedGroupIds, x.GetAddedGroupIds()...)
		m.RemovedGroupIds = append(m.RemovedGroupIds, x.GetRemovedGroupIds()...)
	}
	// A removal without a type may be of a user or a group: it is passed
	// on as both.
	if !slices.Equal(m.AddedUserIds, []string{user}) || !slices.Equal(m.RemovedUserIds, []string{old}) ||
		!slices.Equal(m.AddedGroupIds, []string{child}) || !slices.Equal(m.RemovedGroupIds, []string{gone, old}) {
		t.Errorf("memberships %v", got[0].GetMemberships())
	}
	if p := got[0].GetProgress(); p.GetSkippedMembers() != 2 || p.GetMemberships() != 5 {
		t.Errorf("progress %v, want 2 skipped (device, contact), 5 member IDs", p)
	}

	// A group of a kind not asked for sends no members, groups included.
	got = nil
	gr = &groupRound{kinds: groupKinds{connector.GroupSecurity: true}, seen: map[string]*groupState{}}
	if err := gr.add(out, &g); err != nil {
		t.Fatal(err)
	}
	_ = out.finish("", true, "")
	if len(got[0].GetMemberships()) != 0 || len(got[0].GetGroups()) != 0 {
		t.Errorf("a group of another kind sent %v", got[0])
	}
}

func TestParseCursorAttributes(t *testing.T) {
	cfg := &Config{Tenant: "contoso.onmicrosoft.com", GraphURL: "https://graph.microsoft.com/v1.0"}
	kinds := groupKinds{connector.GroupUnified: true}
	attrs := wantAttributes([]string{"manager", "city"})
	c := &cursor{V: cursorVersion, Tenant: cfg.Tenant, Kinds: []string{"unified"}, Attrs: attrs,
		Users: "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=a", Groups: "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b"}
	if got, reason := parseCursor(c.encode(), cfg, kinds, wantAttributes([]string{"city", "manager"})); got == nil || reason != "" {
		t.Errorf("the same attributes: %q", reason)
	}
	for _, other := range [][]string{nil, {"manager"}, {"manager", "city", "country"}} {
		got, reason := parseCursor(c.encode(), cfg, kinds, wantAttributes(other))
		t.Logf("%v: %q", other, reason)
		if got != nil || !strings.Contains(reason, "user attributes to read changed from [manager, city]") {
			t.Errorf("attributes %v: cursor %v, reason %q", other, got, reason)
		}
	}
	// A cursor of version 1 selected no proxyAddresses: a full read gets them.
	v1 := *c
	v1.V, v1.Attrs = 1, nil
	if got, reason := parseCursor(v1.encode(), cfg, kinds, nil); got != nil || !strings.Contains(reason, "format 1") {
		t.Errorf("version 1 cursor: %v %q", got, reason)
	}
}

// The attributes directory: a full read of three users (every attribute
// Graph can send, nulls and no manager, a guest with no mailbox) and an
// incremental round of a language, a manager, an alias and a department
// changed, shaped as users/delta documents them (manager@delta, the
// complex onPremisesExtensionAttributes sent whole).
func attributesDirectory() map[string]cannedResp {
	const (
		adele = `"id":"a11ce000-0000-4000-8000-000000000001"`
		bob   = `"id":"b0b00000-0000-4000-8000-000000000002"`
		carol = `"id":"ca201000-0000-4000-8000-000000000003"`
	)
	base := `"accountEnabled":true,"userType":"Member","assignedLicenses":[],"givenName":null,"surname":null,"department":null,"jobTitle":null`
	return map[string]cannedResp{
		"users:initial": {body: `{"@odata.context":"{base}/$metadata#users","@odata.deltaLink":"{base}/users/delta?$deltatoken=a1","value":[
			{` + adele + `,"userPrincipalName":"adele@contoso.com","mail":"adele@contoso.com","displayName":"Adele",` + base + `,
			 "proxyAddresses":["SMTP:adele@contoso.com","smtp:adele.vance@contoso.com"],"preferredLanguage":"en-US","city":"Redmond",
			 "onPremisesExtensionAttributes":` + extAttrs(map[int]string{3: "Cost 12"}) + `,
			 "manager@delta":[{"@odata.type":"#microsoft.graph.user",` + bob + `}]},
			{` + bob + `,"userPrincipalName":"bob@contoso.com","mail":"bob@contoso.com","displayName":"Bob",` + base + `,
			 "proxyAddresses":["SMTP:bob@contoso.com"],"preferredLanguage":null,"city":null,"onPremisesExtensionAttributes":` + extAttrs(nil) + `},
			{` + carol + `,"userPrincipalName":"carol@contoso.com","mail":null,"displayName":"Carol",` + base + `,
			 "proxyAddresses":[],"preferredLanguage":"nb-NO","city":"Oslo","onPremisesExtensionAttributes":` + extAttrs(nil) + `,
			 "manager@delta":[{"@odata.type":"#microsoft.graph.user",` + adele + `}]}]}`},
		"groups:initial": {body: `{"@odata.deltaLink":"{base}/groups/delta?$deltatoken=a1","value":[]}`},
		"users:delta:a1": {body: `{"@odata.context":"{base}/$metadata#users","@odata.deltaLink":"{base}/users/delta?$deltatoken=a2","value":[
			{` + adele + `,"preferredLanguage":"fr-FR"},
			{` + bob + `,"proxyAddresses":["SMTP:bob@contoso.com","smtp:robert@contoso.com"]},
			{` + carol + `,"manager@delta":[{"@odata.type":"#microsoft.graph.user",` + adele + `,"@removed":{"reason":"deleted"}}]},
			{"id":"da7e0000-0000-4000-8000-000000000004","department":"Ops"}]}`},
		"groups:delta:a1": {body: `{"@odata.deltaLink":"{base}/groups/delta?$deltatoken=a2","value":[]}`},
	}
}

// A sync reads the attributes asked for and the proxy addresses, records
// the attributes in its cursor, and a sync asking for others reads the
// whole directory again with them.
func TestAttributesAgainstCannedPages(t *testing.T) {
	g := startCanned(t, attributesDirectory())
	cfg := g.config(t, nil)
	c := New(nil)
	asked := []string{"city", "manager", "preferredLanguage", "extensionAttribute3", "nickname"}
	g.mu.Lock()
	g.attrs = wantAttributes(asked) // the $select the front expects
	g.mu.Unlock()

	first := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Attributes: asked})
	const (
		adele = "a11ce000-0000-4000-8000-000000000001"
		bob   = "b0b00000-0000-4000-8000-000000000002"
		carol = "ca201000-0000-4000-8000-000000000003"
	)
	want := map[string]map[string]string{
		adele: {"preferredLanguage": "en-US", "manager": bob, "city": "Redmond", "extensionAttribute3": "Cost 12"},
		bob:   {"preferredLanguage": "", "manager": "", "city": "", "extensionAttribute3": ""},
		carol: {"preferredLanguage": "nb-NO", "manager": adele, "city": "Oslo", "extensionAttribute3": ""},
	}
	for id, attrs := range want {
		if u := first.user(t, id); u == nil || !maps.Equal(u.GetAttributes(), attrs) || !u.GetProxyAddressesKnown() {
			t.Errorf("full read: user %s = %v, want attributes %v and proxy addresses", id, u, attrs)
		}
	}
	if u := first.user(t, adele); !slices.Equal(u.GetProxyAddresses(), []string{"SMTP:adele@contoso.com", "smtp:adele.vance@contoso.com"}) {
		t.Errorf("adele's proxy addresses %v", u.GetProxyAddresses())
	}
	var cur cursor
	if err := json.Unmarshal([]byte(first.last.GetCursor()), &cur); err != nil ||
		!slices.Equal(cur.Attrs, userAttrs{"preferredLanguage", "manager", "city", "extensionAttribute3"}) {
		t.Errorf("cursor %s (%v)", first.last.GetCursor(), err)
	}

	// Incremental: what changed, and nothing that did not.
	second := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Attributes: asked, Cursor: first.last.GetCursor()})
	if second.last.GetComplete() || second.last.GetResyncReason() != "" {
		t.Fatalf("incremental: %v", second.last)
	}
	wantUsers := []*connectorv1.User{
		{Id: adele, Attributes: map[string]string{"preferredLanguage": "fr-FR"}},
		{Id: bob, ProxyAddresses: []string{"SMTP:bob@contoso.com", "smtp:robert@contoso.com"}, ProxyAddressesKnown: true},
		{Id: carol, Attributes: map[string]string{"manager": ""}},
		{Id: "da7e0000-0000-4000-8000-000000000004", Department: ptr("Ops")},
	}
	if len(second.users) != len(wantUsers) {
		t.Fatalf("incremental users %v", second.users)
	}
	for i, w := range wantUsers {
		if got := second.users[i]; got.String() != w.String() {
			t.Errorf("incremental user %d = %v, want %v", i, got, w)
		}
	}
	if h := g.takeHits(); !sameRequests(h, []string{"users:initial", "groups:initial", "users:delta:a1", "groups:delta:a1"}) {
		t.Errorf("requests %v", h)
	}

	// Other attributes: a delta link keeps its $select, so a full read.
	g.mu.Lock()
	g.attrs = wantAttributes([]string{"manager"})
	g.mu.Unlock()
	third := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Attributes: []string{"manager"}, Cursor: first.last.GetCursor()})
	if !third.last.GetComplete() || !strings.Contains(third.last.GetResyncReason(), "user attributes to read changed") {
		t.Errorf("other attributes: complete %v, reason %q", third.last.GetComplete(), third.last.GetResyncReason())
	}
	t.Logf("resync_reason %q", third.last.GetResyncReason())
	if u := third.user(t, adele); !maps.Equal(u.GetAttributes(), map[string]string{"manager": bob}) {
		t.Errorf("adele after the resync: %v", u.GetAttributes())
	}
	if h := g.takeHits(); !sameRequests(h, []string{"users:initial", "groups:initial"}) {
		t.Errorf("requests %v", h)
	}
}

func TestDescribeAttributes(t *testing.T) {
	d, err := New(nil).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.GetAttributes(), connector.Attributes()) || !d.GetMailboxPurpose() {
		t.Errorf("Describe attributes %v, mailbox_purpose %v", d.GetAttributes(), d.GetMailboxPurpose())
	}
}
