package graphsim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Changing the tenant. Every change is applied to a copy of the tenant
// that then replaces it atomically (requests in flight keep the snapshot
// they started with), and is recorded in the change log with a version
// number, from which the delta endpoints answer. All the changes of one
// call (one Churn, one Mutate) share a version.

// op is the kind of a recorded change.
type op uint8

const (
	opAdd          op = iota + 1 // object created
	opUpdate                     // properties changed (change.mask)
	opSoftDelete                 // user moved to the deleted items
	opHardDelete                 // object deleted for good
	opRestore                    // soft-deleted user restored
	opMemberAdd                  // change.member added to the group
	opMemberRemove               // change.member removed from the group
)

// objKind says which collection a change is about.
type objKind uint8

const (
	objUser objKind = iota
	objGroup
)

// change is one entry of the change log.
type change struct {
	ver    uint64
	kind   objKind
	op     op
	id     string // the object's ID
	mask   uint64 // opUpdate: bits of the changed userProps or groupProps
	member Member // opMemberAdd, opMemberRemove
}

// txn is a set of changes being made to a copy of the current snapshot.
// Only one exists at a time (Sim.mutateMu).
type txn struct {
	s   *Sim
	cur *snapshot
	ver uint64

	users    []User         // copy of the users; removed ones have an empty ID until commit
	removed  int            // number of users removed from users
	appended map[string]int // lowercase ID -> index of users added or restored in this txn
	groups   []Group        // copy of the groups; Members are copied when first changed
	gw       map[int]*groupWork
	deleted  map[string]*User // copied on first change
	copied   bool             // deleted is a copy
	changes  []change

	memberOf   map[string][]int  // lowercase member ID -> groups that had it (a superset); built on first use
	nonUsers   map[string]string // lowercase ID of a contact or device -> its type; built on first use
	upns       map[string]int    // lowercase UPN -> index of users added or restored in this txn
	deletedUPN map[string]bool   // lowercase UPNs of deleted users (a superset); built on first use
	upnChanged bool              // a user's UPN changed: commit checks uniqueness
	reports    map[string][]int  // lowercase manager ID -> users that had it (a superset); built on first use
}

// noteReport keeps the reports index up to date after user i changed.
func (tx *txn) noteReport(i int) {
	if tx.reports == nil || tx.users[i].ManagerID == "" {
		return
	}
	k := strings.ToLower(tx.users[i].ManagerID)
	tx.reports[k] = append(tx.reports[k], i)
}

// groupWork is a group whose members this txn changes.
type groupWork struct {
	members []Member       // removed ones have an empty ID until commit
	pos     map[string]int // lowercase member ID -> index in members
}

