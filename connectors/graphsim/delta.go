package graphsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Delta queries: GET /v1.0/users/delta and /v1.0/groups/delta.
//
// The initial round (no token) lists every object, in ID order, paged
// with $skiptoken links that carry the version of the tenant when the
// round started; its last page has an @odata.deltaLink holding that
// version. A later round ($deltatoken) lists the net changes recorded in
// the change log since the token's version. Tokens are opaque, HMAC
// protected, and carry the selection and page size, so links are followed
// verbatim.

// ExpiryMode is how graphsim refuses an expired delta token.
type ExpiryMode string

// The ways an expired delta token is refused.
const (
	// ExpiryBadRequest answers 400 with Graph's error code
	// syncStateNotFound.
	ExpiryBadRequest ExpiryMode = "bad-request"
	// ExpiryGone answers 410 Gone with the error code resyncRequired and a
	// Location header holding a fresh initial delta URL.
	ExpiryGone ExpiryMode = "gone"
	// ExpiryGoneEmpty answers 410 Gone with an empty body.
	ExpiryGoneEmpty ExpiryMode = "gone-empty"
)

// ParseExpiryMode reads an ExpiryMode: "bad-request" (or "400"), "gone"
// (or "410"), "gone-empty".
func ParseExpiryMode(s string) (ExpiryMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bad-request", "badrequest", "400", "syncstatenotfound":
		return ExpiryBadRequest, nil
	case "gone", "410", "resyncrequired":
		return ExpiryGone, nil
	case "gone-empty", "goneempty", "410-empty", "empty":
		return ExpiryGoneEmpty, nil
	}
	return "", fmt.Errorf("graphsim: unknown delta token expiry mode %q (want bad-request, gone or gone-empty)", s)
}

// ExpireDeltaTokens invalidates every delta and skip token of the delta
// endpoints issued so far (and clears the change log): the next request
// with one is refused as mode says, and the client must start a new
// initial round. An unknown mode counts as ExpiryGone. With
// Config.StateFile, see ExpireDeltaTokensSaved.
func (s *Sim) ExpireDeltaTokens(mode ExpiryMode) { _ = s.ExpireDeltaTokensSaved(mode) }

// ExpireDeltaTokensSaved is ExpireDeltaTokens, and says when the expiry
// could not be written to Config.StateFile: the tokens are expired in
// this process, but a restart would accept them again.
func (s *Sim) ExpireDeltaTokensSaved(mode ExpiryMode) error {
	if m, err := ParseExpiryMode(string(mode)); err == nil {
		mode = m
	} else {
		mode = ExpiryGone
	}
	s.mutateMu.Lock()
	defer s.mutateMu.Unlock()
	cur := s.cur.Load()
	next := *cur
	next.epoch = cur.epoch + 1
	next.log = nil
	s.expireMode.Store(&mode)
	s.cur.Store(&next)
	s.netCache.clear()
	return saveFailed(s.saveState(&next))
}

// SetDeltaTokenTTL changes Config.DeltaTokenTTL: delta tokens older than
// d (counted from when they were issued) are refused as
// Config.DeltaTokenExpiry says; 0 means they never expire.
func (s *Sim) SetDeltaTokenTTL(d time.Duration) { s.deltaTTL.Store(int64(max(d, 0))) }

// DeltaTokenTTL returns the delta token lifetime in force.
func (s *Sim) DeltaTokenTTL() time.Duration { return time.Duration(s.deltaTTL.Load()) }

// Version is the number of the tenant's last recorded change (0 before
// any); each change call (AddUser, Churn, Mutate, ...) adds one.
func (s *Sim) Version() uint64 { return s.cur.Load().ver }

// Token kinds.
const (
	tkInitial byte = 1 + iota // $skiptoken of an initial round
	tkRound                   // $skiptoken of a later round
	tkDelta                   // $deltatoken
)

// membersProp marks "members" in a token's property list, managerProp
// "manager" (users).
const (
	membersProp = 255
	managerProp = 254
)

// deltaToken is the state a $skiptoken or $deltatoken carries.
type deltaToken struct {
	kind     byte
	coll     objKind
	explicit bool   // $select was given
	epoch    uint64 // ExpireDeltaTokens generation
	issued   int64  // unix seconds (tkDelta)
	from     uint64 // tkRound, tkDelta: the version changes are counted from
	to       uint64 // tkInitial: version at the start; tkRound: version the round reads up to
	pos      uint64 // tkRound: index in the net change list
	memOff   uint64 // tkRound: members@delta entries of the current group's net changes already sent
	pageSize uint64
	resume   string // tkInitial: lowercase ID of the next object
	memAfter string // lowercase ID of the last member sent of a group split across pages (members in ID order)
	props    []byte // selected property indexes in $select order; membersProp for members
}

