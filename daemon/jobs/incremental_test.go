package jobs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// TestIncrementalPlanEqualsWholePlan is the property test of planDelta:
// over random sequences of directory changes (mail renames onto other
// users' mails, case changes, disables, licenses, guests, deletions and
// returns, group renames, kind changes, deletions, members coming and
// going, members deleted from the directory), under a table of import
// policies, every incremental sync planned from the memo of the last
// plan gives exactly the events and summary of a plan over the whole
// directory, and the memo is used (not given up for a whole plan) on
// almost every incremental sync.
func TestIncrementalPlanEqualsWholePlan(t *testing.T) {
	pols := map[string]func(*policy.Policy){
		"default":                            func(*policy.Policy) {},
		"update_existing=false":              func(p *policy.Policy) { p.UpdateExisting = false },
		"email_from=upn":                     func(p *policy.Policy) { p.EmailFrom = policy.EmailFromUPN },
		"include_groups":                     func(p *policy.Policy) { p.IncludeGroups = []string{"Sales"} },
		"include_groups,nested_groups=false": func(p *policy.Policy) { p.IncludeGroups, p.NestedGroups = []string{"Sales"}, false },
		"exclude_groups,security": func(p *policy.Policy) {
			p.ExcludeGroups, p.GroupTypes = []string{"temps"}, []string{"unified", "security"}
		},
		"unlicensed,guests,delete": func(p *policy.Policy) {
			p.ExcludeUnlicensed, p.IncludeGuests, p.OnRemoved = true, true, policy.OnRemovedDelete
		},
		"primary_smtp,attributes,exclude an alias": func(p *policy.Policy) {
			p.EmailFrom, p.Attributes, p.ExcludeUsers = policy.EmailFromPrimary, map[string]string{"lang": "preferredLanguage"}, []string{"m3@contoso.com"}
		},
		"include_domains,tag replace": func(p *policy.Policy) {
			p.IncludeDomains, p.Tags, p.TagMode = []string{"contoso.com"}, []string{"imp"}, policy.TagModeReplace
		},
	}
	for _, name := range slices.Sorted(maps.Keys(pols)) {
		t.Run(name, func(t *testing.T) {
			pol := policy.Default()
			pols[name](&pol)
			eligible, used := 0, 0
			for seq := range 30 {
				w := newDeltaWorld(rand.New(rand.NewPCG(20261204, uint64(seq))), pol)
				e, u, ok := w.run(t, 25)
				eligible, used = eligible+e, used+u
				if !ok {
					t.Logf("sequence %d; what happened:\n  %s", seq, strings.Join(w.log, "\n  "))
					return
				}
			}
			t.Logf("%d of %d incremental syncs planned from the memo", used, eligible)
			if eligible == 0 || used*10 < eligible*9 {
				t.Errorf("only %d of %d incremental syncs planned from the memo: it is given up too often", used, eligible)
			}
		})
	}
}

// deltaWorld is a directory as Graph holds it, with what changed since
// the last sync, and the state folded from the planned events.
type deltaWorld struct {
	rng    *rand.Rand
	pol    policy.Policy
	state  *projections.State
	users  map[string]events.User
	groups map[string]events.Group
	// members is the membership now; synced as of the last sync; nested
	// and syncedNested the same of groups in groups.
	members, synced, nested, syncedNested map[string]map[string]struct{}
	// changedUsers and changedGroups changed since the last sync.
	changedUsers, changedGroups map[string]bool
	memo                        *planMemo
	jobs                        int
	log                         []string
}

func newDeltaWorld(rng *rand.Rand, pol policy.Policy) *deltaWorld {
	w := &deltaWorld{rng: rng, pol: pol, state: projections.NewState(), users: map[string]events.User{}, groups: map[string]events.Group{},
		members: map[string]map[string]struct{}{}, synced: map[string]map[string]struct{}{},
		nested: map[string]map[string]struct{}{}, syncedNested: map[string]map[string]struct{}{},
		changedUsers: map[string]bool{}, changedGroups: map[string]bool{}}
	for i := range 8 {
		w.setUser(w.randomUser(fmt.Sprintf("u%02d", i)))
	}
	for i := range 3 {
		w.setGroup(w.randomGroup(fmt.Sprintf("g%d", i)))
	}
	for range 10 {
		w.change(6) // memberships
	}
	return w
}

