package graphsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// graphContentType is the Content-Type Graph answers JSON with.
const graphContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

// Paging limits of Graph's directory collections.
const (
	defaultPageSize = 100
	maxPageSize     = 999
)

// clockSkew is the leeway Graph allows on token times.
const clockSkew = 5 * time.Minute

// Application permissions that allow each kind of read.
var (
	usersReadRoles   = []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	membersReadRoles = []string{"GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)

// writeGraphError answers with Graph's error shape. The request-id and
// client-request-id headers are set here too.
func writeGraphError(w http.ResponseWriter, r *http.Request, rid string, status int, code, msg string, now time.Time) {
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = rid
	}
	o := jsonObj{b: make([]byte, 0, 256)}
	o.b = append(o.b, `{"error":{"code":`...)
	o.b = appendJSONString(o.b, code)
	o.b = append(o.b, `,"message":`...)
	o.b = appendJSONString(o.b, msg)
	o.b = append(o.b, `,"innerError":{"date":`...)
	o.b = appendJSONString(o.b, now.UTC().Format("2006-01-02T15:04:05"))
	o.b = append(o.b, `,"request-id":`...)
	o.b = appendJSONString(o.b, rid)
	o.b = append(o.b, `,"client-request-id":`...)
	o.b = appendJSONString(o.b, crid)
	o.b = append(o.b, "}}}"...)
	h := w.Header()
	h.Set("request-id", rid)
	h.Set("client-request-id", crid)
	writeGraphBody(w, status, o.b)
}

func writeGraphBody(w http.ResponseWriter, status int, body []byte) {
	writeGraphBodyStreamed(w, status, body, false)
}

// writeGraphBodyStreamed is writeGraphBody that, when streamed, sends no
// Content-Length (a client learns the size by reading).
func writeGraphBodyStreamed(w http.ResponseWriter, status int, body []byte, streamed bool) {
	h := w.Header()
	h.Set("Content-Type", graphContentType)
	if !streamed {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("OData-Version", "4.0")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"graphsim","ADSiteName":"LOC"}}`)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// graphReq is one Graph request in flight.
type graphReq struct {
	s    *Sim
	w    http.ResponseWriter
	r    *http.Request
	rid  string
	host string
	snap *snapshot
	now  time.Time
	// cf are the content faults of the request (nil: none).
	cf *contentFaults
}

func (g *graphReq) fail(status int, code, msg string) {
	writeGraphError(g.w, g.r, g.rid, status, code, msg, g.now)
}

func (g *graphReq) badRequest(msg string) { g.fail(http.StatusBadRequest, "Request_BadRequest", msg) }

func (g *graphReq) unknownSegment(seg string) {
	g.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", seg))
}

func (g *graphReq) ok(body []byte) {
	crid := g.r.Header.Get("client-request-id")
	if crid == "" {
		crid = g.rid
	}
	g.w.Header().Set("request-id", g.rid)
	g.w.Header().Set("client-request-id", crid)
	body, streamed := g.cf.body(endpointPath(g.r.URL.Path), body)
	writeGraphBodyStreamed(g.w, http.StatusOK, body, streamed)
}

// serveGraph answers a request under /v1.0.
func (s *Sim) serveGraph(w http.ResponseWriter, r *http.Request) {
	g := &graphReq{s: s, w: w, r: r, rid: randomGUID(), host: s.host(r), snap: s.cur.Load(), now: s.now()}
	g.cf = s.contentFaults(s.faults.Load(), g.snap)
	claims, msg := s.authenticate(r, g.now)
	if msg != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="", authorization_uri="%s/common/oauth2/authorize", client_id="%s"`, g.host, graphAppID))
		g.fail(http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return
	}

	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/"), "/")
	if len(seg) == 1 && seg[0] == "" {
		if r.Method != http.MethodGet {
			g.methodNotAllowed()
			return
		}
		g.ok([]byte(`{"@odata.context":"` + g.host + `/v1.0/$metadata","value":[{"name":"users","kind":"EntitySet","url":"users"},{"name":"groups","kind":"EntitySet","url":"groups"}]}`))
		return
	}
	if len(seg) == 1 && strings.EqualFold(seg[0], "$batch") {
		if r.Method != http.MethodPost {
			g.w.Header().Set("Allow", "POST")
			g.fail(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
			return
		}
		g.batch()
		return
	}
	var handler func()
	var roles []string
	deny := func() {
		g.fail(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
	}
	switch strings.ToLower(seg[0]) {
	case "users":
		roles = usersReadRoles
		switch {
		case len(seg) == 1:
			handler = g.listUsers
		case isDeltaSegment(seg[1]) && len(seg) == 2:
			handler = func() { g.delta(objUser) }
		case len(seg) == 2:
			handler = func() { g.getUser(seg[1]) }
		case len(seg) == 3 && strings.EqualFold(seg[2], "manager"):
			handler = func() { g.getManager(seg[1]) }
		case strings.EqualFold(seg[2], "mailboxSettings") && len(seg) <= 4:
			roles, deny = mailboxReadRoles, g.denyMailbox
			switch {
			case len(seg) == 3:
				handler = func() { g.getMailboxSettings(seg[1]) }
			case strings.EqualFold(seg[3], "userPurpose"):
				handler = func() { g.getUserPurpose(seg[1]) }
			default:
				g.unknownSegment(seg[3])
				return
			}
		default:
			g.unknownSegment(seg[2])
			return
		}
	case "groups":
		roles = membersReadRoles
		switch {
		case len(seg) == 1:
			handler = g.listGroups
		case isDeltaSegment(seg[1]) && len(seg) == 2:
			handler = func() { g.delta(objGroup) }
		case len(seg) == 2:
			handler = func() { g.getGroup(seg[1]) }
		case strings.EqualFold(seg[2], "members") && len(seg) == 3:
			handler = func() { g.listMembers(seg[1], false) }
		case strings.EqualFold(seg[2], "members") && len(seg) == 4 && isUserCast(seg[3]):
			handler = func() { g.listMembers(seg[1], true) }
		case strings.EqualFold(seg[2], "members"):
			g.unknownSegment(seg[3])
			return
		case strings.EqualFold(seg[2], "transitiveMembers") && len(seg) == 3:
			handler = func() { g.listTransitiveMembers(seg[1], false) }
		case strings.EqualFold(seg[2], "transitiveMembers") && len(seg) == 4 && isUserCast(seg[3]):
			handler = func() { g.listTransitiveMembers(seg[1], true) }
		case strings.EqualFold(seg[2], "transitiveMembers"):
			g.unknownSegment(seg[3])
			return
		default:
			g.unknownSegment(seg[2])
			return
		}
	default:
		g.unknownSegment(seg[0])
		return
	}
	if r.Method != http.MethodGet {
		g.methodNotAllowed()
		return
	}
	if !hasAnyRole(claims.Roles, roles) {
		deny()
		return
	}
	handler()
}

func (g *graphReq) methodNotAllowed() {
	g.w.Header().Set("Allow", "GET")
	g.fail(http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
}

func hasAnyRole(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}

func bearer(r *http.Request) string {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// authenticate checks the bearer token. It returns the token's claims, or
// Graph's message for a token it rejects.
func (s *Sim) authenticate(r *http.Request, now time.Time) (*tokenClaims, string) {
	c, err := parseToken(s.signKey, bearer(r))
	if err != nil {
		return nil, err.Error()
	}
	t := now.Unix()
	// Graph allows five minutes of clock skew, but never more than a tenth
	// of the token's lifetime, so that short lifetimes (tests) expire.
	skew := min(int64(clockSkew/time.Second), (c.Exp-c.Iat)/10)
	if t < c.Nbf-int64(clockSkew/time.Second) {
		return nil, errTokenNotYetValid.Error()
	}
	if t >= c.Exp+skew {
		return nil, errTokenExpired.Error()
	}
	if !strings.EqualFold(c.TID, s.cfg.TenantID) {
		return nil, errTokenTenant.Error()
	}
	switch {
	case c.Aud == graphResource, c.Aud == graphAppID,
		strings.EqualFold(c.Aud, s.host(r)), strings.EqualFold(c.Aud, s.URL()):
	default:
		return nil, errTokenAudience.Error()
	}
	return c, ""
}

// query holds the parsed query options of one request.
type query struct {
	sel       *selection
	top       int
	skipToken string // raw $skiptoken; see pageOffset
	count     bool
	unified   bool // $filter=groupTypes/any(c:c eq 'Unified')
}

// endpoint kinds, which decide the allowed query options.
const (
	epUsers = iota
	epGroups
	epMembers
	epSingleUser
	epSingleGroup
)

var unifiedFilterRE = regexp.MustCompile(`(?i)^\s*groupTypes\s*/\s*any\s*\(\s*([a-z_][a-z0-9_]*)\s*:\s*([a-z_][a-z0-9_]*)\s*/?\s*eq\s*'unified'\s*\)\s*$`)

// parseQuery parses and checks the query options for an endpoint, writing
// the 400 itself and returning nil when they are not valid.
func (g *graphReq) parseQuery(ep int) *query {
	vals, err := url.ParseQuery(g.r.URL.RawQuery)
	if err != nil {
		g.badRequest("The query specified in the URI is not valid. " + err.Error())
		return nil
	}
	opts := map[string]string{}
	names := make([]string, 0, len(vals))
	for k, vs := range vals {
		lk := strings.ToLower(strings.TrimSpace(k))
		if !strings.HasPrefix(lk, "$") {
			continue // Graph ignores parameters that are not query options.
		}
		if _, dup := opts[lk]; dup || len(vs) > 1 {
			g.badRequest(fmt.Sprintf("Query option '%s' was specified more than once, but it must be specified at most once.", k))
			return nil
		}
		opts[lk] = vs[0]
		names = append(names, lk)
	}
	slices.Sort(names)
	single := ep == epSingleUser || ep == epSingleGroup
	q := &query{top: defaultPageSize, sel: defaultSelection()}
	for _, name := range names {
		v := opts[name]
		switch name {
		case "$select":
			sel, msg := parseSelect(v, ep)
			if msg != "" {
				g.badRequest(msg)
				return nil
			}
			q.sel = sel
		case "$top":
			if single {
				g.badRequest("Query option '$top' is not allowed on a single resource.")
				return nil
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > maxPageSize {
				g.badRequest(fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", v, maxPageSize))
				return nil
			}
			q.top = n
		case "$skiptoken":
			if single {
				g.badRequest("Query option '$skiptoken' is not allowed on a single resource.")
				return nil
			}
			q.skipToken = v
		case "$count":
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "false":
			case "true":
				if single {
					g.badRequest("Query option '$count' is not allowed on a single resource.")
					return nil
				}
				if !strings.EqualFold(strings.TrimSpace(g.r.Header.Get("ConsistencyLevel")), "eventual") {
					g.badRequest("$count is not currently supported.")
					return nil
				}
				q.count = true
			default:
				g.badRequest(fmt.Sprintf("'%s' is not a valid count option.", v))
				return nil
			}
		case "$filter":
			if ep != epGroups {
				g.fail(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported Query. graphsim supports $filter only on /groups, as groupTypes/any(c:c eq 'Unified').")
				return nil
			}
			m := unifiedFilterRE.FindStringSubmatch(v)
			if m == nil || !strings.EqualFold(m[1], m[2]) {
				g.fail(http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("Unsupported Query. graphsim supports only $filter=groupTypes/any(c:c eq 'Unified'), not '%s'.", v))
				return nil
			}
			q.unified = true
		case "$skip":
			g.badRequest("'$skip' is not supported by the service.")
			return nil
		case "$search", "$orderby", "$expand", "$format", "$levels", "$apply", "$compute", "$deltatoken", "$index", "$schemaversion":
			if strings.TrimSpace(v) == "" {
				continue
			}
			g.fail(http.StatusBadRequest, "Request_UnsupportedQuery", fmt.Sprintf("Unsupported query option '%s'. graphsim supports $select, $top, $count, $skiptoken and, on /groups, $filter=groupTypes/any(c:c eq 'Unified').", name))
			return nil
		default:
			g.badRequest(fmt.Sprintf("The query parameter '%s' is not supported.", name))
			return nil
		}
	}
	return q
}

// parseSelect resolves a $select list for an endpoint; msg is the error.
func parseSelect(v string, ep int) (sel *selection, msg string) {
	sel = &selection{names: []string{}}
	seen := map[string]bool{}
	for _, raw := range strings.Split(v, ",") {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		ui, gi := indexOfUserProp(name), indexOfGroupProp(name)
		ci, di := indexOfMemberProp(contactProps, name), indexOfMemberProp(deviceProps, name)
		var canonical string
		switch ep {
		case epUsers, epSingleUser:
			if ui < 0 {
				return nil, fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", name)
			}
			canonical = userProps[ui].name
		case epGroups, epSingleGroup:
			if gi < 0 {
				return nil, fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.group'.", name)
			}
			canonical = groupProps[gi].name
		default:
			switch {
			case ui >= 0:
				canonical = userProps[ui].name
			case gi >= 0:
				canonical = groupProps[gi].name
			case ci >= 0:
				canonical = contactProps[ci].name
			case di >= 0:
				canonical = deviceProps[di].name
			default:
				return nil, fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.directoryObject'.", name)
			}
		}
		if seen[canonical] {
			continue
		}
		seen[canonical] = true
		sel.names = append(sel.names, canonical)
		if canonical == "id" {
			continue
		}
		if ui >= 0 {
			sel.user = append(sel.user, ui)
		}
		if gi >= 0 {
			sel.group = append(sel.group, gi)
		}
		if ci >= 0 {
			sel.contact = append(sel.contact, ci)
		}
		if di >= 0 {
			sel.device = append(sel.device, di)
		}
	}
	if len(sel.names) == 0 {
		return defaultSelection(), ""
	}
	return sel, ""
}

// context is the @odata.context URL for an entity set ("users",
// "directoryObjects") and selection; entity adds "/$entity".
func (g *graphReq) context(set string, sel *selection, entity bool) string {
	c := g.host + "/v1.0/$metadata#" + set
	if sel.names != nil {
		c += "(" + strings.Join(sel.names, ",") + ")"
	}
	if entity {
		c += "/$entity"
	}
	return c
}

// Skip tokens: base64url(version, offset, HMAC(key, collection, offset)).
// They are opaque to clients and bound to the collection they page.
const skipTokenMACLen = 12

func (s *Sim) skipToken(key string, offset int) string {
	payload := binary.AppendUvarint([]byte{1}, uint64(offset))
	mac := hmac.New(sha256.New, s.pageKey)
	mac.Write([]byte(key))
	mac.Write([]byte{0})
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(payload)[:len(payload)+skipTokenMACLen])
}

func (s *Sim) decodeSkipToken(key, tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil || len(b) < 2+skipTokenMACLen || b[0] != 1 {
		return 0, false
	}
	payload, sum := b[:len(b)-skipTokenMACLen], b[len(b)-skipTokenMACLen:]
	mac := hmac.New(sha256.New, s.pageKey)
	mac.Write([]byte(key))
	mac.Write([]byte{0})
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)[:skipTokenMACLen]) {
		return 0, false
	}
	off, n := binary.Uvarint(payload[1:])
	if n <= 0 || n != len(payload)-1 || off > 1<<40 {
		return 0, false
	}
	return int(off), true
}

// nextLink is the request URL on graphsim's host with $skiptoken replaced.
func (g *graphReq) nextLink(token string) string {
	var b strings.Builder
	b.WriteString(g.host)
	b.WriteString(g.r.URL.EscapedPath())
	b.WriteByte('?')
	for _, part := range strings.Split(g.r.URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, hasV := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			if strings.EqualFold(dk, "$skiptoken") {
				continue
			}
			if strings.HasPrefix(dk, "$") && url.QueryEscape(dk[1:]) == dk[1:] {
				k = dk // write $select rather than %24select, like Graph
			}
		}
		b.WriteString(k)
		if hasV {
			b.WriteByte('=')
			b.WriteString(v)
		}
		b.WriteByte('&')
	}
	b.WriteString("$skiptoken=")
	b.WriteString(token)
	return b.String()
}

// writeCollection writes a collection page: items [offset, offset+top) of
// n, written by item(i), where the offset comes from $skiptoken. pageKey
// names the collection, so a token pages only the collection it came from.
func (g *graphReq) writeCollection(set string, q *query, pageKey string, n int, item func(o *jsonObj, i int)) {
	offset := 0
	if q.skipToken != "" {
		off, ok := g.s.decodeSkipToken(pageKey, q.skipToken)
		if !ok {
			g.fail(http.StatusBadRequest, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
			return
		}
		offset = off
	}
	start := min(offset, n)
	end := min(start+q.top, n)
	o := jsonObj{b: make([]byte, 0, 512+(end-start)*320)}
	o.begin()
	o.str("@odata.context", g.context(set, q.sel, false))
	if q.count {
		o.raw("@odata.count", strconv.Itoa(n))
	}
	if end < n {
		o.str("@odata.nextLink", g.nextLink(g.s.skipToken(pageKey, end)))
	}
	o.key("value")
	o.b = append(o.b, '[')
	for i := start; i < end; i++ {
		if i > start {
			o.b = append(o.b, ',')
		}
		item(&o, i)
	}
	o.b = append(o.b, ']')
	o.end()
	g.ok(o.b)
}

func (g *graphReq) listUsers() {
	q := g.parseQuery(epUsers)
	if q == nil {
		return
	}
	users := g.snap.tenant.Users
	g.writeCollection("users", q, "users", len(users), func(o *jsonObj, i int) {
		g.s.writeUser(o, &users[i], q.sel, false, g.cf)
	})
}

func (g *graphReq) listGroups() {
	q := g.parseQuery(epGroups)
	if q == nil {
		return
	}
	groups := g.snap.tenant.Groups
	if q.unified {
		idx := g.snap.unified
		g.writeCollection("groups", q, "groups:unified", len(idx), func(o *jsonObj, i int) {
			g.s.writeGroup(o, &groups[idx[i]], q.sel, false)
		})
		return
	}
	g.writeCollection("groups", q, "groups", len(groups), func(o *jsonObj, i int) {
		g.s.writeGroup(o, &groups[i], q.sel, false)
	})
}

// lookupGroup resolves a group ID from the path, answering 400 or 404
// itself when it fails.
func (g *graphReq) lookupGroup(id string) *Group {
	if !isGUID(id) {
		g.badRequest(fmt.Sprintf("Invalid object identifier '%s'.", id))
		return nil
	}
	grp := g.snap.group(id)
	if grp == nil {
		g.notFound(id)
	}
	return grp
}

// notFound answers 404 Request_ResourceNotFound for the resource named
// (an object ID, or a navigation property such as 'manager'), as Graph
// words it.
func (g *graphReq) notFound(resource string) {
	g.fail(http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", resource))
}

// lookupUser resolves a user ID or UPN from the path and parses the query
// of a single user, answering 404 or 400 itself when either fails.
func (g *graphReq) lookupUser(id string) (*User, *query) {
	u := g.snap.user(id)
	if u == nil {
		g.notFound(id)
		return nil, nil
	}
	q := g.parseQuery(epSingleUser)
	if q == nil {
		return nil, nil
	}
	return u, q
}

func (g *graphReq) listMembers(id string, usersOnly bool) {
	g.listGroupMembers(id, "members", usersOnly, func(grp *Group) []Member { return grp.Members })
}

// listGroupMembers answers a group's member list (set is "members" or
// "transitiveMembers", the path segment and paging key), or its
// /microsoft.graph.user cast, paged and selected; of gives the members.
func (g *graphReq) listGroupMembers(id, set string, usersOnly bool, of func(*Group) []Member) {
	grp := g.lookupGroup(id)
	if grp == nil {
		return
	}
	key := set + ":" + strings.ToLower(grp.ID)
	ep, entitySet := epMembers, "directoryObjects"
	if usersOnly {
		key, ep, entitySet = key+":user", epUsers, "users"
	}
	q := g.parseQuery(ep)
	if q == nil {
		return
	}
	members := of(grp)
	if usersOnly {
		users := members[:0:0]
		for _, m := range members {
			if m.ODataType == TypeUser {
				users = append(users, m)
			}
		}
		members = users
	}
	g.writeCollection(entitySet, q, key, len(members), func(o *jsonObj, i int) {
		g.s.writeMember(o, g.snap, &members[i], q.sel, g.cf)
	})
}

func (g *graphReq) getUser(id string) {
	u, q := g.lookupUser(id)
	if u == nil {
		return
	}
	o := jsonObj{b: make([]byte, 0, 1024)}
	g.s.writeUser(&o, u, q.sel, false, g.cf)
	g.ok(withContext(o.b, g.context("users", q.sel, true)))
}

func (g *graphReq) getGroup(id string) {
	grp := g.lookupGroup(id)
	if grp == nil {
		return
	}
	q := g.parseQuery(epSingleGroup)
	if q == nil {
		return
	}
	o := jsonObj{b: make([]byte, 0, 2048)}
	g.s.writeGroup(&o, grp, q.sel, false)
	g.ok(withContext(o.b, g.context("groups", q.sel, true)))
}

// withContext puts "@odata.context" first in a written object.
func withContext(obj []byte, ctx string) []byte {
	b := make([]byte, 0, len(obj)+len(ctx)+24)
	b = append(b, `{"@odata.context":`...)
	b = appendJSONString(b, ctx)
	if len(obj) > 2 {
		b = append(b, ',')
	}
	return append(b, obj[1:]...)
}