const deltaTokenMACLen = 16

func (s *Sim) encodeDeltaToken(t *deltaToken) string {
	flags := byte(t.coll)
	if t.explicit {
		flags |= 2
	}
	b := []byte{2, t.kind, flags}
	for _, v := range []uint64{t.epoch, uint64(t.issued), t.from, t.to, t.pos, t.memOff, t.pageSize} {
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(t.resume)))
	b = append(b, t.resume...)
	b = binary.AppendUvarint(b, uint64(len(t.memAfter)))
	b = append(b, t.memAfter...)
	b = binary.AppendUvarint(b, uint64(len(t.props)))
	b = append(b, t.props...)
	mac := hmac.New(sha256.New, s.pageKey)
	mac.Write([]byte("delta\x00"))
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(b)[:len(b)+deltaTokenMACLen])
}

func (s *Sim) decodeDeltaToken(tok string) (*deltaToken, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil || len(raw) < 3+deltaTokenMACLen || raw[0] != 2 {
		return nil, false
	}
	b, sum := raw[:len(raw)-deltaTokenMACLen], raw[len(raw)-deltaTokenMACLen:]
	mac := hmac.New(sha256.New, s.pageKey)
	mac.Write([]byte("delta\x00"))
	mac.Write(b)
	if !hmac.Equal(sum, mac.Sum(nil)[:deltaTokenMACLen]) {
		return nil, false
	}
	t := &deltaToken{kind: b[1], coll: objKind(b[2] & 1), explicit: b[2]&2 != 0}
	rest := b[3:]
	next := func() uint64 {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			rest = nil
			return 0
		}
		rest = rest[n:]
		return v
	}
	t.epoch = next()
	t.issued = int64(next())
	t.from, t.to, t.pos, t.memOff, t.pageSize = next(), next(), next(), next(), next()
	bytesOf := func() []byte {
		n := next()
		if rest == nil || n > uint64(len(rest)) {
			rest = nil
			return nil
		}
		v := rest[:n]
		rest = rest[n:]
		return v
	}
	t.resume = string(bytesOf())
	t.memAfter = string(bytesOf())
	t.props = slices.Clone(bytesOf())
	if rest == nil || len(rest) != 0 || t.kind < tkInitial || t.kind > tkDelta || t.pageSize < 1 || t.pageSize > maxPageSize {
		return nil, false
	}
	return t, true
}

// deltaSel is the selection of a delta request.
type deltaSel struct {
	sel      *selection
	names    []string // for @odata.context and Location; nil without $select
	members  bool     // groups: members@delta
	manager  bool     // users: manager@delta
	explicit bool
	props    []byte
}

// defaultDeltaSel is the selection without $select: Graph's default user
// properties, or every group property and the members.
func defaultDeltaSel(coll objKind) *deltaSel {
	ds := &deltaSel{sel: defaultSelection()}
	if coll == objGroup {
		ds.members = true
	}
	return ds
}

// parseDeltaSelect resolves $select for a delta collection; msg is the
// error.
func parseDeltaSelect(v string, coll objKind) (*deltaSel, string) {
	var rest []string
	members, manager := false, false
	for _, raw := range strings.Split(v, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		if coll == objGroup && strings.EqualFold(name, "members") {
			members = true
			continue
		}
		if coll == objUser && strings.EqualFold(name, "manager") {
			manager = true
			continue
		}
		rest = append(rest, name)
	}
	ep := epUsers
	if coll == objGroup {
		ep = epGroups
	}
	ds := &deltaSel{members: members, manager: manager, explicit: true}
	if len(rest) == 0 {
		if !members && !manager {
			return defaultDeltaSel(coll), ""
		}
		ds.sel = &selection{names: []string{}}
	} else {
		sel, msg := parseSelect(strings.Join(rest, ","), ep)
		if msg != "" {
			return nil, msg
		}
		ds.sel = sel
	}
	// Names and property indexes in $select order.
	seen := map[string]bool{}
	for _, raw := range strings.Split(v, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		idx := -1
		canonical := ""
		switch {
		case coll == objGroup && strings.EqualFold(name, "members"):
			idx, canonical = membersProp, "members"
		case coll == objUser && strings.EqualFold(name, "manager"):
			idx, canonical = managerProp, "manager"
		case coll == objUser:
			idx = indexOfUserProp(name)
			canonical = userProps[idx].name
		default:
			idx = indexOfGroupProp(name)
			canonical = groupProps[idx].name
		}
		if seen[canonical] {
			continue
		}
		seen[canonical] = true
		ds.names = append(ds.names, canonical)
		ds.props = append(ds.props, byte(idx))
	}
	return ds, ""
}

