package azuread

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// replica is the directory as a daemon rebuilds it from what syncs send:
// a complete sync replaces it, an incremental one is merged into it
// (present fields overwrite, removals delete, memberships add up).
type replica struct {
	users   map[string]*connectorv1.User
	groups  map[string]*connectorv1.Group
	members map[string]map[string]bool
	nested  map[string]map[string]bool // group ID -> its group members
}

func newReplica() *replica {
	return &replica{users: map[string]*connectorv1.User{}, groups: map[string]*connectorv1.Group{},
		members: map[string]map[string]bool{}, nested: map[string]map[string]bool{}}
}

// apply merges a sync's result.
func (rp *replica) apply(t *testing.T, r *syncResult) {
	t.Helper()
	if r.last.GetComplete() {
		*rp = *newReplica()
	}
	for _, u := range r.users {
		if u.GetRemoved() != nil {
			delete(rp.users, u.GetId())
			continue
		}
		cur := rp.users[u.GetId()]
		if cur == nil {
			cur = &connectorv1.User{Id: u.GetId()}
			rp.users[u.GetId()] = cur
		}
		for _, f := range []struct{ dst, src **string }{
			{&cur.UserPrincipalName, &u.UserPrincipalName}, {&cur.Mail, &u.Mail}, {&cur.DisplayName, &u.DisplayName},
			{&cur.GivenName, &u.GivenName}, {&cur.Surname, &u.Surname}, {&cur.Department, &u.Department},
			{&cur.JobTitle, &u.JobTitle}, {&cur.UserType, &u.UserType},
		} {
			if *f.src != nil {
				*f.dst = *f.src
			}
		}
		if u.AccountEnabled != nil {
			cur.AccountEnabled = u.AccountEnabled
		}
		if u.AssignedLicenseCount != nil {
			cur.AssignedLicenseCount = u.AssignedLicenseCount
		}
		if u.GetProxyAddressesKnown() {
			cur.ProxyAddresses, cur.ProxyAddressesKnown = u.ProxyAddresses, true
		}
		for k, v := range u.GetAttributes() {
			if cur.Attributes == nil {
				cur.Attributes = map[string]string{}
			}
			cur.Attributes[k] = v
		}
	}
	for _, g := range r.groups {
		if g.GetRemoved() != nil {
			delete(rp.groups, g.GetId())
			delete(rp.members, g.GetId())
			delete(rp.nested, g.GetId())
			continue
		}
		cur := rp.groups[g.GetId()]
		if cur == nil {
			cur = &connectorv1.Group{Id: g.GetId()}
			rp.groups[g.GetId()] = cur
		}
		if g.DisplayName != nil {
			cur.DisplayName = g.DisplayName
		}
		if g.Mail != nil {
			cur.Mail = g.Mail
		}
		if g.GetGroupTypesKnown() {
			cur.GroupTypes, cur.GroupTypesKnown = g.GetGroupTypes(), true
		}
		if g.MailEnabled != nil {
			cur.MailEnabled = g.MailEnabled
		}
		if g.SecurityEnabled != nil {
			cur.SecurityEnabled = g.SecurityEnabled
		}
	}
	applyMembers(rp.members, r.added, r.removed)
	applyMembers(rp.nested, r.addedGroups, r.removedGroups)
}

// applyMembers adds and removes members of groups.
func applyMembers(sets map[string]map[string]bool, added, removed map[string][]string) {
	for id, ids := range added {
		set := sets[id]
		if set == nil {
			set = map[string]bool{}
			sets[id] = set
		}
		for _, m := range ids {
			set[m] = true
		}
	}
	for id, ids := range removed {
		for _, m := range ids {
			delete(sets[id], m)
		}
	}
}