func (w *deltaWorld) randomMail() string {
	m := fmt.Sprintf("m%d@%s", w.rng.IntN(8), []string{"contoso.com", "contoso.com", "fabrikam.com"}[w.rng.IntN(3)])
	if w.rng.IntN(4) == 0 {
		return flipCase(w.rng, m)
	}
	return m
}

func (w *deltaWorld) randomUser(id string) events.User {
	upn := id + "@contoso.onmicrosoft.com"
	if w.rng.IntN(3) == 0 {
		upn = w.randomMail()
	}
	u := events.User{ID: id, UserPrincipalName: upn, Mail: w.randomMail(), DisplayName: "User " + id,
		Department: []string{"Sales", "Ops"}[w.rng.IntN(2)], AccountEnabled: w.rng.IntN(6) != 0,
		UserType: []string{"Member", "Member", "Member", "Guest"}[w.rng.IntN(4)], AssignedLicenseCount: w.rng.IntN(3)}
	w.randomIdentity(&u)
	return u
}

// randomIdentity gives u a manager (perhaps no user, perhaps itself), a
// language and proxy addresses that may collide with others' mails.
func (w *deltaWorld) randomIdentity(u *events.User) {
	attrs := map[string]string{"manager": fmt.Sprintf("u%02d", w.rng.IntN(12))}
	if w.rng.IntN(3) > 0 {
		attrs["preferredLanguage"] = []string{"en-US", "de-DE", "fr-FR"}[w.rng.IntN(3)]
	}
	u.Attributes = events.MapOf(attrs)
	var proxies []string
	if w.rng.IntN(4) > 0 {
		proxies = append(proxies, "SMTP:"+w.randomMail())
	}
	if w.rng.IntN(3) == 0 {
		proxies = append(proxies, "smtp:"+w.randomMail())
	}
	u.ProxyAddresses = events.ListOf(proxies...)
}

func (w *deltaWorld) randomGroup(id string) events.Group {
	g := events.Group{ID: id, DisplayName: []string{"Sales", "Temps", "All", "Ops"}[w.rng.IntN(4)], GroupTypes: []string{}}
	if w.rng.IntN(3) == 0 {
		g.SecurityEnabled = true
	} else {
		g.GroupTypes, g.MailEnabled = []string{"Unified"}, true
	}
	return g
}

func (w *deltaWorld) setUser(u events.User) {
	w.users[u.ID] = u
	w.changedUsers[u.ID] = true
}

func (w *deltaWorld) setGroup(g events.Group) {
	w.groups[g.ID] = g
	w.changedGroups[g.ID] = true
}