// selFromToken rebuilds the selection a token carries.
func selFromToken(t *deltaToken) (*deltaSel, bool) {
	if !t.explicit {
		return defaultDeltaSel(t.coll), true
	}
	ds := &deltaSel{sel: &selection{names: []string{}}, explicit: true, props: t.props}
	for _, p := range t.props {
		switch {
		case p == managerProp && t.coll == objUser:
			ds.manager = true
			ds.names = append(ds.names, "manager")
		case p == membersProp && t.coll == objGroup:
			ds.members = true
			ds.names = append(ds.names, "members")
		case t.coll == objUser && int(p) < len(userProps):
			ds.names = append(ds.names, userProps[p].name)
			ds.sel.names = append(ds.sel.names, userProps[p].name)
			if p != 0 {
				ds.sel.user = append(ds.sel.user, int(p))
			}
		case t.coll == objGroup && int(p) < len(groupProps):
			ds.names = append(ds.names, groupProps[p].name)
			ds.sel.names = append(ds.sel.names, groupProps[p].name)
			if p != 0 {
				ds.sel.group = append(ds.sel.group, int(p))
			}
		default:
			return nil, false
		}
	}
	return ds, true
}

// collName is the entity set of a collection.
func collName(c objKind) string {
	if c == objGroup {
		return "groups"
	}
	return "users"
}

// preferPageSize reads odata.maxpagesize from the Prefer headers; 0 means
// none.
func preferPageSize(r *http.Request) int {
	for _, h := range r.Header.Values("Prefer") {
		for _, pref := range strings.Split(h, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "odata.maxpagesize") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"`))
			if err != nil || n < 1 {
				continue
			}
			return min(n, maxPageSize)
		}
	}
	return 0
}

// delta answers GET /v1.0/users/delta and /v1.0/groups/delta.
func (g *graphReq) delta(coll objKind) {
	vals, err := url.ParseQuery(g.r.URL.RawQuery)
	if err != nil {
		g.badRequest("The query specified in the URI is not valid. " + err.Error())
		return
	}
	opts := map[string]string{}
	for k, vs := range vals {
		lk := strings.ToLower(strings.TrimSpace(k))
		if !strings.HasPrefix(lk, "$") {
			continue
		}
		if _, dup := opts[lk]; dup || len(vs) > 1 {
			g.badRequest(fmt.Sprintf("Query option '%s' was specified more than once, but it must be specified at most once.", k))
			return
		}
		opts[lk] = vs[0]
	}
	for _, name := range sortedKeys(opts) {
		switch name {
		case "$select", "$top", "$skiptoken", "$deltatoken":
		case "$filter", "$orderby", "$search", "$expand", "$count", "$skip", "$format", "$apply":
			g.fail(http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("Unsupported query option '%s' on a delta query. graphsim's delta supports $select, $top, $skiptoken and $deltatoken.", name))
			return
		default:
			g.badRequest(fmt.Sprintf("The query parameter '%s' is not supported.", name))
			return
		}
	}
	skip, hasSkip := opts["$skiptoken"]
	dtok, hasDelta := opts["$deltatoken"]
	if hasSkip && hasDelta {
		g.badRequest("Query options '$skiptoken' and '$deltatoken' cannot be used together.")
		return
	}
	pageSize := preferPageSize(g.r)
	if pageSize > 0 {
		g.w.Header().Set("Preference-Applied", "odata.maxpagesize="+strconv.Itoa(pageSize))
	} else if v, ok := opts["$top"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > maxPageSize {
			g.badRequest(fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxPageSize))
			return
		}
		pageSize = n
	}

	// A token: check it and continue its round.
	if (hasSkip || hasDelta) && !(hasDelta && strings.EqualFold(strings.TrimSpace(dtok), "latest")) {
		raw, want := skip, []byte{tkInitial, tkRound}
		if hasDelta {
			raw, want = dtok, []byte{tkDelta}
		}
		t, ok := g.s.decodeDeltaToken(raw)
		if !ok || t.coll != coll || !slices.Contains(want, t.kind) {
			g.fail(http.StatusBadRequest, "syncStateInvalid", "The sync state is not valid: the token was not issued for this request.")
			return
		}
		ds, ok := selFromToken(t)
		if !ok {
			g.fail(http.StatusBadRequest, "syncStateInvalid", "The sync state is not valid.")
			return
		}
		if t.epoch != g.snap.epoch || t.from > g.snap.ver || t.to > g.snap.ver {
			g.expired(coll, ds, *g.s.expireMode.Load())
			return
		}
		if ttl := g.s.DeltaTokenTTL(); t.kind == tkDelta && ttl > 0 && g.now.Sub(time.Unix(t.issued, 0)) > ttl {
			g.expired(coll, ds, g.s.cfg.DeltaTokenExpiry)
			return
		}
		if pageSize == 0 {
			pageSize = int(t.pageSize)
		}
		t.pageSize = uint64(pageSize)
		switch t.kind {
		case tkInitial:
			g.initialPage(coll, ds, t)
		case tkRound:
			g.roundPage(coll, ds, t)
		default:
			g.roundPage(coll, ds, &deltaToken{kind: tkRound, coll: coll, explicit: t.explicit, epoch: t.epoch,
				from: t.from, to: g.snap.ver, pageSize: t.pageSize, props: t.props})
		}
		return
	}

	ds := defaultDeltaSel(coll)
	if v, ok := opts["$select"]; ok {
		var msg string
		if ds, msg = parseDeltaSelect(v, coll); msg != "" {
			g.badRequest(msg)
			return
		}
	}
	if pageSize == 0 {
		pageSize = defaultPageSize
	}
	t := &deltaToken{coll: coll, explicit: ds.explicit, epoch: g.snap.epoch, pageSize: uint64(pageSize), props: ds.props}
	if hasDelta { // $deltatoken=latest: no objects, a deltaLink from now
		t.kind, t.from, t.to = tkRound, g.snap.ver, g.snap.ver
		g.roundPage(coll, ds, t)
		return
	}
	t.kind, t.to = tkInitial, g.snap.ver
	g.initialPage(coll, ds, t)
}