// check compares the replica with the tenant: every user with every
// field, the groups of kinds (as the daemon filters them, by the merged
// properties) and their user and group members.
func (rp *replica) check(t *testing.T, tn *graphsim.Tenant, kinds groupKinds) {
	t.Helper()
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if errs++; errs <= 10 {
			t.Errorf(format, args...)
		}
	}
	if len(rp.users) != len(tn.Users) {
		fail("replica has %d users, the tenant %d", len(rp.users), len(tn.Users))
	}
	for _, want := range tn.Users {
		got := rp.users[want.ID]
		if got == nil {
			fail("user %s (%s) missing", want.ID, want.DisplayName)
			continue
		}
		if msg := userDiff(got, want); msg != "" {
			fail("user %s: %s", want.ID, msg)
		}
	}
	wantGroups := map[string]graphsim.Group{}
	for _, g := range tn.Groups {
		if kinds[entraKind(g.GroupTypes, g.MailEnabled, g.SecurityEnabled)] {
			wantGroups[g.ID] = g
		}
	}
	kept := 0
	for id, got := range rp.groups {
		kind, ok := groupKindOf(got)
		if !ok {
			fail("group %s cannot be classified from what was sent: %v", id, got)
			continue
		}
		if !kinds[kind] {
			continue
		}
		kept++
		want, ok := wantGroups[id]
		if !ok {
			fail("group %s (%s) kept but not of the kinds in the tenant", id, got.GetDisplayName())
			continue
		}
		if got.GetDisplayName() != want.DisplayName || got.GetMail() != want.Mail || !slices.Equal(got.GetGroupTypes(), want.GroupTypes) ||
			got.GetMailEnabled() != want.MailEnabled || got.GetSecurityEnabled() != want.SecurityEnabled {
			fail("group %s = %v, want %+v", id, got, want)
		}
		if got, want := memberIDs(rp.members[id]), typedMembers(want, graphsim.TypeUser); !slices.Equal(got, want) {
			fail("group %s: %d user members, want %d", id, len(got), len(want))
		}
		if got, want := memberIDs(rp.nested[id]), typedMembers(want, graphsim.TypeGroup); !slices.Equal(got, want) {
			fail("group %s: group members %v, want %v", id, got, want)
		}
	}
	if kept != len(wantGroups) {
		fail("replica keeps %d groups, the tenant has %d of the kinds", kept, len(wantGroups))
	}
}

// memberIDs returns the sorted IDs of a member set.
func memberIDs(set map[string]bool) []string { return sorted(slices.Collect(maps.Keys(set))) }

// typedMembers returns the sorted IDs of a graphsim group's members of
// an OData type.
func typedMembers(g graphsim.Group, odataType string) []string {
	var ids []string
	for _, m := range g.Members {
		if m.ODataType == odataType {
			ids = append(ids, m.ID)
		}
	}
	return sorted(ids)
}

// userDiff says how a User differs from a graphsim user ("" if not).
func userDiff(got *connectorv1.User, want graphsim.User) string {
	var d []string
	for _, f := range []struct {
		name string
		got  *string
		want string
	}{
		{"userPrincipalName", got.UserPrincipalName, want.UserPrincipalName}, {"mail", got.Mail, want.Mail},
		{"displayName", got.DisplayName, want.DisplayName}, {"givenName", got.GivenName, want.GivenName},
		{"surname", got.Surname, want.Surname}, {"department", got.Department, want.Department},
		{"jobTitle", got.JobTitle, want.JobTitle}, {"userType", got.UserType, want.UserType},
	} {
		if f.got == nil || *f.got != f.want {
			d = append(d, fmt.Sprintf("%s %v, want %q", f.name, f.got, f.want))
		}
	}
	if got.AccountEnabled == nil || *got.AccountEnabled != want.AccountEnabled {
		d = append(d, fmt.Sprintf("accountEnabled %v, want %v", got.AccountEnabled, want.AccountEnabled))
	}
	if got.AssignedLicenseCount == nil || int(*got.AssignedLicenseCount) != len(want.AssignedLicenses) {
		d = append(d, fmt.Sprintf("licenses %v, want %d", got.AssignedLicenseCount, len(want.AssignedLicenses)))
	}
	return strings.Join(d, "; ")
}

// memberDiff is the expected membership change of the groups of kinds
// between two tenant snapshots: group ID -> sorted user IDs.
func memberDiff(before, after *graphsim.Tenant, kinds groupKinds) (added, removed map[string][]string) {
	users := func(tn *graphsim.Tenant) map[string]map[string]bool {
		out := map[string]map[string]bool{}
		for _, g := range tn.Groups {
			if !kinds[entraKind(g.GroupTypes, g.MailEnabled, g.SecurityEnabled)] {
				continue
			}
			set := map[string]bool{}
			for _, m := range g.Members {
				if m.ODataType == graphsim.TypeUser {
					set[m.ID] = true
				}
			}
			out[g.ID] = set
		}
		return out
	}
	b, a := users(before), users(after)
	added, removed = map[string][]string{}, map[string][]string{}
	for id, set := range a {
		for u := range set {
			if !b[id][u] {
				added[id] = append(added[id], u)
			}
		}
	}
	for id, set := range b {
		for u := range set {
			if !a[id][u] {
				removed[id] = append(removed[id], u)
			}
		}
	}
	for _, m := range []map[string][]string{added, removed} {
		for id := range m {
			slices.Sort(m[id])
		}
	}
	return added, removed
}

