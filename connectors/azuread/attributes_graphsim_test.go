package azuread

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// simAttributes are a graphsim user's attributes by connector.Attributes'
// names, "" where it has none.
func simAttributes(u graphsim.User) map[string]string {
	m := map[string]string{
		connector.AttrPreferredLanguage: u.PreferredLanguage, connector.AttrManager: u.ManagerID,
		connector.AttrEmployeeID: u.EmployeeID, connector.AttrEmployeeType: u.EmployeeType,
		connector.AttrCompanyName: u.CompanyName, connector.AttrOfficeLocation: u.OfficeLocation,
		connector.AttrCity: u.City, connector.AttrCountry: u.Country,
		connector.AttrUsageLocation: u.UsageLocation, connector.AttrMobilePhone: u.MobilePhone,
	}
	for i, v := range u.ExtensionAttributes {
		m[connector.ExtensionAttribute(i+1)] = v
	}
	return m
}

// attributesDiff says how the attributes sent for a user differ from
// graphsim's ("" if not). companyName and usageLocation have values
// graphsim derives when the user has none of its own (the organisation,
// a licensed user's location): only their presence is checked there.
func attributesDiff(got map[string]string, u graphsim.User, asked []string) string {
	want := simAttributes(u)
	var d []string
	for _, name := range asked {
		v, ok := got[name]
		switch {
		case !ok:
			d = append(d, name+" absent")
		case want[name] == "" && (name == connector.AttrCompanyName || name == connector.AttrUsageLocation):
		case !strings.EqualFold(v, want[name]):
			d = append(d, name+" "+v+", want "+want[name])
		}
	}
	for name := range got {
		if !slices.Contains(asked, name) {
			d = append(d, name+" sent, not asked for")
		}
	}
	return strings.Join(d, "; ")
}