func (w *deltaWorld) note(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

// change makes one random change; op < 0 picks one at random.
func (w *deltaWorld) change(op int) {
	uids := slices.Sorted(maps.Keys(w.users))
	gids := slices.Sorted(maps.Keys(w.groups))
	if len(uids) < 2 || len(gids) < 1 {
		op = 0
	}
	if op < 0 {
		op = w.rng.IntN(12)
	}
	user := func() events.User { return w.users[uids[w.rng.IntN(len(uids))]] }
	group := func() events.Group { return w.groups[gids[w.rng.IntN(len(gids))]] }
	switch op {
	case 0: // a new user, or a deleted one back
		id := fmt.Sprintf("u%02d", w.rng.IntN(12))
		w.setUser(w.randomUser(id))
		w.note("user %s is %+v", id, w.users[id])
	case 1: // a mail rename, perhaps onto another user's mail
		u := user()
		u.Mail = w.randomMail()
		w.setUser(u)
		w.note("user %s mail %s", u.ID, u.Mail)
	case 2: // a mail spelt otherwise, or gone
		u := user()
		if w.rng.IntN(3) == 0 {
			u.Mail = ""
		} else {
			u.Mail = flipCase(w.rng, u.Mail)
		}
		w.setUser(u)
		w.note("user %s mail %q", u.ID, u.Mail)
	case 3: // enabled, licensed, guest, department: a field flips
		u := user()
		switch w.rng.IntN(4) {
		case 0:
			u.AccountEnabled = !u.AccountEnabled
		case 1:
			u.AssignedLicenseCount = 1 - min(u.AssignedLicenseCount, 1)
		case 2:
			u.UserType = map[string]string{"Guest": "Member", "Member": "Guest"}[u.UserType]
		case 3:
			u.Department += "x"
		}
		w.setUser(u)
		w.note("user %s now %+v", u.ID, u)
	case 4: // a user deleted, its memberships gone or left behind
		u := user()
		delete(w.users, u.ID)
		w.changedUsers[u.ID] = true
		if w.rng.IntN(2) == 0 {
			for _, set := range w.members {
				delete(set, u.ID)
			}
		}
		w.note("user %s deleted", u.ID)
	case 5: // a group renamed, changing kind, new, or deleted
		switch w.rng.IntN(4) {
		case 0:
			g := group()
			g.DisplayName = []string{"Sales", "Temps", "All", "Ops"}[w.rng.IntN(4)]
			w.setGroup(g)
			w.note("group %s renamed %s", g.ID, g.DisplayName)
		case 1:
			g := w.randomGroup(group().ID)
			w.setGroup(g)
			w.note("group %s now %+v", g.ID, g)
		case 2:
			g := w.randomGroup(fmt.Sprintf("g%d", w.rng.IntN(5)))
			w.setGroup(g)
			w.note("group %s is %+v", g.ID, g)
		case 3:
			g := group()
			delete(w.groups, g.ID)
			delete(w.members, g.ID)
			delete(w.nested, g.ID)
			for _, set := range w.nested {
				delete(set, g.ID)
			}
			w.changedGroups[g.ID] = true
			w.note("group %s deleted", g.ID)
		}
	case 6, 7: // a member added
		g, u := group(), user()
		if w.members[g.ID] == nil {
			w.members[g.ID] = map[string]struct{}{}
		}
		w.members[g.ID][u.ID] = struct{}{}
		w.note("group %s gains %s", g.ID, u.ID)
	case 11: // a group nested in another, or no longer (cycles too)
		p, c := group(), group()
		if p.ID == c.ID {
			break
		}
		if _, ok := w.nested[p.ID][c.ID]; ok {
			delete(w.nested[p.ID], c.ID)
			w.note("group %s no longer holds group %s", p.ID, c.ID)
		} else {
			setAdd(w.nested, p.ID, c.ID)
			w.note("group %s holds group %s", p.ID, c.ID)
		}
	case 10: // a manager, language or aliases changed
		u := user()
		w.randomIdentity(&u)
		w.setUser(u)
		w.note("user %s attributes %q proxies %q", u.ID, u.Attributes, u.ProxyAddresses)
	case 8, 9: // a member removed
		g := group()
		if ids := slices.Sorted(maps.Keys(w.members[g.ID])); len(ids) > 0 {
			id := ids[w.rng.IntN(len(ids))]
			delete(w.members[g.ID], id)
			w.note("group %s loses %s", g.ID, id)
		}
	}
}

// snapshot is what a delta read (or now and then a full one) returns.
func (w *deltaWorld) snapshot() *snapshot {
	snap := newSnapshot()
	snap.complete = w.rng.IntN(5) == 0
	user := func(u events.User) *connectorv1.User {
		return &connectorv1.User{Id: u.ID, UserPrincipalName: ptr(u.UserPrincipalName), Mail: ptr(u.Mail), DisplayName: ptr(u.DisplayName),
			Department: ptr(u.Department), AccountEnabled: ptr(u.AccountEnabled), UserType: ptr(u.UserType),
			AssignedLicenseCount: ptr(int32(u.AssignedLicenseCount)),
			ProxyAddresses:       u.ProxyAddresses.Strings(), ProxyAddressesKnown: true, Attributes: u.Attributes.Map()}
	}
	group := func(g events.Group) *connectorv1.Group {
		return &connectorv1.Group{Id: g.ID, DisplayName: ptr(g.DisplayName), GroupTypes: g.GroupTypes, GroupTypesKnown: true,
			MailEnabled: ptr(g.MailEnabled), SecurityEnabled: ptr(g.SecurityEnabled)}
	}
	for id, u := range w.users {
		if snap.complete || w.changedUsers[id] {
			snap.users[id] = user(u)
		}
	}
	for id, g := range w.groups {
		if snap.complete || w.changedGroups[id] {
			snap.groups[id] = group(g)
		}
	}
	if !snap.complete {
		for id := range w.changedUsers {
			if _, ok := w.users[id]; !ok {
				snap.users[id] = &connectorv1.User{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}
			}
		}
		for id := range w.changedGroups {
			if _, ok := w.groups[id]; !ok {
				snap.groups[id] = &connectorv1.Group{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}
			}
		}
	}
	w.diff(w.members, w.synced, snap.complete, snap.added, snap.removed)
	w.diff(w.nested, w.syncedNested, snap.complete, snap.addedGroups, snap.removedGroups)
	clear(w.changedUsers)
	clear(w.changedGroups)
	w.synced = map[string]map[string]struct{}{}
	for g, set := range w.members {
		w.synced[g] = maps.Clone(set)
	}
	w.syncedNested = map[string]map[string]struct{}{}
	for g, set := range w.nested {
		w.syncedNested[g] = maps.Clone(set)
	}
	return snap
}

// diff files into added and removed what a read sends of sets (group to
// member IDs) now against synced, as of the last read: everything in a
// complete one.
func (w *deltaWorld) diff(now, synced map[string]map[string]struct{}, complete bool, added, removed map[string]map[string]struct{}) {
	for g, set := range now {
		if _, ok := w.groups[g]; !ok {
			continue
		}
		for id := range set {
			if _, was := synced[g][id]; complete || !was {
				setAdd(added, g, id)
			}
		}
		if complete {
			continue
		}
		for id := range synced[g] {
			if _, is := set[id]; !is {
				setAdd(removed, g, id)
			}
		}
	}
}

// run makes steps rounds of changes and syncs, comparing each
// incremental plan with the whole one; it returns how many syncs could
// use the memo, how many did, and whether every plan agreed.
func (w *deltaWorld) run(t *testing.T, steps int) (eligible, used int, ok bool) {
	for range steps {
		for n := 1 + w.rng.IntN(4); n > 0; n-- {
			w.change(-1)
		}
		w.jobs++
		snap := w.snapshot()
		job, now := fmt.Sprintf("job%d", w.jobs), time.Unix(int64(w.jobs), 0)
		spec := Spec{Name: "c", Policy: w.pol}
		var whole, delta events.Summary
		wantEvs, _ := plan(w.state, "c", job, spec, nil, snap, now, &whole, nil)
		gotEvs, memo := plan(w.state, "c", job, spec, nil, snap, now, &delta, w.memo)
		// A sync that touches nesting is planned whole, by design.
		if w.memo != nil && !snap.complete && !touchesNesting(w.state.Directory("c"), snap, w.pol.NestedGroups) {
			eligible++
			if memo != nil && memo.delta {
				used++
			}
		}
		w.note("sync %s (full read %v): %d events", job, snap.complete, len(wantEvs))
		// Event by event: a plan with no event may return nil or an
		// empty list.
		if !slices.EqualFunc(gotEvs, wantEvs, func(a, b events.Event) bool { return reflect.DeepEqual(a, b) }) {
			t.Errorf("%s: the incremental plan's events differ from the whole plan's:\n got  %s\n want %s", job, describe(gotEvs), describe(wantEvs))
			return eligible, used, false
		}
		if !reflect.DeepEqual(delta, whole) {
			t.Errorf("%s: the incremental plan's summary differs:\n got  %+v\n want %+v", job, delta, whole)
			return eligible, used, false
		}
		fold(t, w.state, gotEvs)
		w.memo = memo
	}
	return eligible, used, true
}

// describe lists events as "type subject", for a failure message.
func describe(evs []events.Event) string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s %s %+v", strings.TrimPrefix(e.Type, "io.dirsync."), e.Subject, e.Data))
	}
	return strings.Join(out, "\n      ")
}