// nonEmpty drops the empty entries of a result's membership map, sorted.
func nonEmpty(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for id, ids := range m {
		if len(ids) > 0 {
			out[id] = sorted(ids)
		}
	}
	return out
}

// onlyDelta fails when a Graph request other than a delta query was
// served.
func onlyDelta(t *testing.T, sim *graphsim.Sim) map[string]int64 {
	t.Helper()
	c := sim.Counters()
	for k, n := range c {
		if strings.Contains(k, "/v1.0/") && !strings.Contains(k, "/delta ") {
			t.Errorf("a Graph request that is not a delta query: %s (%d)", k, n)
		}
	}
	return c
}

// graphRequestsServed sums the counters of Graph requests.
func graphRequestsServed(c map[string]int64) int64 {
	var n int64
	for k, v := range c {
		if strings.Contains(k, "/v1.0/") {
			n += v
		}
	}
	return n
}

// TestDeltaAgainstGraphsim: a first sync reads everything; then each kind
// of change reaches the next sync as exactly the objects and fields that
// changed, through delta queries only, and the replica built from all
// syncs equals the tenant.
func TestDeltaAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 300, Groups: 20, Seed: 21, DeltaMembersPerPage: 25})
	kinds := groupKinds{}
	for _, k := range connector.GroupKinds() {
		kinds[k] = true
	}
	cfg := simConfig(t, sim, nil)
	log, logs := logBuffer()
	c := New(log)
	req := func(cursor string) *connectorv1.SyncRequest {
		return &connectorv1.SyncRequest{Config: cfg, Cursor: cursor, GroupTypes: connector.GroupKinds(), JobId: "job"}
	}
	rp := newReplica()

	sim.ResetCounters()
	first := mustSync(t, c, req(""))
	if !first.last.GetComplete() || first.last.GetCursor() == "" || first.last.GetResyncReason() != "" {
		t.Fatalf("first sync: %v", first.last)
	}
	onlyDelta(t, sim)
	tenant := sim.Tenant()
	rp.apply(t, first)
	rp.check(t, tenant, kinds)
	if len(first.users) != len(tenant.Users) {
		t.Errorf("first sync sent %d users, tenant has %d", len(first.users), len(tenant.Users))
	}
	for _, g := range first.groups {
		if !g.GetGroupTypesKnown() || g.MailEnabled == nil || g.SecurityEnabled == nil {
			t.Errorf("full read sent group %s without its kind", g.GetId())
		}
	}
	var skipped int64
	for _, g := range tenant.Groups {
		for _, m := range g.Members {
			if m.ODataType != graphsim.TypeUser && m.ODataType != graphsim.TypeGroup {
				skipped++
			}
		}
	}
	if p := first.last.GetProgress(); p.GetSkippedMembers() != skipped || skipped == 0 {
		t.Errorf("skipped members %d, want %d (> 0)", p.GetSkippedMembers(), skipped)
	}
	cursor := first.last.GetCursor()

	// Users and groups to change.
	var members []string // users in the first Unified group that is not All Company
	var unified *graphsim.Group
	for i, g := range tenant.Groups {
		if g.IsUnified() && g.DisplayName != "All Company" && len(g.Members) > 2 {
			unified = &tenant.Groups[i]
			break
		}
	}
	if unified == nil {
		t.Fatal("no Unified group to change")
	}
	in := map[string]bool{}
	for _, m := range unified.Members {
		if m.ODataType == graphsim.TypeUser {
			in[m.ID] = true
			members = append(members, m.ID)
		}
	}
	// outsiders are the live users not in the group now.
	outsiders := func() []string {
		var out []string
		for _, g := range sim.Tenant().Groups {
			if g.ID == unified.ID {
				now := map[string]bool{}
				for _, m := range g.Members {
					now[m.ID] = true
				}
				for _, u := range sim.Tenant().Users {
					if !now[u.ID] {
						out = append(out, u.ID)
					}
				}
			}
		}
		return out
	}
	ids := make([]string, 0, 8)
	for _, u := range tenant.Users[10:18] {
		ids = append(ids, u.ID)
	}
	var added graphsim.User
	var step *testing.T // the running step, for must
	must := func(err error) {
		step.Helper()
		if err != nil {
			step.Fatal(err)
		}
	}

	steps := []struct {
		name   string
		change func()
		users  func() []*connectorv1.User // exactly the users expected; nil: none
		groups int                        // Group messages expected
	}{
		{name: "no change", change: func() {}},
		{name: "add a user",
			change: func() {
				var err error
				added, err = sim.AddUser(graphsim.User{DisplayName: "Nova Newhire", GivenName: "Nova", Surname: "Newhire",
					UserPrincipalName: "nova.newhire@" + tenant.Domain, Mail: "nova.newhire@contoso.com", UserType: "Member",
					AccountEnabled: true, Department: "Sales", AssignedLicenses: []string{"c7df2760-2c81-4ef7-b578-5b5392b571df"},
					ProxyAddresses: []string{"SMTP:nova.newhire@contoso.com", "smtp:nova@contoso.com"}})
				must(err)
			},
			users: func() []*connectorv1.User {
				return []*connectorv1.User{{Id: added.ID, UserPrincipalName: ptr(added.UserPrincipalName), Mail: ptr(added.Mail),
					DisplayName: ptr(added.DisplayName), GivenName: ptr("Nova"), Surname: ptr("Newhire"), Department: ptr("Sales"),
					JobTitle: ptr(""), AccountEnabled: ptr(true), UserType: ptr("Member"), AssignedLicenseCount: ptr(int32(1)),
					Guest: ptr(false), Licensed: ptr(true), Enabled: ptr(true),
					ProxyAddresses: []string{"SMTP:nova.newhire@contoso.com", "smtp:nova@contoso.com"}, ProxyAddressesKnown: true}}
			}},
		{name: "update one property",
			change: func() { must(sim.UpdateUser(ids[0], func(u *graphsim.User) { u.Department = "Red Team" })) },
			users:  func() []*connectorv1.User { return []*connectorv1.User{{Id: ids[0], Department: ptr("Red Team")}} }},
		{name: "clear a property",
			change: func() { must(sim.UpdateUser(ids[1], func(u *graphsim.User) { u.JobTitle = "" })) },
			users:  func() []*connectorv1.User { return []*connectorv1.User{{Id: ids[1], JobTitle: ptr("")}} }},
		{name: "disable",
			change: func() { must(sim.DisableUser(ids[2])) },
			users: func() []*connectorv1.User {
				return []*connectorv1.User{{Id: ids[2], AccountEnabled: ptr(false), Enabled: ptr(false)}}
			}},
		{name: "soft delete",
			change: func() { must(sim.DeleteUser(ids[3], false)) },
			users: func() []*connectorv1.User {
				return []*connectorv1.User{{Id: ids[3], Removed: &connectorv1.Removal{Reason: "changed"}}}
			}},
		{name: "permanent delete",
			change: func() { must(sim.DeleteUser(ids[4], true)) },
			users: func() []*connectorv1.User {
				return []*connectorv1.User{{Id: ids[4], Removed: &connectorv1.Removal{Reason: "deleted"}}}
			}},
		{name: "restore", change: func() { must(sim.RestoreUser(ids[3])) }},
		{name: "license change",
			change: func() {
				must(sim.SetLicenses(ids[5], []string{"c7df2760-2c81-4ef7-b578-5b5392b571df", "f30db892-07e9-47e9-837c-80727f46fd3d", "1f2f344a-700d-42c9-9427-5cea1d5d7ba6"}))
			},
			users: func() []*connectorv1.User {
				return []*connectorv1.User{{Id: ids[5], AssignedLicenseCount: ptr(int32(3)), Licensed: ptr(true)}}
			}},
		{name: "member add and remove",
			change: func() {
				must(sim.AddMembers(unified.ID, outsiders()[0]))
				must(sim.RemoveMembers(unified.ID, members[0]))
			}},
		{name: "large group split across pages",
			change: func() { must(sim.AddMembers(unified.ID, outsiders()[:60]...)) }},
		{name: "churn", change: func() {
			_, err := sim.Churn(40, 7)
			must(err)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			step = t
			before := sim.Tenant()
			st.change()
			after := sim.Tenant()
			sim.ResetCounters()
			r := mustSync(t, c, req(cursor))
			counters := onlyDelta(t, sim)
			// Graph may hand back the same delta link when nothing changed.
			if r.last.GetComplete() || r.last.GetResyncReason() != "" || r.last.GetCursor() == "" || (r.objects() > 0 && r.last.GetCursor() == cursor) {
				t.Errorf("last batch: complete %v, reason %q, new cursor %v", r.last.GetComplete(), r.last.GetResyncReason(), r.last.GetCursor() != cursor)
			}
			cursor = r.last.GetCursor()
			p := r.last.GetProgress()
			if served := graphRequestsServed(counters); served != p.GetRequests()+p.GetRetries() {
				t.Errorf("graphsim served %d Graph requests, progress counts %d + %d retries (%v)", served, p.GetRequests(), p.GetRetries(), counters)
			}
			if st.name == "no change" && (r.objects() != 0 || p.GetRequests() != 2) {
				t.Errorf("no change: %d objects, %d requests", r.objects(), p.GetRequests())
			}
			if st.users != nil {
				want := st.users()
				if len(r.users) != len(want) {
					t.Errorf("users %v, want %v", r.users, want)
				} else {
					for i := range want {
						if r.users[i].String() != want[i].String() {
							t.Errorf("user %v, want %v", r.users[i], want[i])
						}
					}
				}
			}
			if st.name == "restore" {
				if len(r.users) != 1 || r.users[0].GetId() != ids[3] || r.users[0].GetRemoved() != nil {
					t.Errorf("restore sent %v", r.users)
				} else if r.users[0].UserPrincipalName == nil {
					t.Errorf("restored user without its properties: %v", r.users[0])
				}
			}
			if st.name != "churn" && st.name != "restore" {
				if st.users == nil && len(r.users) != 0 {
					t.Errorf("users sent: %v", r.users)
				}
				if len(r.groups) != 0 {
					t.Errorf("groups sent: %v", r.groups)
				}
				wantAdded, wantRemoved := memberDiff(before, after, kinds)
				if got := nonEmpty(r.added); !maps.EqualFunc(got, wantAdded, slices.Equal) {
					t.Errorf("members added %v, want %v", got, wantAdded)
				}
				if got := nonEmpty(r.removed); !maps.EqualFunc(got, wantRemoved, slices.Equal) {
					t.Errorf("members removed %v, want %v", got, wantRemoved)
				}
			}
			if st.name == "large group split across pages" && counters["GET /v1.0/groups/delta 200"] < 3 {
				t.Errorf("the group was not split across pages: %v", counters)
			}
			rp.apply(t, r)
			rp.check(t, after, kinds)
			t.Logf("%d users, %d groups, +%d/-%d members; progress %v", len(r.users), len(r.groups), len(nonEmpty(r.added)), len(nonEmpty(r.removed)), p)
		})
	}
	assertNoSecrets(t, "log", logs.String())
	assertNoLinksAboveDebug(t, logs.String())
}