// expired refuses an expired token as mode says.
func (g *graphReq) expired(coll objKind, ds *deltaSel, mode ExpiryMode) {
	switch mode {
	case ExpiryBadRequest:
		g.fail(http.StatusBadRequest, "syncStateNotFound", "The sync state generation is not found; the delta token is expired and data must be synchronized again.")
	case ExpiryGoneEmpty:
		crid := g.r.Header.Get("client-request-id")
		if crid == "" {
			crid = g.rid
		}
		h := g.w.Header()
		h.Set("request-id", g.rid)
		h.Set("client-request-id", crid)
		h.Set("Content-Length", "0")
		h.Set("Cache-Control", "no-cache")
		g.w.WriteHeader(http.StatusGone)
	default:
		loc := g.host + "/v1.0/" + collName(coll) + "/delta"
		if ds.names != nil {
			loc += "?$select=" + strings.Join(ds.names, ",")
		}
		g.w.Header().Set("Location", loc)
		g.fail(http.StatusGone, "resyncRequired", "Resync required. The delta token is expired: replace any local items with the server's items, starting from the URL in the Location header.")
	}
}

// deltaPage assembles and sends one page of a delta response.
func (g *graphReq) deltaPage(coll objKind, ds *deltaSel, items []byte, next, deltaT *deltaToken) {
	ctx := g.host + "/v1.0/$metadata#" + collName(coll)
	if ds.names != nil {
		ctx += "(" + strings.Join(ds.names, ",") + ")"
	}
	b := make([]byte, 0, len(items)+len(ctx)+400)
	b = append(b, `{"@odata.context":`...)
	b = appendJSONString(b, ctx)
	link := g.host + "/v1.0/" + collName(coll) + "/delta?"
	if next != nil {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendJSONString(b, link+"$skiptoken="+g.s.encodeDeltaToken(next))
	} else {
		b = append(b, `,"@odata.deltaLink":`...)
		b = appendJSONString(b, link+"$deltatoken="+g.s.encodeDeltaToken(deltaT))
	}
	b = append(b, `,"value":[`...)
	b = append(b, items...)
	b = append(b, "]}"...)
	g.ok(b)
}

// finalToken is the $deltatoken of a round that read up to version ver.
func (g *graphReq) finalToken(t *deltaToken, ver uint64) *deltaToken {
	return &deltaToken{kind: tkDelta, coll: t.coll, explicit: t.explicit, epoch: t.epoch, issued: g.now.Unix(),
		from: ver, pageSize: t.pageSize, props: t.props}
}

// logIndex is the index of the first change after version ver.
func logIndex(log []change, ver uint64) int {
	return sort.Search(len(log), func(i int) bool { return log[i].ver > ver })
}

// pager fills one page: at most pageSize objects and membersPerPage
// members@delta entries.
type pager struct {
	g        *graphReq
	ds       *deltaSel
	items    []byte
	objects  int
	pageSize int
	budget   int // members@delta entries left on this page
	perPage  int
	o        jsonObj // the object being written
}