// change runs fn on a new txn and commits what it did.
func (s *Sim) change(fn func(tx *txn) error) error {
	s.mutateMu.Lock()
	defer s.mutateMu.Unlock()
	cur := s.cur.Load()
	tx := &txn{
		s:        s,
		cur:      cur,
		ver:      cur.ver + 1,
		users:    slices.Clone(cur.tenant.Users),
		appended: map[string]int{},
		upns:     map[string]int{},
		groups:   slices.Clone(cur.tenant.Groups),
		gw:       map[int]*groupWork{},
		deleted:  cur.deleted,
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.commit()
}

// commit validates the changed tenant and makes it current.
func (tx *txn) commit() error {
	if len(tx.changes) == 0 {
		return nil
	}
	t := &Tenant{ID: tx.cur.tenant.ID, Domain: tx.cur.tenant.Domain, Users: tx.users, Groups: tx.groups}
	if tx.removed > 0 {
		t.Users = slices.DeleteFunc(t.Users, func(u User) bool { return u.ID == "" })
	}
	for i, w := range tx.gw {
		t.Groups[i].Members = slices.DeleteFunc(w.members, func(m Member) bool { return m.ID == "" })
	}
	var snap *snapshot
	if tx.removed == 0 && len(tx.appended) == 0 && !tx.upnChanged {
		// The same objects at the same places: the indexes still hold, and
		// the changes were validated one by one.
		c := tx.cur
		snap = &snapshot{tenant: t, ver: tx.ver, userIdx: c.userIdx, grpIdx: c.grpIdx, unified: c.unified, byID: c.byID}
	} else {
		var err error
		if snap, err = newSnapshot(t, tx.ver); err != nil {
			return fmt.Errorf("graphsim: %w", err)
		}
	}
	for k := range tx.deleted {
		if _, live := snap.userIdx[k]; live {
			return fmt.Errorf("graphsim: deleted user %s has the ID of a user or group that exists", k)
		}
		if _, live := snap.grpIdx[k]; live {
			return fmt.Errorf("graphsim: deleted user %s has the ID of a user or group that exists", k)
		}
	}
	snap.deleted = tx.deleted
	snap.epoch = tx.cur.epoch
	snap.log = append(tx.cur.log, tx.changes...)
	tx.s.cur.Store(snap)
	return saveFailed(tx.s.saveState(snap))
}

func (tx *txn) record(c change) {
	c.ver = tx.ver
	tx.changes = append(tx.changes, c)
}

// userIndex finds a live user by ID.
func (tx *txn) userIndex(id string) (int, bool) {
	k := strings.ToLower(id)
	if i, ok := tx.appended[k]; ok {
		return i, tx.users[i].ID != ""
	}
	i, ok := tx.cur.userIdx[k]
	if !ok || !strings.EqualFold(tx.cur.tenant.Users[i].ID, id) || tx.users[i].ID == "" {
		return 0, false
	}
	return i, true
}

// groupIndex finds a group by ID.
func (tx *txn) groupIndex(id string) (int, bool) {
	i, ok := tx.cur.grpIdx[strings.ToLower(id)]
	return i, ok
}

func (tx *txn) mustUser(id string) (int, error) {
	i, ok := tx.userIndex(id)
	if !ok {
		return 0, fmt.Errorf("graphsim: no user with ID %q", id)
	}
	return i, nil
}

func (tx *txn) mustGroup(id string) (int, error) {
	i, ok := tx.groupIndex(id)
	if !ok {
		return 0, fmt.Errorf("graphsim: no group with ID %q", id)
	}
	return i, nil
}

// work returns the member work of group i, copying its members first.
func (tx *txn) work(i int) *groupWork {
	if w, ok := tx.gw[i]; ok {
		return w
	}
	src := tx.groups[i].Members
	w := &groupWork{members: slices.Clone(src), pos: make(map[string]int, len(src))}
	for j, m := range src {
		w.pos[strings.ToLower(m.ID)] = j
	}
	tx.gw[i] = w
	return w
}

// hasMember reports whether group i has the member.
func (tx *txn) hasMember(i int, id string) bool {
	if w, ok := tx.gw[i]; ok {
		_, has := w.pos[strings.ToLower(id)]
		return has
	}
	return slices.ContainsFunc(tx.groups[i].Members, func(m Member) bool { return strings.EqualFold(m.ID, id) })
}

// addMember adds m to group i unless it is a member already.
func (tx *txn) addMember(i int, m Member) bool {
	w := tx.work(i)
	k := strings.ToLower(m.ID)
	if _, has := w.pos[k]; has {
		return false
	}
	w.pos[k] = len(w.members)
	w.members = append(w.members, m)
	if tx.memberOf != nil {
		tx.memberOf[k] = append(tx.memberOf[k], i)
	}
	tx.record(change{kind: objGroup, op: opMemberAdd, id: tx.groups[i].ID, member: m})
	return true
}

// removeMember removes the member from group i if it is one.
func (tx *txn) removeMember(i int, id string) bool {
	w := tx.work(i)
	k := strings.ToLower(id)
	j, has := w.pos[k]
	if !has {
		return false
	}
	m := w.members[j]
	w.members[j].ID = ""
	delete(w.pos, k)
	tx.record(change{kind: objGroup, op: opMemberRemove, id: tx.groups[i].ID, member: m})
	return true
}

// groupsOf returns the groups that have the member, in group order.
func (tx *txn) groupsOf(id string) []int {
	if tx.memberOf == nil {
		tx.memberOf = map[string][]int{}
		for i := range tx.groups {
			for _, m := range tx.currentMembers(i) {
				if m.ID != "" {
					k := strings.ToLower(m.ID)
					tx.memberOf[k] = append(tx.memberOf[k], i)
				}
			}
		}
	}
	var out []int
	for _, i := range tx.memberOf[strings.ToLower(id)] {
		if (len(out) == 0 || out[len(out)-1] != i) && tx.hasMember(i, id) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// currentMembers is group i's member list in this txn (removed ones have
// an empty ID).
func (tx *txn) currentMembers(i int) []Member {
	if w, ok := tx.gw[i]; ok {
		return w.members
	}
	return tx.groups[i].Members
}

// memberType is the @odata.type of a directory object that can be added
// to a group, or "" if there is none with that ID.
func (tx *txn) memberType(id string) (string, string) {
	if i, ok := tx.userIndex(id); ok {
		return TypeUser, tx.users[i].ID
	}
	if i, ok := tx.groupIndex(id); ok {
		return TypeGroup, tx.groups[i].ID
	}
	if tx.nonUsers == nil {
		tx.nonUsers = map[string]string{}
		for i := range tx.groups {
			for _, m := range tx.currentMembers(i) {
				if m.ID != "" && (m.ODataType == TypeOrgContact || m.ODataType == TypeDevice) {
					tx.nonUsers[strings.ToLower(m.ID)] = m.ODataType + "\x00" + m.ID
				}
			}
		}
	}
	if v, ok := tx.nonUsers[strings.ToLower(id)]; ok {
		typ, canonical, _ := strings.Cut(v, "\x00")
		return typ, canonical
	}
	return "", ""
}

// setDeleted changes the soft-deleted users, copying the map first.
func (tx *txn) setDeleted(k string, u *User) {
	if !tx.copied {
		tx.deleted = maps.Clone(tx.deleted)
		if tx.deleted == nil {
			tx.deleted = map[string]*User{}
		}
		tx.copied = true
	}
	if u == nil {
		delete(tx.deleted, k)
		return
	}
	tx.deleted[k] = u
	if tx.deletedUPN != nil {
		tx.deletedUPN[strings.ToLower(u.UserPrincipalName)] = true
	}
}

// liveUPN reports whether a live user has the UPN (users whose UPN this
// txn changed apart: commit catches those).
func (tx *txn) liveUPN(upn string) bool {
	k := strings.ToLower(upn)
	if i, ok := tx.cur.userIdx[k]; ok && tx.users[i].ID != "" && strings.EqualFold(tx.users[i].UserPrincipalName, upn) {
		return true
	}
	if i, ok := tx.upns[k]; ok && tx.users[i].ID != "" && strings.EqualFold(tx.users[i].UserPrincipalName, upn) {
		return true
	}
	return false
}

// appendUser adds u at the end of the users.
func (tx *txn) appendUser(u User) {
	tx.appended[strings.ToLower(u.ID)] = len(tx.users)
	tx.upns[strings.ToLower(u.UserPrincipalName)] = len(tx.users)
	tx.users = append(tx.users, u)
}

// removeUser takes user i out of the tenant and out of every group.
func (tx *txn) removeUser(i int) User {
	u := tx.users[i]
	for _, g := range tx.groupsOf(u.ID) {
		tx.removeMember(g, u.ID)
	}
	tx.clearReports(u.ID)
	tx.users[i].ID = ""
	tx.removed++
	return u
}

// checkUser validates a user's own fields (uniqueness is checked at
// commit).
func checkUser(u *User) error {
	var errs []error
	if !isGUID(u.ID) {
		errs = append(errs, fmt.Errorf("ID %q is not a GUID", u.ID))
	}
	if u.UserPrincipalName == "" || strings.ContainsAny(u.UserPrincipalName, " \t\r\n") || !strings.Contains(u.UserPrincipalName, "@") {
		errs = append(errs, fmt.Errorf("userPrincipalName %q is not like name@domain", u.UserPrincipalName))
	}
	if u.DisplayName == "" {
		errs = append(errs, errors.New("displayName is required"))
	}
	if u.UserType != "Member" && u.UserType != "Guest" {
		errs = append(errs, fmt.Errorf("userType %q is neither Member nor Guest", u.UserType))
	}
	for _, sku := range u.AssignedLicenses {
		if !isGUID(sku) {
			errs = append(errs, fmt.Errorf("license skuId %q is not a GUID", sku))
		}
	}
	if len(u.AssignedLicenses) != len(sortedUnique(u.AssignedLicenses)) {
		errs = append(errs, errors.New("a license is assigned twice"))
	}
	errs = append(errs, checkAttributes(u)...)
	return errors.Join(errs...)
}

// checkAttributes validates the attributes Config.Attributes generates.
func checkAttributes(u *User) []error {
	var errs []error
	primary := 0
	for _, a := range u.ProxyAddresses {
		prefix, addr, ok := strings.Cut(a, ":")
		// X500 addresses hold spaces; SMTP ones hold none.
		smtp := strings.EqualFold(prefix, "smtp")
		if !ok || prefix == "" || addr == "" || strings.ContainsAny(a, "\t\r\n") || smtp && (strings.Contains(addr, " ") || !strings.Contains(addr, "@")) {
			errs = append(errs, fmt.Errorf("proxy address %q is not like SMTP:name@domain", a))
		}
		if prefix == "SMTP" {
			primary++
		}
	}
	if primary > 1 {
		errs = append(errs, errors.New("proxyAddresses has more than one primary SMTP: address"))
	}
	if ul := u.UsageLocation; ul != "" && (len(ul) != 2 || strings.ToUpper(ul) != ul || strings.ToLower(ul) == ul) {
		errs = append(errs, fmt.Errorf("usageLocation %q is not a two-letter country code like US", ul))
	}
	if u.ManagerID != "" && !isGUID(u.ManagerID) {
		errs = append(errs, fmt.Errorf("manager %q is not a GUID", u.ManagerID))
	}
	if u.ManagerID != "" && strings.EqualFold(u.ManagerID, u.ID) {
		errs = append(errs, errors.New("a user cannot be its own manager"))
	}
	switch u.MailboxPurpose {
	case "", MailboxUser, MailboxLinked, MailboxShared, MailboxRoom, MailboxEquipment, MailboxOthers:
	default:
		errs = append(errs, fmt.Errorf("mailbox purpose %q is none of user, linked, shared, room, equipment, others", u.MailboxPurpose))
	}
	return errs
}

// checkManager reports whether u's manager is a live user of the txn.
func (tx *txn) checkManager(u *User) error {
	if u.ManagerID == "" {
		return nil
	}
	i, ok := tx.userIndex(u.ManagerID)
	if !ok {
		return fmt.Errorf("manager %s of user %s is not a user of the tenant", u.ManagerID, u.ID)
	}
	u.ManagerID = tx.users[i].ID
	return nil
}

// clearReports removes the manager of every user whose manager is the
// user with ID id: Entra drops the manager reference when the manager is
// deleted. The reports index is built on first use.
func (tx *txn) clearReports(id string) {
	if tx.reports == nil {
		tx.reports = map[string][]int{}
		for i := range tx.users {
			if m := tx.users[i].ManagerID; m != "" && tx.users[i].ID != "" {
				k := strings.ToLower(m)
				tx.reports[k] = append(tx.reports[k], i)
			}
		}
	}
	k := strings.ToLower(id)
	for _, i := range tx.reports[k] {
		if tx.users[i].ID != "" && strings.EqualFold(tx.users[i].ManagerID, id) {
			_ = tx.updateUser(i, func(u *User) { u.ManagerID = "" })
		}
	}
	delete(tx.reports, k)
}

func sortedUnique(s []string) []string {
	c := make([]string, len(s))
	for i, v := range s {
		c[i] = strings.ToLower(v)
	}
	slices.Sort(c)
	return slices.Compact(c)
}

// addUser adds u (its ID set) to the tenant.
func (tx *txn) addUser(u User) error {
	u.AssignedLicenses = slices.Clone(u.AssignedLicenses)
	u.ProxyAddresses = slices.Clone(u.ProxyAddresses)
	if err := checkUser(&u); err != nil {
		return err
	}
	if err := tx.checkManager(&u); err != nil {
		return err
	}
	k := strings.ToLower(u.ID)
	if _, ok := tx.userIndex(u.ID); ok {
		return fmt.Errorf("a user with ID %s exists", u.ID)
	}
	if _, ok := tx.groupIndex(u.ID); ok {
		return fmt.Errorf("a group has ID %s", u.ID)
	}
	if _, ok := tx.deleted[k]; ok {
		return fmt.Errorf("a deleted user has ID %s (restore or purge it)", u.ID)
	}
	if tx.liveUPN(u.UserPrincipalName) {
		return fmt.Errorf("a user with userPrincipalName %s exists", u.UserPrincipalName)
	}
	tx.appendUser(u)
	tx.noteReport(len(tx.users) - 1)
	tx.record(change{kind: objUser, op: opAdd, id: u.ID})
	return nil
}

// updateUser applies fn to a copy of user i and records what changed.
func (tx *txn) updateUser(i int, fn func(u *User)) error {
	old := tx.users[i]
	u := old
	u.AssignedLicenses = slices.Clone(old.AssignedLicenses)
	u.ProxyAddresses = slices.Clone(old.ProxyAddresses)
	fn(&u)
	if !strings.EqualFold(u.ID, old.ID) {
		return fmt.Errorf("the ID of user %s cannot change", old.ID)
	}
	u.ID = old.ID
	if err := checkUser(&u); err != nil {
		return fmt.Errorf("user %s: %w", old.ID, err)
	}
	if err := tx.checkManager(&u); err != nil {
		return err
	}
	// A change no served property shows (the mailbox purpose) has mask
	// 0: it is recorded all the same, so that the change commits, and
	// delta, which reports only masked properties, passes over it.
	if mask := tx.s.userMask(&old, &u); mask != 0 || !userEqual(&old, &u) {
		if !strings.EqualFold(u.UserPrincipalName, old.UserPrincipalName) {
			tx.upnChanged = true
		}
		tx.users[i] = u
		tx.noteReport(i)
		tx.record(userChange(&old, &u, mask))
	}
	return nil
}

// deleteUser soft-deletes (restorable) or permanently deletes a user; a
// soft-deleted user may be deleted permanently.
func (tx *txn) deleteUser(id string, permanent bool) error {
	k := strings.ToLower(id)
	if i, ok := tx.userIndex(id); ok {
		u := tx.removeUser(i)
		if permanent {
			tx.record(change{kind: objUser, op: opHardDelete, id: u.ID})
			return nil
		}
		tx.setDeleted(k, &u)
		tx.record(change{kind: objUser, op: opSoftDelete, id: u.ID})
		return nil
	}
	if u, ok := tx.deleted[k]; ok {
		if !permanent {
			return fmt.Errorf("graphsim: user %s is deleted already", id)
		}
		tx.setDeleted(k, nil)
		tx.record(change{kind: objUser, op: opHardDelete, id: u.ID})
		return nil
	}
	return fmt.Errorf("graphsim: no user with ID %q", id)
}

// restoreUser brings a soft-deleted user back (without its former group
// memberships).
func (tx *txn) restoreUser(id string) error {
	k := strings.ToLower(id)
	u, ok := tx.deleted[k]
	if !ok {
		if _, live := tx.userIndex(id); live {
			return fmt.Errorf("graphsim: user %s is not deleted", id)
		}
		return fmt.Errorf("graphsim: no deleted user with ID %q", id)
	}
	if tx.liveUPN(u.UserPrincipalName) {
		return fmt.Errorf("graphsim: cannot restore user %s: another user has userPrincipalName %s", id, u.UserPrincipalName)
	}
	tx.setDeleted(k, nil)
	restored := *u
	if _, live := tx.userIndex(restored.ManagerID); !live {
		restored.ManagerID = "" // the manager went meanwhile
	}
	tx.appendUser(restored)
	tx.noteReport(len(tx.users) - 1)
	tx.record(change{kind: objUser, op: opRestore, id: u.ID})
	return nil
}

// addMembers adds directory objects to group gid by ID.
func (tx *txn) addMembers(gid string, ids []string) error {
	g, err := tx.mustGroup(gid)
	if err != nil {
		return err
	}
	for _, id := range ids {
		typ, canonical := tx.memberType(id)
		switch {
		case typ == "":
			return fmt.Errorf("graphsim: no user, group, contact or device with ID %q", id)
		case typ == TypeGroup && strings.EqualFold(canonical, tx.groups[g].ID):
			return fmt.Errorf("graphsim: group %s cannot be a member of itself", gid)
		}
		// A group that (transitively) contains gid may be added: that
		// makes a cycle. Entra ID is not documented to refuse one, and
		// a directory synced from on-premises Active Directory, which
		// allows circular nesting, can have one; tests model it, and
		// transitiveMembers copes.
		tx.addMember(g, Member{ID: canonical, ODataType: typ})
	}
	return nil
}

// removeMembers removes members from group gid by ID.
func (tx *txn) removeMembers(gid string, ids []string) error {
	g, err := tx.mustGroup(gid)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !tx.removeMember(g, id) {
			return fmt.Errorf("graphsim: %s is not a member of group %s", id, gid)
		}
	}
	return nil
}

// AddUser adds a user and returns it as stored. An empty ID gets a new
// random GUID, an empty UserType is "Member"; the user must have a
// userPrincipalName unique in the tenant and a displayName, and its ID
// must be a GUID not used by a user (live or deleted) or group.
func (s *Sim) AddUser(u User) (User, error) {
	if u.ID == "" {
		u.ID = randomGUID()
	}
	if u.UserType == "" {
		u.UserType = "Member"
	}
	err := s.change(func(tx *txn) error { return tx.addUser(u) })
	if err != nil {
		return User{}, prefixErr(err)
	}
	u.AssignedLicenses = slices.Clone(u.AssignedLicenses)
	return u, nil
}

// UpdateUser changes a user: fn receives a copy to modify (its ID must
// stay). Only the properties that changed are recorded for delta.
func (s *Sim) UpdateUser(id string, fn func(u *User)) error {
	return prefixErr(s.change(func(tx *txn) error {
		i, err := tx.mustUser(id)
		if err != nil {
			return err
		}
		return tx.updateUser(i, fn)
	}))
}

// DisableUser sets accountEnabled to false (blocks sign-in).
func (s *Sim) DisableUser(id string) error {
	return s.UpdateUser(id, func(u *User) { u.AccountEnabled = false })
}

// EnableUser sets accountEnabled to true.
func (s *Sim) EnableUser(id string) error {
	return s.UpdateUser(id, func(u *User) { u.AccountEnabled = true })
}

// DeleteUser deletes a user and removes it from every group. A soft
// delete moves it to the deleted items, from where RestoreUser brings it
// back; delta reports it as @removed with reason "changed". A permanent
// delete (also of a soft-deleted user) is reported with reason "deleted".
func (s *Sim) DeleteUser(id string, permanent bool) error {
	return prefixErr(s.change(func(tx *txn) error { return tx.deleteUser(id, permanent) }))
}

// RestoreUser restores a soft-deleted user with all its properties; its
// former group memberships are not restored.
func (s *Sim) RestoreUser(id string) error {
	return prefixErr(s.change(func(tx *txn) error { return tx.restoreUser(id) }))
}

// SetLicenses replaces a user's assigned licenses (skuId GUIDs); nil or
// empty removes them all.
func (s *Sim) SetLicenses(id string, skuIDs []string) error {
	skus := slices.Clone(skuIDs)
	return s.UpdateUser(id, func(u *User) { u.AssignedLicenses = skus })
}

// AddMembers adds directory objects to a group by ID: users, groups, and
// org contacts or devices that are members of some group already. An
// unknown ID is an error and nothing is added; adding a member again
// does nothing.
func (s *Sim) AddMembers(groupID string, memberIDs ...string) error {
	return prefixErr(s.change(func(tx *txn) error { return tx.addMembers(groupID, memberIDs) }))
}

// RemoveMembers removes members from a group by ID. An ID that is not a
// member is an error and nothing is removed.
func (s *Sim) RemoveMembers(groupID string, memberIDs ...string) error {
	return prefixErr(s.change(func(tx *txn) error { return tx.removeMembers(groupID, memberIDs) }))
}

// SetManager makes managerID the manager of user id; "" removes the
// manager. Delta with $select=manager reports it as manager@delta.
func (s *Sim) SetManager(id, managerID string) error {
	return s.UpdateUser(id, func(u *User) { u.ManagerID = managerID })
}

// SetMailboxPurpose sets the user's mailboxSettings.userPurpose (one of
// the Mailbox* constants); "" takes the mailbox away, so that
// /users/{id}/mailboxSettings answers as for a user without one.
func (s *Sim) SetMailboxPurpose(id, purpose string) error {
	return s.UpdateUser(id, func(u *User) { u.MailboxPurpose = purpose })
}

// DeletedUsers returns the soft-deleted users (restorable with
// RestoreUser), in no particular order.
func (s *Sim) DeletedUsers() []User {
	d := s.cur.Load().deleted
	out := make([]User, 0, len(d))
	for _, k := range sortedKeys(d) {
		out = append(out, *d[k])
	}
	return out
}

// prefixErr makes every error start with "graphsim: ".
func prefixErr(err error) error {
	if err == nil || strings.HasPrefix(err.Error(), "graphsim: ") {
		return err
	}
	return fmt.Errorf("graphsim: %w", err)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// userEqual reports whether two users are the same in every field.
func userEqual(a, b *User) bool {
	return a.ID == b.ID && a.UserPrincipalName == b.UserPrincipalName && a.Mail == b.Mail &&
		a.DisplayName == b.DisplayName && a.GivenName == b.GivenName && a.Surname == b.Surname &&
		a.Department == b.Department && a.JobTitle == b.JobTitle && a.UserType == b.UserType &&
		a.AccountEnabled == b.AccountEnabled && slices.Equal(a.AssignedLicenses, b.AssignedLicenses) &&
		slices.Equal(a.ProxyAddresses, b.ProxyAddresses) && a.PreferredLanguage == b.PreferredLanguage &&
		a.EmployeeID == b.EmployeeID && a.EmployeeType == b.EmployeeType && a.CompanyName == b.CompanyName &&
		a.OfficeLocation == b.OfficeLocation && a.City == b.City && a.Country == b.Country &&
		a.UsageLocation == b.UsageLocation && a.MobilePhone == b.MobilePhone &&
		a.ExtensionAttributes == b.ExtensionAttributes && a.ManagerID == b.ManagerID && a.MailboxPurpose == b.MailboxPurpose
}

// userChange is the log entry of an update of a to b. A manager change
// carries the former manager as its member, so that delta can tell a
// removed manager by its ID.
func userChange(a, b *User, mask uint64) change {
	c := change{kind: objUser, op: opUpdate, id: b.ID, mask: mask}
	if mask&managerBit != 0 && a.ManagerID != "" {
		c.member = Member{ID: a.ManagerID, ODataType: TypeUser}
	}
	return c
}

// groupEqual reports whether two groups are the same in every field but
// Members.
func groupEqual(a, b *Group) bool {
	return a.ID == b.ID && a.DisplayName == b.DisplayName && a.Mail == b.Mail && a.MailNickname == b.MailNickname &&
		slices.Equal(a.GroupTypes, b.GroupTypes) && a.MailEnabled == b.MailEnabled && a.SecurityEnabled == b.SecurityEnabled
}

// userMask returns the bits of the userProps whose JSON differs between
// two versions of a user (0 when equal), so that derived properties
// (proxyAddresses after a mail change) count as changed too.
func (s *Sim) userMask(a, b *User) uint64 {
	if userEqual(a, b) {
		return 0
	}
	var mask uint64
	if !strings.EqualFold(a.ManagerID, b.ManagerID) {
		mask |= managerBit
	}
	var x, y jsonObj
	for i := 1; i < len(userProps); i++ {
		x.b, y.b = x.b[:0], y.b[:0]
		x.n, y.n = 0, 0
		userProps[i].write(&x, a, s)
		userProps[i].write(&y, b, s)
		if string(x.b) != string(y.b) {
			mask |= 1 << i
		}
	}
	return mask
}

// groupMask is userMask for groups (members apart).
func (s *Sim) groupMask(a, b *Group) uint64 {
	if groupEqual(a, b) {
		return 0
	}
	var mask uint64
	var x, y jsonObj
	for i := 1; i < len(groupProps); i++ {
		x.b, y.b = x.b[:0], y.b[:0]
		x.n, y.n = 0, 0
		groupProps[i].write(&x, a, s)
		groupProps[i].write(&y, b, s)
		if string(x.b) != string(y.b) {
			mask |= 1 << i
		}
	}
	return mask
}

// diffChanges records the changes between two tenants (for Mutate).
func (s *Sim) diffChanges(old, cur *Tenant, oldSnap *snapshot, ver uint64) []change {
	var out []change
	rec := func(c change) {
		c.ver = ver
		out = append(out, c)
	}
	seen := make(map[string]struct{}, len(cur.Users))
	for i := range cur.Users {
		u := &cur.Users[i]
		k := strings.ToLower(u.ID)
		seen[k] = struct{}{}
		j, ok := oldSnap.userIdx[k]
		if !ok || !strings.EqualFold(old.Users[j].ID, u.ID) {
			rec(change{kind: objUser, op: opAdd, id: u.ID})
			continue
		}
		if mask := s.userMask(&old.Users[j], u); mask != 0 {
			rec(userChange(&old.Users[j], u, mask))
		}
	}
	for i := range old.Users {
		if _, ok := seen[strings.ToLower(old.Users[i].ID)]; !ok {
			rec(change{kind: objUser, op: opHardDelete, id: old.Users[i].ID})
		}
	}
	clear(seen)
	for i := range cur.Groups {
		g := &cur.Groups[i]
		k := strings.ToLower(g.ID)
		seen[k] = struct{}{}
		j, ok := oldSnap.grpIdx[k]
		if !ok {
			rec(change{kind: objGroup, op: opAdd, id: g.ID})
			continue
		}
		og := &old.Groups[j]
		if mask := s.groupMask(og, g); mask != 0 {
			rec(change{kind: objGroup, op: opUpdate, id: g.ID, mask: mask})
		}
		if slices.Equal(og.Members, g.Members) {
			continue
		}
		before := make(map[string]struct{}, len(og.Members))
		for _, m := range og.Members {
			before[strings.ToLower(m.ID)] = struct{}{}
		}
		after := make(map[string]struct{}, len(g.Members))
		for _, m := range g.Members {
			k := strings.ToLower(m.ID)
			after[k] = struct{}{}
			if _, had := before[k]; !had {
				rec(change{kind: objGroup, op: opMemberAdd, id: g.ID, member: m})
			}
		}
		for _, m := range og.Members {
			if _, has := after[strings.ToLower(m.ID)]; !has {
				rec(change{kind: objGroup, op: opMemberRemove, id: g.ID, member: m})
			}
		}
	}
	for i := range old.Groups {
		if _, ok := seen[strings.ToLower(old.Groups[i].ID)]; !ok {
			rec(change{kind: objGroup, op: opHardDelete, id: old.Groups[i].ID})
		}
	}
	return out
}