// The exact request count of a tenant of known size: users at 999 a page,
// groups (with members, one page here) once each; a second sync without
// change makes one request of each.
func TestDeltaRequestCount(t *testing.T) {
	const users = 2500
	sim := startSim(t, graphsim.Config{Users: users, Groups: 6, Seed: 5, DeltaMembersPerPage: 10000})
	c := New(nil)
	cfg := simConfig(t, sim, nil)
	sim.ResetCounters()
	first := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg})
	counters := onlyDelta(t, sim)
	userPages := int64(math.Ceil(users / 999.0))
	if counters["GET /v1.0/users/delta 200"] != userPages || counters["GET /v1.0/groups/delta 200"] != 1 ||
		first.last.GetProgress().GetRequests() != userPages+1 {
		t.Errorf("first sync: counters %v, progress %v; want %d users pages and 1 groups page", counters, first.last.GetProgress(), userPages)
	}
	if len(first.users) != users {
		t.Errorf("%d users", len(first.users))
	}
	sim.ResetCounters()
	second := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Cursor: first.last.GetCursor()})
	counters = onlyDelta(t, sim)
	if counters["GET /v1.0/users/delta 200"] != 1 || counters["GET /v1.0/groups/delta 200"] != 1 || second.objects() != 0 {
		t.Errorf("second sync: counters %v, %d objects", counters, second.objects())
	}
}