func (g *graphReq) newPager(ds *deltaSel, pageSize int) *pager {
	per := g.s.cfg.DeltaMembersPerPage
	return &pager{g: g, ds: ds, pageSize: pageSize, budget: per, perPage: per, items: make([]byte, 0, 256*pageSize)}
}

func (p *pager) full() bool { return p.objects >= p.pageSize || p.budget <= 0 }

func (p *pager) obj() *jsonObj {
	if p.objects > 0 {
		p.items = append(p.items, ',')
	}
	p.objects++
	p.o = jsonObj{b: p.items}
	return &p.o
}

func (p *pager) done(o *jsonObj) { p.items = o.b }

// memberSlice decides how many of n remaining members@delta entries go on
// this page: all of them, some (a large group starting the page: it is
// split), or none (take == 0, fits == false: the group goes to the next
// page).
func (p *pager) memberSlice(n int) (take int, fits bool) {
	if n <= p.budget {
		return n, true
	}
	if p.objects > 0 {
		return 0, false
	}
	return p.budget, true
}

// writeUserDelta writes a user with the selected properties in mask
// (all when full), id last.
//
// With $select=manager, manager@delta follows id: the manager as
// [{"@odata.type","id"}] (as in Microsoft's change-tracking pattern,
// github.com/microsoft/api-guidelines graph/patterns/change-tracking.md)
// when the object is new or its manager changed, and a manager removed
// since the token as that entry with "@removed":{"reason":"deleted"},
// the form members@delta removes a member in
// shared/graph-samples/graph_groups_delta_deltaLink_member_removed_and_added.json.
// prevManager is the manager at the token's version.
func (p *pager) writeUser(u *User, mask uint64, full bool, prevManager string) {
	u, raw := p.g.cf.user(u)
	o := p.obj()
	o.keepInvalid = raw
	o.begin()
	for _, i := range p.ds.sel.user {
		if full || mask&(1<<i) != 0 {
			userProps[i].write(o, u, p.g.s)
		}
	}
	o.str("id", u.ID)
	if p.ds.manager {
		switch {
		case u.ManagerID != "" && (full || mask&managerBit != 0):
			o.key("manager@delta")
			o.b = appendMemberRef(append(o.b, '['), Member{ID: u.ManagerID, ODataType: TypeUser}, false)
			o.b = append(o.b, ']')
		case !full && mask&managerBit != 0 && prevManager != "":
			o.key("manager@delta")
			o.b = appendMemberRef(append(o.b, '['), Member{ID: prevManager, ODataType: TypeUser}, true)
			o.b = append(o.b, ']')
		}
	}
	o.end()
	p.done(o)
}

// writeRemoved writes {"id":..., "@removed":{"reason":...}}.
func (p *pager) writeRemoved(id, reason string) {
	o := p.obj()
	o.begin()
	o.str("id", id)
	o.key("@removed")
	o.b = append(o.b, `{"reason":`...)
	o.b = appendJSONString(o.b, reason)
	o.b = append(o.b, '}')
	o.end()
	p.done(o)
}

// memberDelta is one entry of members@delta.
type memberDelta struct {
	m       Member
	removed bool
}

// writeGroup writes a group with the selected properties in mask (all
// when full) and, when members are selected, the given members@delta
// entries (nil writes none).
func (p *pager) writeGroup(grp *Group, mask uint64, full bool, members []memberDelta, plain []Member) {
	o := p.obj()
	o.begin()
	for _, i := range p.ds.sel.group {
		if full || mask&(1<<i) != 0 {
			groupProps[i].write(o, grp, p.g.s)
		}
	}
	o.str("id", grp.ID)
	noID := p.ds.members && p.g.cf.memberWithoutID(grp.ID)
	if p.ds.members && len(plain)+len(members) > 0 || noID {
		o.key("members@delta")
		o.b = append(o.b, '[')
		for j, m := range plain {
			if j > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendMemberRef(o.b, m, false)
		}
		for j, md := range members {
			if j > 0 || len(plain) > 0 {
				o.b = append(o.b, ',')
			}
			o.b = appendMemberRef(o.b, md.m, md.removed)
		}
		if noID {
			if len(plain)+len(members) > 0 {
				o.b = append(o.b, ',')
			}
			o.b = append(o.b, `{"@odata.type":`...)
			o.b = appendJSONString(o.b, TypeUser)
			o.b = append(o.b, '}')
		}
		o.b = append(o.b, ']')
		p.budget -= len(plain) + len(members)
	}
	o.end()
	p.done(o)
}

func appendMemberRef(b []byte, m Member, removed bool) []byte {
	b = append(b, `{"@odata.type":`...)
	b = appendJSONString(b, m.ODataType)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, m.ID)
	if removed {
		b = append(b, `,"@removed":{"reason":"deleted"}`...)
	}
	return append(b, '}')
}