// A full read of a tenant with attributes sends every user's attributes
// asked for, its proxy addresses and the nesting of its groups; changes
// of a language, a manager, aliases and extension attributes reach the
// next sync as exactly those; asking for fewer attributes reads the
// whole tenant again, with only those.
func TestAttributesAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 200, Groups: 12, Seed: 17, Attributes: true})
	cfg := simConfig(t, sim, nil)
	c := New(nil)
	all := connector.Attributes()
	req := func(cursor string, attrs []string) *connectorv1.SyncRequest {
		return &connectorv1.SyncRequest{Config: cfg, Cursor: cursor, Attributes: attrs, GroupTypes: connector.GroupKinds()}
	}

	first := mustSync(t, c, req("", all))
	tenant := sim.Tenant()
	managers, aliases := 0, 0
	for _, want := range tenant.Users {
		got := first.user(t, want.ID)
		if got == nil {
			t.Errorf("user %s missing", want.ID)
			continue
		}
		if d := attributesDiff(got.GetAttributes(), want, all); d != "" {
			t.Errorf("user %s (%s): %s", want.ID, want.DisplayName, d)
		}
		if !got.GetProxyAddressesKnown() || (len(want.ProxyAddresses) > 0 && !slices.Equal(got.GetProxyAddresses(), want.ProxyAddresses)) {
			t.Errorf("user %s: proxy addresses %v (known %v), want %v", want.ID, got.GetProxyAddresses(), got.GetProxyAddressesKnown(), want.ProxyAddresses)
		}
		if want.ManagerID != "" {
			managers++
		}
		for _, a := range want.ProxyAddresses {
			if strings.HasPrefix(a, "smtp:") {
				aliases++
			}
		}
	}
	nested := 0
	for _, g := range tenant.Groups {
		want := typedMembers(g, graphsim.TypeGroup)
		if got := sorted(first.addedGroups[g.ID]); !slices.Equal(got, want) {
			t.Errorf("group %s (%s): group members %v, want %v", g.ID, g.DisplayName, got, want)
		}
		nested += len(want)
	}
	if managers == 0 || aliases == 0 || nested == 0 {
		t.Fatalf("graphsim generated %d managers, %d aliases, %d nested groups: the test proves little", managers, aliases, nested)
	}

	// Changes of attributes and addresses, of members with mail.
	var u []graphsim.User
	for _, x := range tenant.Users {
		if x.Mail != "" && x.UserType == "Member" {
			u = append(u, x)
		}
	}
	if len(u) < 6 {
		t.Fatalf("%d members with mail to change", len(u))
	}
	// u[2] loses its manager, u[5] gets u[1]: each must change.
	if i := slices.IndexFunc(u[2:], func(x graphsim.User) bool { return x.ManagerID != "" }); i > 0 {
		u[2], u[2+i] = u[2+i], u[2]
	}
	if u[2].ManagerID == "" || strings.EqualFold(u[5].ManagerID, u[1].ID) {
		t.Fatalf("no manager to change: %v, %v", u[2], u[5])
	}
	newAddrs := []string{"SMTP:" + u[3].Mail, "smtp:alias.three@" + tenant.Domain}
	mustDo(t, sim.UpdateUser(u[1].ID, func(x *graphsim.User) { x.PreferredLanguage = "fr-FR" }))
	mustDo(t, sim.SetManager(u[2].ID, ""))
	mustDo(t, sim.UpdateUser(u[3].ID, func(x *graphsim.User) { x.ProxyAddresses = newAddrs }))
	mustDo(t, sim.UpdateUser(u[4].ID, func(x *graphsim.User) { x.ExtensionAttributes[4] = "Cost 42" }))
	mustDo(t, sim.SetManager(u[5].ID, u[1].ID))
	second := mustSync(t, c, req(first.last.GetCursor(), all))
	if second.last.GetComplete() || second.last.GetResyncReason() != "" {
		t.Fatalf("incremental: %v", second.last)
	}
	after := sim.Tenant()
	var ext map[string]string
	for _, x := range after.Users {
		if x.ID == u[4].ID {
			ext = simAttributes(x)
		}
	}
	wantAttrs := map[string]map[string]string{
		u[1].ID: {connector.AttrPreferredLanguage: "fr-FR"},
		u[2].ID: {connector.AttrManager: ""},
		u[3].ID: nil,
		u[5].ID: {connector.AttrManager: u[1].ID},
		// The complex property comes whole.
		u[4].ID: maps.Collect(func(yield func(string, string) bool) {
			for n := 1; n <= 15; n++ {
				if !yield(connector.ExtensionAttribute(n), ext[connector.ExtensionAttribute(n)]) {
					return
				}
			}
		}),
	}
	if len(second.users) != len(wantAttrs) {
		t.Errorf("incremental sent %d users, want %d: %v", len(second.users), len(wantAttrs), second.users)
	}
	for id, want := range wantAttrs {
		got := second.user(t, id)
		if got == nil {
			t.Errorf("user %s not sent", id)
			continue
		}
		if !maps.EqualFunc(got.GetAttributes(), want, strings.EqualFold) {
			t.Errorf("user %s: attributes %v, want %v", id, got.GetAttributes(), want)
		}
		if known := got.GetProxyAddressesKnown(); known != (id == u[3].ID) || (known && !slices.Equal(got.GetProxyAddresses(), newAddrs)) {
			t.Errorf("user %s: proxy addresses %v (known %v)", id, got.GetProxyAddresses(), known)
		}
	}
	if ext[connector.ExtensionAttribute(5)] != "Cost 42" {
		t.Errorf("graphsim did not keep the change: %v", ext)
	}

	// Churn (languages, managers, aliases, nesting among the rest): the
	// attributes and nesting built from the three syncs equal the
	// tenant's.
	rp := newReplica()
	for _, r := range []*syncResult{first, second} {
		rp.apply(t, r)
	}
	if _, err := sim.Churn(60, 3); err != nil {
		t.Fatal(err)
	}
	churned := mustSync(t, c, req(second.last.GetCursor(), all))
	if !slices.ContainsFunc(churned.users, func(u *connectorv1.User) bool { return len(u.GetAttributes()) > 0 }) {
		t.Fatal("the churn changed no attribute: the check proves little")
	}
	rp.apply(t, churned)
	after = sim.Tenant()
	for _, want := range after.Users {
		got := rp.users[want.ID]
		if got == nil {
			t.Errorf("user %s missing after churn", want.ID)
			continue
		}
		// A user new in an incremental read without a manager has no
		// manager@delta: absent, which the host takes as none.
		attrs := maps.Clone(got.GetAttributes())
		if _, ok := attrs[connector.AttrManager]; !ok {
			attrs[connector.AttrManager] = ""
		}
		if d := attributesDiff(attrs, want, all); d != "" {
			t.Errorf("after churn, user %s: %s", want.ID, d)
		}
	}
	for _, g := range after.Groups {
		if got, want := memberIDs(rp.nested[g.ID]), typedMembers(g, graphsim.TypeGroup); !slices.Equal(got, want) {
			t.Errorf("after churn, group %s: group members %v, want %v", g.ID, got, want)
		}
	}

	// Fewer attributes: a full read with only those.
	few := []string{connector.AttrManager, connector.AttrPreferredLanguage}
	third := mustSync(t, c, req(churned.last.GetCursor(), few))
	if !third.last.GetComplete() || !strings.Contains(third.last.GetResyncReason(), "user attributes to read changed") {
		t.Fatalf("other attributes: complete %v, reason %q", third.last.GetComplete(), third.last.GetResyncReason())
	}
	for _, want := range after.Users {
		if got := third.user(t, want.ID); got == nil || attributesDiff(got.GetAttributes(), want, few) != "" {
			t.Errorf("user %s after the resync: %v", want.ID, got.GetAttributes())
		}
	}
}

// mustDo fails the test on an error.
func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