// normalized is a result as sorted lines, to compare two full reads.
func normalized(r *syncResult) string {
	var lines []string
	for _, u := range r.users {
		lines = append(lines, "user "+u.String())
	}
	for _, g := range r.groups {
		lines = append(lines, "group "+g.String())
	}
	for id, ids := range nonEmpty(r.added) {
		lines = append(lines, "members "+id+" "+strings.Join(ids, ","))
	}
	for id, ids := range nonEmpty(r.removed) {
		lines = append(lines, "removed "+id+" "+strings.Join(ids, ","))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Each way graphsim expires delta tokens makes the next sync a full read
// in the same Sync, equal to a fresh full read, with a resync reason.
func TestDeltaExpiryAgainstGraphsim(t *testing.T) {
	for _, mode := range []graphsim.ExpiryMode{graphsim.ExpiryBadRequest, graphsim.ExpiryGone, graphsim.ExpiryGoneEmpty} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			sim := startSim(t, graphsim.Config{Users: 120, Groups: 8, Seed: 3, DeltaMembersPerPage: 30})
			c := New(nil)
			cfg := simConfig(t, sim, nil)
			first := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg})
			tenant := sim.Tenant()
			if err := sim.DeleteUser(tenant.Users[7].ID, true); err != nil {
				t.Fatal(err)
			}
			sim.ExpireDeltaTokens(mode)
			r := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Cursor: first.last.GetCursor()})
			t.Logf("resync_reason %q", r.last.GetResyncReason())
			if !r.last.GetComplete() || !strings.Contains(r.last.GetResyncReason(), "delta token") || r.last.GetCursor() == "" {
				t.Fatalf("after expiry: %v", r.last)
			}
			fresh := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Full: true})
			if normalized(r) != normalized(fresh) {
				t.Errorf("the resync differs from a fresh full read")
			}
			rp := newReplica()
			rp.apply(t, r)
			after := sim.Tenant()
			rp.check(t, after, groupKinds{connector.GroupUnified: true})
			// The new cursor works.
			next := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Cursor: r.last.GetCursor()})
			if next.last.GetComplete() || next.objects() != 0 {
				t.Errorf("sync after the resync: %v, %d objects", next.last, next.objects())
			}
		})
	}
}