// initialPage writes a page of an initial round: the objects from
// t.resume on, in ID order, as they were at the round's start (t.to) as
// far as existence and members go; their properties are the current ones
// (later changes are in the log and come again in the next round).
func (g *graphReq) initialPage(coll objKind, ds *deltaSel, t *deltaToken) {
	snap := g.snap
	tn := snap.tenant
	after := changesSince(snap.log, coll, t.to)
	order := snap.order().users
	idOf := func(i int32) string { return tn.Users[i].ID }
	if coll == objGroup {
		order = snap.order().groups
		idOf = func(i int32) string { return tn.Groups[i].ID }
	}
	pos := sort.Search(len(order), func(i int) bool { return strings.ToLower(idOf(order[i])) >= t.resume })
	memAfter := t.memAfter
	if pos >= len(order) || strings.ToLower(idOf(order[pos])) != t.resume {
		memAfter = "" // the group in progress is gone
	}
	p := g.newPager(ds, int(t.pageSize))
	advance := func() { pos, memAfter = pos+1, "" }
loop:
	for pos < len(order) && !p.full() {
		idx := order[pos]
		key := strings.ToLower(idOf(idx))
		switch {
		case after.born[key]: // created after the start: the next round tells
		case coll == objUser:
			p.writeUser(&tn.Users[idx], 0, true, "")
		case !ds.members:
			p.writeGroup(&tn.Groups[idx], 0, true, nil, nil)
		default:
			var done bool
			if memAfter, done = g.writeMembersAsOf(p, &tn.Groups[idx], after.members[key], memAfter); !done {
				break loop
			}
		}
		advance()
	}
	var next *deltaToken
	if pos < len(order) {
		next = &deltaToken{kind: tkInitial, coll: coll, explicit: t.explicit, epoch: t.epoch, to: t.to,
			pageSize: t.pageSize, resume: strings.ToLower(idOf(order[pos])), memAfter: memAfter, props: t.props}
	}
	g.deltaPage(coll, ds, p.items, next, g.finalToken(t, t.to))
}

// writeMembersAsOf writes a group with every member it had at a version
// (current members adjusted by the member changes since, mf), starting
// after member memAfter. done is false when the group did not fit this
// page: then memAfter says where the next page resumes ("" if the group
// was not started).
func (g *graphReq) writeMembersAsOf(p *pager, grp *Group, mf map[string]*memberHistory, memAfter string) (string, bool) {
	list := g.s.membersAsOf(grp, mf, memAfter != "" || len(grp.Members)+len(mf) > p.perPage)
	start := 0
	if memAfter != "" {
		start = sort.Search(list.len(), func(i int) bool { return strings.ToLower(list.at(i).ID) > memAfter })
	}
	rest := list.len() - start
	take, fits := p.memberSlice(rest)
	if !fits {
		return memAfter, false
	}
	slice := make([]Member, take)
	for i := range slice {
		slice[i] = list.at(start + i)
	}
	p.writeGroup(grp, 0, true, nil, slice)
	if take < rest {
		return strings.ToLower(slice[take-1].ID), false
	}
	return "", true
}

// history says what changed after a version: the objects created since
// (they did not exist then) and, for groups, each member's changes.
type history struct {
	born    map[string]bool                      // lowercase object IDs
	members map[string]map[string]*memberHistory // lowercase group ID -> lowercase member ID
}

// memberHistory is the first and last change of a member since a version:
// it was a member then unless first is opMemberAdd, and is one now unless
// last is opMemberRemove.
type memberHistory struct {
	first, last op
	m           Member
}

// changesSince summarises the changes of a collection after version ver.
func changesSince(log []change, coll objKind, ver uint64) *history {
	h := &history{born: map[string]bool{}, members: map[string]map[string]*memberHistory{}}
	seen := map[string]bool{}
	for _, c := range log[logIndex(log, ver):] {
		if c.kind != coll {
			continue
		}
		k := strings.ToLower(c.id)
		switch c.op {
		case opMemberAdd, opMemberRemove:
			mh := h.members[k]
			if mh == nil {
				mh = map[string]*memberHistory{}
				h.members[k] = mh
			}
			mk := strings.ToLower(c.member.ID)
			if e := mh[mk]; e != nil {
				e.last = c.op
			} else {
				mh[mk] = &memberHistory{first: c.op, last: c.op, m: c.member}
			}
		default:
			if !seen[k] {
				seen[k] = true
				if c.op == opAdd {
					h.born[k] = true
				}
			}
		}
	}
	return h
}

// memberList is a list of members, possibly through a permutation.
type memberList struct {
	ms   []Member
	perm []int32 // nil: ms in order
}

