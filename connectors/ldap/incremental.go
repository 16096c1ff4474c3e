package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Incremental reads.
//
// OpenLDAP: RFC 4533 content synchronization (slapd's syncprov overlay),
// refreshOnly, one search of the users and one of the groups, each with
// its cookie. slapd answers from its session log with the entries changed
// since the cookie (whole entries) and the entryUUIDs deleted. When the
// log no longer covers the cookie (slapd restarted, or more changes than
// the log holds), slapd answers with the present phase instead, which
// lists every entry that still exists: the connector, holding no state,
// reads the whole directory instead, with that as the resync reason.
//
// Active Directory: uSNChanged high-water marks, not the DirSync control.
// A search of (&(user_filter)(uSNChanged>=N)) under base_dn returns the
// changed entries whole, through the configured filters and base_dn, to
// an ordinary read account; deletions are the tombstones in the Deleted
// Objects container, read with the Show Deleted control. DirSync returns
// changed attributes only, only from a naming context's root, and needs
// the Replicating Directory Changes right (or returns only what the
// account may read, with the OBJECT_SECURITY flag) – more rights for an
// account that should read only. USNs are a domain controller's own: the
// cursor names the DC (dsServiceName), and a cursor of another DC, a USN
// above the DC's (restored from a backup) or a cursor older than the
// tombstone lifetime gives a full read with the reason.
//
// Either way a group whose entry changed, and every group it is nested
// in, is sent with its whole expanded member list (Membership.replace):
// the member DNs of those groups are resolved with searches of the DNs
// (entryDN or distinguishedName), never by reading the directory again.

// cursorVersion is the version of the cursor's JSON.
const cursorVersion = 1

// Rootdse attributes of the USN high-water mark.
const (
	attrHighestUSN    = "highestCommittedUSN"
	attrDSServiceName = "dsServiceName"
)

// maxCursorAge is how old an Active Directory cursor may be: tombstones
// outlive it (60 days by default on domains created before Windows Server
// 2003 SP1, 180 since), so no deletion is missed.
const maxCursorAge = 50 * 24 * time.Hour