// Faults cost retries, never correctness.
func TestDeltaFaultsAgainstGraphsim(t *testing.T) {
	base := graphsim.Config{Users: 1500, Groups: 10, Seed: 8, DeltaMembersPerPage: 100}
	clean := startSim(t, base)
	want := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, clean, nil), GroupTypes: connector.GroupKinds()})

	// The Retry-After forms run on a small tenant (3 pages): their waits
	// are real.
	small := graphsim.Config{Users: 1200, Groups: 4, Seed: 8, DeltaMembersPerPage: 5000}
	wantSmall := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, startSim(t, small), nil), GroupTypes: connector.GroupKinds()})

	tests := []struct {
		name             string
		small            bool
		faults           graphsim.Faults
		minWait, maxWait time.Duration // per retry
	}{
		{name: "throttling and 503", faults: graphsim.Faults{ThrottleRate: 0.3, ServerErrorRate: 0.1, RetryAfter: "0.1", Seed: 1},
			minWait: 100 * time.Millisecond, maxWait: 100 * time.Millisecond},
		{name: "504 and resets", faults: graphsim.Faults{GatewayTimeoutRate: 0.2, ResetRate: 0.2, Seed: 2},
			maxWait: 100 * time.Millisecond},
		{name: "Retry-After fractional", small: true, faults: graphsim.Faults{ThrottleRate: 0.5, RetryAfter: "0.5", Seed: 3},
			minWait: 500 * time.Millisecond, maxWait: 500 * time.Millisecond},
		{name: "Retry-After HTTP date", small: true, faults: graphsim.Faults{ThrottleRate: 0.5, RetryAfter: "http-date", Seed: 4},
			minWait: 0, maxWait: 2 * time.Second},
		{name: "no Retry-After: backoff", faults: graphsim.Faults{ThrottleRate: 0.4, RetryAfter: "none", Seed: 5},
			minWait: 10 * time.Millisecond, maxWait: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, want := base, want
			if tt.small {
				cfg, want = small, wantSmall
			}
			cfg.Faults = tt.faults
			sim := startSim(t, cfg)
			c := New(nil)
			c.opts.backoffBase = 20 * time.Millisecond
			got := mustSync(t, c, &connectorv1.SyncRequest{Config: simConfig(t, sim, nil), GroupTypes: connector.GroupKinds()})
			p := got.last.GetProgress()
			t.Logf("progress %v; counters %v", p, sim.Counters())
			if normalized(got) != normalized(want) {
				t.Errorf("the result differs from the one without faults")
			}
			if tt.minWait == 0 && p.GetThrottleWaitMs() == 0 {
				t.Error("no throttle wait counted")
			}
			if p.GetRetries() == 0 {
				t.Fatal("no retries counted")
			}
			perRetry := time.Duration(p.GetThrottleWaitMs()) * time.Millisecond / time.Duration(p.GetRetries())
			if perRetry < tt.minWait || perRetry > tt.maxWait {
				t.Errorf("waited %v per retry, want %v to %v", perRetry, tt.minWait, tt.maxWait)
			}
			if served := graphRequestsServed(sim.Counters()); tt.faults.ResetRate == 0 && served != p.GetRequests()+p.GetRetries() {
				t.Errorf("graphsim served %d, progress counts %d + %d", served, p.GetRequests(), p.GetRetries())
			}
		})
	}

	t.Run("down past the retry budget", func(t *testing.T) {
		sim := startSim(t, graphsim.Config{Users: 50, Groups: 3, Seed: 1})
		c := New(nil)
		cfg := simConfig(t, sim, map[string]any{"retry_budget": "2s"})
		first := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg})
		sim.SetFaults(graphsim.Faults{Down: true})
		start := time.Now()
		r, err := runSync(t, c, &connectorv1.SyncRequest{Config: cfg, Cursor: first.last.GetCursor()})
		t.Logf("after %v: %v", time.Since(start), err)
		if err == nil || r.last.GetDone() {
			t.Fatalf("sync with Graph down: err %v, batches %d", err, len(r.batches))
		}
		// The guard tells the 2s budget from the default 10m; it measures
		// nothing closer than that.
		if !strings.Contains(err.Error(), "serviceNotAvailable") || !strings.Contains(err.Error(), "retry_budget 2s") || time.Since(start) > hangGuard {
			t.Errorf("error %q", err)
		}
		// The old cursor still works once Graph is back.
		sim.SetFaults(graphsim.Faults{})
		if next := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, Cursor: first.last.GetCursor()}); next.last.GetComplete() {
			t.Error("the old cursor did not work after the failure")
		}
	})
	t.Run("the budget is the whole sync's, not each request's", func(t *testing.T) {
		// Half the requests are throttled for 0.1s: a single request would
		// need ten throttles in a row to spend a 1s budget, but the ~25
		// pages of the sync spend it together.
		sim := startSim(t, graphsim.Config{Users: 20000, Groups: 3, Seed: 1,
			Faults: graphsim.Faults{ThrottleRate: 0.5, RetryAfter: "0.1", Seed: 2}})
		cfg := simConfig(t, sim, map[string]any{"retry_budget": "1s"})
		_, err := runSync(t, New(nil), &connectorv1.SyncRequest{Config: cfg})
		if err == nil || !strings.Contains(err.Error(), "retry_budget 1s") {
			t.Fatalf("a sync throttled for more than its budget in all: err %v", err)
		}
	})
}