func (l memberList) len() int { return len(l.ms) }

func (l memberList) at(i int) Member {
	if l.perm != nil {
		return l.ms[l.perm[i]]
	}
	return l.ms[i]
}

// membersAsOf returns the members grp had at the version mf was made
// from; sorted orders them by lowercase ID (so that a group split across
// pages resumes at the right member whatever changed in between).
func (s *Sim) membersAsOf(grp *Group, mf map[string]*memberHistory, sorted bool) memberList {
	if len(mf) == 0 {
		if !sorted {
			return memberList{ms: grp.Members}
		}
		return memberList{ms: grp.Members, perm: s.sortCache.perm(grp.Members)}
	}
	out := make([]Member, 0, len(grp.Members)+len(mf))
	for _, m := range grp.Members {
		if h := mf[strings.ToLower(m.ID)]; h != nil && h.first == opMemberAdd {
			continue
		}
		out = append(out, m)
	}
	for _, k := range sortedKeys(mf) {
		if h := mf[k]; h.first == opMemberRemove && h.last == opMemberRemove {
			out = append(out, h.m)
		}
	}
	if sorted {
		slices.SortFunc(out, func(a, b Member) int { return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID)) })
	}
	return memberList{ms: out}
}

// sortCache keeps the ID order of large member lists. Member slices in
// snapshots never change, and a group's slice is shared by the snapshots
// until its members change, so the first element's address and the
// length identify a list.
type sortCache struct {
	mu sync.Mutex
	m  map[*Member]sortEntry
}

type sortEntry struct {
	n    int
	perm []int32
}