// cursor is what one sync hands the next, to read only the changes.
type cursor struct {
	V      int    `json:"v"`
	Flavor Flavor `json:"flavor"`
	// Scope is a digest of what the reads covered (flavor, base_dn,
	// filters): a cursor of other filters does not tell their changes.
	Scope string `json:"scope"`
	// Users and Groups are OpenLDAP's syncprov cookies.
	Users  string `json:"users,omitempty"`
	Groups string `json:"groups,omitempty"`
	// DC, USN and At are Active Directory's high-water mark: the domain
	// controller, its highestCommittedUSN when the read began, and when.
	DC  string `json:"dc,omitempty"`
	USN int64  `json:"usn,omitempty"`
	At  int64  `json:"at,omitempty"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// scope digests what a cursor covers.
func (r *dirReader) scope() string {
	cfg := r.s.cfg
	// The attributes read are part of it: an entry that did not change
	// since would never bring an attribute asked for later.
	h := sha256.Sum256([]byte(strings.Join([]string{string(r.s.flavor), strings.ToLower(cfg.BaseDN),
		cfg.UserFilter(r.s.flavor), cfg.GroupFilter(r.s.flavor), cfg.DisabledFilter,
		strings.Join(r.dec.UserAttributes(), ",")}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// mark returns the cursor of the directory as it is now, taken before a
// full read so that what changes during the read is read again next time.
func (r *dirReader) mark(ctx context.Context) (cursor, error) {
	c := cursor{V: cursorVersion, Flavor: r.s.flavor, Scope: r.scope()}
	if r.s.flavor == FlavorActiveDirectory {
		usn, dc, err := r.usnMark()
		c.DC, c.USN, c.At = dc, usn, time.Now().Unix()
		return c, err
	}
	// A search that matches nothing: syncprov still answers with its
	// cookie, the directory's state now.
	ch, err := r.syncrepl(ctx, "(&(objectClass=*)(!(objectClass=*)))", []string{"1.1"}, "")
	if noSyncprov(err) {
		// Without syncprov there is no cookie: every sync reads all.
		return c, nil
	}
	c.Users, c.Groups = ch.cookie, ch.cookie
	return c, err
}

// noSyncprov reports a server that does not offer content
// synchronization (RFC 4533): slapd without the syncprov overlay refuses
// the critical sync request control.
func noSyncprov(err error) bool {
	var le *goldap.Error
	return errors.As(err, &le) && le.ResultCode == goldap.LDAPResultUnavailableCriticalExtension
}

// reasonNoSyncprov is the resync reason of a server without syncprov.
const reasonNoSyncprov = "the server offers no content synchronization (RFC 4533): add the syncprov overlay to its database (olcOverlay=syncprov with olcSpSessionlog) to read only changes"

// usnMark reads the DC's name and highest USN from the rootDSE read at
// bind.
func (r *dirReader) usnMark() (int64, string, error) {
	e := r.s.rootDSE
	if e == nil {
		return 0, "", errors.New("ldap: the domain controller's rootDSE was not read")
	}
	usn, err := strconv.ParseInt(e.GetEqualFoldAttributeValue(attrHighestUSN), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("ldap: the domain controller's rootDSE has no %s: %w", attrHighestUSN, err)
	}
	return usn, e.GetEqualFoldAttributeValue(attrDSServiceName), nil
}

// changes is what an incremental read found, before it is sent.
type changes struct {
	users, groups               []*goldap.Entry
	deletedUsers, deletedGroups []string
	next                        cursor
}

// incremental reads the changes since raw and sends them. It returns a
// resync reason, having sent nothing, when the cursor cannot be used: the
// caller then reads everything.
func (r *dirReader) incremental(ctx context.Context, raw string) (string, cursor, error) {
	var from cursor
	if err := json.Unmarshal([]byte(raw), &from); err != nil || from.V != cursorVersion {
		return "the cursor is not one this connector version wrote", cursor{}, nil
	}
	switch {
	case from.Flavor != r.s.flavor:
		return fmt.Sprintf("the cursor is of a %s directory; this one is %s", from.Flavor, r.s.flavor), cursor{}, nil
	case from.Scope != r.scope():
		return "base_dn, the filters or the flavor changed since the last sync", cursor{}, nil
	}
	var ch *changes
	var reason string
	var err error
	if r.s.flavor == FlavorActiveDirectory {
		ch, reason, err = r.usnChanges(ctx, from)
	} else {
		ch, reason, err = r.syncreplChanges(ctx, from)
	}
	if err != nil || reason != "" {
		return reason, cursor{}, err
	}
	return "", ch.next, r.sendChanges(ctx, ch)
}

// syncreplChanges reads OpenLDAP's changes with the cursor's cookies.
func (r *dirReader) syncreplChanges(ctx context.Context, from cursor) (*changes, string, error) {
	if from.Users == "" || from.Groups == "" {
		return nil, reasonNoSyncprov, nil
	}
	ch := &changes{next: from}
	r.phase = "reading changed users"
	u, err := r.syncrepl(ctx, r.s.cfg.UserFilter(r.s.flavor), r.dec.UserAttributes(), from.Users)
	if err != nil {
		return nil, "", err
	}
	if u.present {
		return nil, "slapd no longer holds the changes since the last sync (it restarted, or its session log is shorter than the changes)", nil
	}
	r.phase = "reading changed groups"
	g, err := r.syncrepl(ctx, r.s.cfg.GroupFilter(r.s.flavor), r.dec.GroupAttributes(), from.Groups)
	if err != nil {
		return nil, "", err
	}
	if g.present {
		return nil, "slapd no longer holds the changes since the last sync (it restarted, or its session log is shorter than the changes)", nil
	}
	ch.users, ch.deletedUsers, ch.groups, ch.deletedGroups = u.entries, u.deleted, g.entries, g.deleted
	if u.cookie != "" {
		ch.next.Users = u.cookie
	}
	if g.cookie != "" {
		ch.next.Groups = g.cookie
	}
	return ch, "", nil
}

// syncreplResult is one refreshOnly search's answer.
type syncreplResult struct {
	entries []*goldap.Entry
	deleted []string
	cookie  string // "" when the server sent none (nothing changed)
	present bool   // the server used the present phase
}

// syncrepl runs one RFC 4533 refreshOnly search under base_dn.
func (r *dirReader) syncrepl(ctx context.Context, filter string, attrs []string, cookie string) (syncreplResult, error) {
	var out syncreplResult
	req := goldap.NewSearchRequest(r.s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, int(r.s.cfg.Timeout/time.Second), false,
		filter, attrs, nil)
	var ck []byte
	if cookie != "" {
		ck = []byte(cookie)
	}
	resp := r.s.conn.Syncrepl(ctx, req, 64, goldap.SyncRequestModeRefreshOnly, ck, false)
	r.s.requests++
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			state, _ := goldap.FindControl(resp.Controls(), goldap.ControlTypeSyncState).(*goldap.ControlSyncState)
			switch {
			case state == nil:
				out.entries = append(out.entries, e)
			case state.State == goldap.SyncStateDelete:
				out.deleted = append(out.deleted, state.EntryUUID.String())
			case state.State == goldap.SyncStatePresent:
				out.present = true
			default:
				out.entries = append(out.entries, e)
			}
			continue
		}
		for _, c := range resp.Controls() {
			switch c := c.(type) {
			case *goldap.ControlSyncInfo:
				if set := c.SyncIdSet; set != nil {
					if !set.RefreshDeletes {
						out.present = true
					}
					for _, id := range set.SyncUUIDs {
						out.deleted = append(out.deleted, id.String())
					}
				}
				if c.RefreshPresent != nil {
					out.present = true
				}
			case *goldap.ControlSyncDone:
				if len(c.Cookie) > 0 {
					out.cookie = string(c.Cookie)
				}
				if cookie != "" && !c.RefreshDeletes {
					out.present = true
				}
			}
		}
	}
	if err := resp.Err(); err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, Classify(StageUsers, err, r.s.cfg, r.s.password)
	}
	return out, nil
}

// usnChanges reads Active Directory's changes since the cursor's USN.
func (r *dirReader) usnChanges(ctx context.Context, from cursor) (*changes, string, error) {
	usn, dc, err := r.usnMark()
	if err != nil {
		return nil, "", err
	}
	switch {
	case dc != from.DC:
		return nil, fmt.Sprintf("the last sync read another domain controller (%s), and USNs are each DC's own", from.DC), nil
	case usn < from.USN:
		return nil, fmt.Sprintf("the domain controller's highest USN (%d) is below the last sync's (%d): was it restored from a backup?", usn, from.USN), nil
	case time.Since(time.Unix(from.At, 0)) > maxCursorAge:
		return nil, fmt.Sprintf("the last sync is older than %d days, and deletions older than the tombstone lifetime are gone", int(maxCursorAge.Hours()/24)), nil
	}
	ch := &changes{next: from}
	ch.next.USN, ch.next.At = usn, time.Now().Unix()
	since := fmt.Sprintf("(uSNChanged>=%d)", from.USN+1)
	r.phase = "reading changed users"
	err = r.s.searchPages(ctx, StageUsers, "(&"+r.s.cfg.UserFilter(r.s.flavor)+since+")", r.dec.UserAttributes(), func(e *goldap.Entry) error {
		ch.users = append(ch.users, e)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	r.phase = "reading changed groups"
	err = r.s.searchPages(ctx, StageGroups, "(&"+r.s.cfg.GroupFilter(r.s.flavor)+since+")", r.dec.GroupAttributes(), func(e *goldap.Entry) error {
		ch.groups = append(ch.groups, e)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	r.phase = "reading deleted objects"
	switch ok, err := r.s.readsDeleted(); {
	case err != nil:
		return nil, "", err
	case !ok:
		return nil, deletedObjectsHidden(r.s.cfg), nil
	}
	tombs, err := r.s.search(StageUsers, r.s.deletedObjects(), goldap.ScopeWholeSubtree,
		"(&(isDeleted=TRUE)"+since+"(|(objectClass=user)(objectClass=group)))", []string{r.dec.Attrs.ID, "objectClass", attrIsDeleted},
		[]goldap.Control{goldap.NewControlMicrosoftShowDeleted()})
	if err != nil {
		return nil, "", err
	}
	for _, e := range tombs {
		id, ok := r.dec.id(e)
		if !ok {
			continue
		}
		if hasValue(e, "objectClass", "group") {
			ch.deletedGroups = append(ch.deletedGroups, id)
		} else {
			ch.deletedUsers = append(ch.deletedUsers, id)
		}
	}
	return ch, "", nil
}

// deletedObjects is the DN of the domain's Deleted Objects container.
func (s *session) deletedObjects() string {
	return "CN=Deleted Objects," + s.rootDSE.GetEqualFoldAttributeValue("defaultNamingContext")
}

// readsDeleted reports whether the account may read the Deleted Objects
// container. Only accounts granted it may (Domain Admins by default); to
// any other it looks empty, and deletions would go unseen.
func (s *session) readsDeleted() (bool, error) {
	box, err := s.search(StageUsers, s.deletedObjects(), goldap.ScopeBaseObject, "(objectClass=*)", []string{"objectClass"},
		[]goldap.Control{goldap.NewControlMicrosoftShowDeleted()})
	if err != nil {
		return false, err
	}
	return len(box) > 0 && len(box[0].GetAttributeValues("objectClass")) > 0, nil
}

// deletedObjectsHidden is the resync reason of an account that may not
// read the Deleted Objects container.
func deletedObjectsHidden(cfg *Config) string {
	return fmt.Sprintf("%s may not read the Deleted Objects container, so deletions cannot be read as changes: every sync reads the whole directory "+
		"until it may (dsacls \"CN=Deleted Objects,<domain DN>\" /takeownership, then /G \"<account>:LCRP\")", cfg.BindDN)
}

func hasValue(e *goldap.Entry, attr, v string) bool {
	for _, x := range e.GetEqualFoldAttributeValues(attr) {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// sendChanges sends the changed users and groups, the removed ones, and
// the whole expanded member lists of the changed groups and of every
// group they are nested in.
func (r *dirReader) sendChanges(ctx context.Context, ch *changes) error {
	disabled, err := r.disabledAmong(ctx, ch.users)
	if err != nil {
		return err
	}
	var managers []managerRef
	for _, e := range ch.users {
		var opts EntryOptions
		if disabled != nil {
			d := disabled[normalOrRaw(e.DN)]
			opts.Disabled = &d
		}
		u, ok := r.dec.User(e, opts, &r.tally)
		if !ok {
			continue
		}
		if ref, ok := takeManager(u); ok {
			managers = append(managers, ref)
		}
		r.users++
		if err := r.out.user(u); err != nil {
			return err
		}
	}
	if err := r.resolveManagers(ctx, managers, nil); err != nil {
		return err
	}
	for _, id := range ch.deletedUsers {
		r.users++
		if err := r.out.user(&connectorv1.User{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}); err != nil {
			return err
		}
	}
	g := newGraph(r)
	for _, e := range ch.groups {
		grp, ok := r.dec.Group(e, EntryOptions{}, &r.tally)
		if !ok {
			continue
		}
		n, err := g.add(ctx, e, grp.GetKind(), true)
		if err != nil {
			return err
		}
		if !n.keep {
			// A group no longer of a kind the sync reads (its groupType
			// changed): gone from this connector's view, as a full read
			// would leave it out.
			grp = &connectorv1.Group{Id: grp.GetId(), Removed: &connectorv1.Removal{Reason: "changed"}}
		}
		r.groups++
		if err := r.out.group(grp); err != nil {
			return err
		}
	}
	for _, id := range ch.deletedGroups {
		r.groups++
		if err := r.out.group(&connectorv1.Group{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}); err != nil {
			return err
		}
	}
	if len(g.nodes) == 0 {
		return nil
	}
	r.phase = "expanding nested groups"
	if err := g.ancestors(ctx); err != nil {
		return err
	}
	if err := g.resolve(ctx); err != nil {
		return err
	}
	for _, key := range g.order {
		n := g.nodes[key]
		if !n.keep {
			continue
		}
		ids := expand(key, g.nodes, g.users, &r.skipped)
		r.member += int64(len(ids))
		if err := r.out.replaceMembers(n.id, ids); err != nil {
			return err
		}
	}
	return nil
}

// disabledAmong is disabledSet for the changed users only.
func (r *dirReader) disabledAmong(ctx context.Context, users []*goldap.Entry) (map[string]bool, error) {
	if r.s.flavor != FlavorOpenLDAP || r.dec.DisabledAttr != "" || len(users) == 0 {
		return nil, nil
	}
	out := map[string]bool{}
	dns := make([]string, 0, len(users))
	for _, e := range users {
		dns = append(dns, e.DN)
	}
	err := r.byDN(ctx, StageDisabled, "(&"+r.s.cfg.UserFilter(r.s.flavor)+r.s.cfg.DisabledFilter+")", dns, []string{"1.1"}, func(e *goldap.Entry) error {
		out[normalOrRaw(e.DN)] = true
		return nil
	})
	return out, err
}

// dnFilterBatch bounds the DNs one search names.
const dnFilterBatch = 100

// byDN searches for the entries of dns that match filter, a hundred DNs a
// search.
func (r *dirReader) byDN(ctx context.Context, st Stage, filter string, dns []string, attrs []string, each func(*goldap.Entry) error) error {
	attr := "entryDN"
	if r.s.flavor == FlavorActiveDirectory {
		attr = "distinguishedName"
	}
	for len(dns) > 0 {
		n := min(len(dns), dnFilterBatch)
		var b strings.Builder
		b.WriteString("(&" + filter + "(|")
		for _, dn := range dns[:n] {
			b.WriteString("(" + attr + "=" + goldap.EscapeFilter(dn) + ")")
		}
		b.WriteString("))")
		dns = dns[n:]
		if err := r.s.searchPages(ctx, st, b.String(), attrs, each); err != nil {
			return err
		}
	}
	return nil
}

// graph is the part of the group nesting an incremental read needs: the
// changed groups, the groups they are nested in, and what their members
// are, learnt by searching the member DNs.
type graph struct {
	r     *dirReader
	nodes map[string]*node  // groups by DN key
	order []string          // the affected groups' keys: the changed groups and their ancestors
	users map[string]string // user DN key -> ID
	other map[string]bool   // DN keys that are neither
}

func newGraph(r *dirReader) *graph {
	return &graph{r: r, nodes: map[string]*node{}, users: map[string]string{}, other: map[string]bool{}}
}

// add records a group entry and returns its node; affected marks a group
// whose expanded members may have changed (a changed group, or one it is
// nested in), whose member list is sent.
func (g *graph) add(ctx context.Context, e *goldap.Entry, kind string, affected bool) (*node, error) {
	key := normalOrRaw(e.DN)
	if n, ok := g.nodes[key]; ok {
		return n, nil
	}
	dns, err := g.r.allMembers(ctx, e)
	if err != nil {
		return nil, err
	}
	n := &node{id: "", keep: g.r.kinds[kind]}
	if id, ok := g.r.dec.id(e); ok {
		n.id = id
	}
	for _, dn := range dns {
		k, err := NormalizeDN(dn)
		if err != nil {
			g.r.tally.Reject(RejectMemberDNInvalid)
			continue
		}
		n.members = append(n.members, k)
	}
	g.nodes[key] = n
	if affected {
		g.order = append(g.order, key)
	}
	return n, nil
}

// ancestors adds every group the recorded groups are nested in, level by
// level.
func (g *graph) ancestors(ctx context.Context) error {
	frontier := append([]string(nil), g.order...)
	for len(frontier) > 0 {
		var next []string
		for len(frontier) > 0 {
			n := min(len(frontier), dnFilterBatch)
			var b strings.Builder
			b.WriteString("(&" + g.r.s.cfg.GroupFilter(g.r.s.flavor) + "(|")
			for _, dn := range frontier[:n] {
				for _, a := range g.r.dec.Attrs.Members {
					b.WriteString("(" + a + "=" + goldap.EscapeFilter(dn) + ")")
				}
			}
			b.WriteString("))")
			frontier = frontier[n:]
			err := g.r.s.searchPages(ctx, StageGroups, b.String(), g.r.dec.GroupAttributes(), func(e *goldap.Entry) error {
				if _, ok := g.nodes[normalOrRaw(e.DN)]; ok {
					return nil
				}
				grp, ok := g.r.dec.Group(e, EntryOptions{}, nil)
				if !ok {
					return nil
				}
				if _, err := g.add(ctx, e, grp.GetKind(), true); err != nil {
					return err
				}
				next = append(next, normalOrRaw(e.DN))
				return nil
			})
			if err != nil {
				return err
			}
		}
		frontier = next
	}
	return nil
}

// resolve learns what every member DN reachable from the recorded groups
// is: a user (with its ID), a group (with its members, resolved in turn),
// or neither.
func (g *graph) resolve(ctx context.Context) error {
	for {
		var unknown []string
		seen := map[string]bool{}
		for _, n := range g.nodes {
			for _, m := range n.members {
				if _, ok := g.nodes[m]; ok || seen[m] || g.other[m] {
					continue
				}
				if _, ok := g.users[m]; ok {
					continue
				}
				seen[m] = true
				unknown = append(unknown, m)
			}
		}
		if len(unknown) == 0 {
			return nil
		}
		cfg, f := g.r.s.cfg, g.r.s.flavor
		err := g.r.byDN(ctx, StageMembers, cfg.UserFilter(f), unknown, []string{g.r.dec.Attrs.ID}, func(e *goldap.Entry) error {
			if id, ok := g.r.dec.id(e); ok {
				g.users[normalOrRaw(e.DN)] = id
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = g.r.byDN(ctx, StageMembers, cfg.GroupFilter(f), unknown, g.r.dec.GroupAttributes(), func(e *goldap.Entry) error {
			grp, ok := g.r.dec.Group(e, EntryOptions{}, nil)
			if !ok {
				return nil
			}
			// A nested group of another kind still passes its members on.
			_, err := g.add(ctx, e, grp.GetKind(), false)
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range unknown {
			_, isUser := g.users[m]
			_, isGroup := g.nodes[m]
			if !isUser && !isGroup {
				g.other[m] = true
			}
		}
	}
}