// A token that expires during a long sync is renewed: the credential is
// asked for a token per request and azidentity fetches a new one when
// the cached one is about to expire.
func TestDeltaTokenRenewal(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 3000, Groups: 6, Seed: 4, DeltaMembersPerPage: 200,
		TokenLifetime: 2 * time.Second, Faults: graphsim.Faults{Latency: 300 * time.Millisecond}})
	start := time.Now()
	r := mustSync(t, New(nil), &connectorv1.SyncRequest{Config: simConfig(t, sim, nil)})
	took := time.Since(start)
	counters := sim.Counters()
	t.Logf("took %v; counters %v", took, counters)
	// The test's premise, not a measurement: graphsim holds every Graph
	// request on a 300ms timer (never early), so the sync outlasts the
	// 2s token on any machine; a slower one only adds time.
	if took < 3*time.Second {
		t.Fatalf("the sync took %v, not longer than the token lifetime: the test proves nothing", took)
	}
	if !r.last.GetComplete() || len(r.users) != 3000 {
		t.Errorf("incomplete: %v", r.last.GetProgress())
	}
	if counters["POST /token 200"] < 2 {
		t.Errorf("the token was not renewed: %v", counters)
	}
	for k := range counters {
		if strings.HasSuffix(k, " 401") {
			t.Errorf("Graph rejected a token: %s", k)
		}
	}
}