// perm returns the permutation that orders ms by lowercase ID.
func (c *sortCache) perm(ms []Member) []int32 {
	if len(ms) == 0 {
		return []int32{}
	}
	c.mu.Lock()
	if e, ok := c.m[&ms[0]]; ok && e.n == len(ms) {
		c.mu.Unlock()
		return e.perm
	}
	c.mu.Unlock()
	keys := make([]string, len(ms))
	perm := make([]int32, len(ms))
	for i := range ms {
		keys[i] = strings.ToLower(ms[i].ID)
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int { return strings.Compare(keys[a], keys[b]) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 64 {
		c.m = map[*Member]sortEntry{}
	}
	c.m[&ms[0]] = sortEntry{len(ms), perm}
	return perm
}

// netItem is the net change of one object over a span of versions.
type netItem struct {
	id          string
	first, last op     // first and last change to the object itself (0: none)
	mask        uint64 // properties updated
	full        bool   // created or restored in the span
	prevManager string // users: the manager before the first manager change in the span
	managerSeen bool   // a manager change was met
	members     []memberDelta
}

// netChanges computes the net changes of a collection over the versions
// (from, to], in the order the objects first changed.
func netChanges(log []change, coll objKind, from, to uint64) []netItem {
	lo, hi := logIndex(log, from), logIndex(log, to)
	var items []netItem
	byID := map[string]int{}
	type memberState struct {
		first, last op
		m           Member
	}
	var memberStates []map[string]*memberState
	var memberOrder [][]string
	for _, c := range log[lo:hi] {
		if c.kind != coll {
			continue
		}
		k := strings.ToLower(c.id)
		i, ok := byID[k]
		if !ok {
			i = len(items)
			byID[k] = i
			items = append(items, netItem{id: c.id})
			memberStates = append(memberStates, nil)
			memberOrder = append(memberOrder, nil)
		}
		it := &items[i]
		switch c.op {
		case opMemberAdd, opMemberRemove:
			if memberStates[i] == nil {
				memberStates[i] = map[string]*memberState{}
			}
			mk := strings.ToLower(c.member.ID)
			ms := memberStates[i][mk]
			if ms == nil {
				ms = &memberState{first: c.op}
				memberStates[i][mk] = ms
				memberOrder[i] = append(memberOrder[i], mk)
			}
			ms.last, ms.m = c.op, c.member
		default:
			if it.first == 0 {
				it.first = c.op
			}
			it.last = c.op
			switch c.op {
			case opAdd, opRestore:
				it.full = true
			case opUpdate:
				it.mask |= c.mask
				if c.mask&managerBit != 0 && !it.managerSeen {
					it.prevManager, it.managerSeen = c.member.ID, true
				}
			}
		}
	}
	for i := range items {
		for _, mk := range memberOrder[i] {
			ms := memberStates[i][mk]
			switch {
			case ms.first == opMemberAdd && ms.last == opMemberAdd:
				items[i].members = append(items[i].members, memberDelta{m: ms.m})
			case ms.first == opMemberRemove && ms.last == opMemberRemove:
				items[i].members = append(items[i].members, memberDelta{m: ms.m, removed: true})
			}
		}
	}
	return items
}

// roundPage writes a page of a later round: the net changes over
// (t.from, t.to] from position t.pos on.
func (g *graphReq) roundPage(coll objKind, ds *deltaSel, t *deltaToken) {
	snap := g.snap
	var items []netItem
	if t.to > t.from {
		items = g.s.netCache.get(snap, coll, t.from, t.to)
	}
	p := g.newPager(ds, int(t.pageSize))
	pos, memOff, memAfter := int(t.pos), int(t.memOff), t.memAfter
	var after *history // changes after t.to, for groups created in the span
	var next *deltaToken
	advance := func() { pos, memOff, memAfter = pos+1, 0, "" }
loop:
	for pos < len(items) && !p.full() {
		it := &items[pos]
		if coll == objUser {
			g.writeUserChange(p, it)
			advance()
			continue
		}
		grp := snap.group(it.id)
		if grp == nil {
			if it.first != opAdd {
				p.writeRemoved(it.id, "deleted")
			}
			advance()
			continue
		}
		full := it.full || it.first == opHardDelete
		mask := it.mask & groupSelMask(ds.sel)
		switch {
		case !ds.members:
			if full || mask != 0 {
				p.writeGroup(grp, mask, full, nil, nil)
			}
		case full: // created in the span: every member it had at t.to
			if after == nil {
				after = changesSince(snap.log, objGroup, t.to)
			}
			var done bool
			if memAfter, done = g.writeMembersAsOf(p, grp, after.members[strings.ToLower(grp.ID)], memAfter); !done {
				break loop
			}
		case mask != 0 || len(it.members) > 0:
			memOff = min(memOff, len(it.members))
			rest := len(it.members) - memOff
			take, fits := p.memberSlice(rest)
			if !fits {
				break loop
			}
			p.writeGroup(grp, mask, false, it.members[memOff:memOff+take], nil)
			if take < rest {
				memOff += take
				break loop
			}
		}
		advance()
	}
	if pos < len(items) {
		next = &deltaToken{kind: tkRound, coll: coll, explicit: t.explicit, epoch: t.epoch, from: t.from, to: t.to,
			pos: uint64(pos), memOff: uint64(memOff), memAfter: memAfter, pageSize: t.pageSize, props: t.props}
	}
	g.deltaPage(coll, ds, p.items, next, g.finalToken(t, t.to))
}

// groupSelMask is the mask of the selected group properties.
func groupSelMask(sel *selection) uint64 {
	var m uint64
	for _, i := range sel.group {
		m |= 1 << i
	}
	return m
}

// writeUserChange writes the net change of a user as it is now.
func (g *graphReq) writeUserChange(p *pager, it *netItem) {
	snap := g.snap
	u := snap.user(it.id)
	if u != nil && !strings.EqualFold(u.ID, it.id) {
		u = nil // it.id matched a UPN
	}
	if u == nil {
		if it.first == opAdd {
			return // created and deleted since the token: nothing to tell
		}
		reason := "deleted"
		if _, soft := snap.deleted[strings.ToLower(it.id)]; soft {
			reason = "changed"
		}
		p.writeRemoved(it.id, reason)
		return
	}
	full := it.full || it.first == opSoftDelete || it.first == opHardDelete
	var sel uint64
	for _, i := range p.ds.sel.user {
		sel |= 1 << i
	}
	if p.ds.manager {
		sel |= managerBit
	}
	if !full && it.mask&sel == 0 {
		return // nothing selected changed
	}
	p.writeUser(u, it.mask, full, it.prevManager)
}

// netCache keeps the last few net change lists, so that the pages of a
// large round do not each recompute them. Within an epoch the changes of
// a span of versions never change, so the span is the key.
type netCache struct {
	mu      sync.Mutex
	entries []netCacheEntry
}

type netCacheEntry struct {
	epoch    uint64
	coll     objKind
	from, to uint64
	items    []netItem
}

func (c *netCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}

// get returns the net changes of coll over (from, to] in snap's log.
func (c *netCache) get(snap *snapshot, coll objKind, from, to uint64) []netItem {
	c.mu.Lock()
	for _, e := range c.entries {
		if e.epoch == snap.epoch && e.coll == coll && e.from == from && e.to == to {
			c.mu.Unlock()
			return e.items
		}
	}
	c.mu.Unlock()
	items := netChanges(snap.log, coll, from, to)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, netCacheEntry{snap.epoch, coll, from, to, items})
	if len(c.entries) > 8 {
		c.entries = slices.Delete(c.entries, 0, 1)
	}
	return items
}
