package azuread

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// cannedResp is a scripted Graph answer. Body may hold {base}, replaced
// by the Graph base URL of the front.
type cannedResp struct {
	status int // 0 = 200
	header map[string]string
	body   string
}

// cannedGraph is a TLS front that answers Graph delta requests with
// scripted pages (shaped like /work/shared/graph-samples) and forwards
// the rest (OpenID metadata, tokens) to a graphsim, so the connector runs
// its real azidentity + msgraph-sdk-go stack against exact payloads.
type cannedGraph struct {
	t   *testing.T
	sim *graphsim.Sim
	srv *httptest.Server

	mu    sync.Mutex
	pages map[string]cannedResp
	// fault, when set, may answer a request itself (returns true);
	// attempt is 0 for a first attempt, n for the n-th retry.
	fault func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool
	hits  []string // keys of the Graph requests, in order (faults too)
	// attrs are the attributes the initial users request must select.
	attrs userAttrs
}

// pageKey names a delta request: "users:initial", "users:skip:<token>",
// "groups:delta:<token>".
func pageKey(r *http.Request) string {
	res := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1.0/"), "/delta")
	q := r.URL.Query()
	switch {
	case q.Get("$deltatoken") != "":
		return res + ":delta:" + q.Get("$deltatoken")
	case q.Get("$skiptoken") != "":
		return res + ":skip:" + q.Get("$skiptoken")
	}
	return res + ":initial"
}

func startCanned(t *testing.T, pages map[string]cannedResp) *cannedGraph {
	t.Helper()
	sim, err := graphsim.New(graphsim.Config{Users: 1, Groups: 0, Seed: 1, ClientSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	c := &cannedGraph{t: t, sim: sim, pages: pages}
	c.srv = httptest.NewTLSServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cannedGraph) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1.0/") {
		c.sim.ServeHTTP(w, r)
		return
	}
	key := pageKey(r)
	attempt := 0
	if a := r.Header.Get("Retry-Attempt"); a != "" {
		_, _ = fmt.Sscan(a, &attempt)
	}
	c.mu.Lock()
	c.hits = append(c.hits, key)
	resp, ok := c.pages[key]
	fault := c.fault
	attrs := c.attrs
	c.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ey") {
		c.t.Errorf("%s: no bearer token", key)
	}
	if r.Header.Get("Prefer") != preferPageSize {
		c.t.Errorf("%s: Prefer %q", key, r.Header.Get("Prefer"))
	}
	if strings.HasSuffix(key, ":initial") {
		sel := strings.Split(r.URL.Query().Get("$select"), ",")
		want := userSelect(attrs)
		if strings.HasPrefix(key, "groups") {
			want = groupSelect()
		}
		if !slices.Equal(sorted(sel), sorted(want)) {
			c.t.Errorf("%s: $select %v, want %v", key, sel, want)
		}
	}
	if fault != nil && fault(w, r, key, attempt) {
		return
	}
	if !ok {
		c.t.Errorf("unscripted Graph request %s", r.URL)
		resp = cannedResp{status: 404, body: `{"error":{"code":"Request_ResourceNotFound","message":"unscripted"}}`}
	}
	for k, v := range resp.header {
		w.Header().Set(k, strings.ReplaceAll(v, "{base}", c.srv.URL+"/v1.0"))
	}
	if resp.body != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := resp.status
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, strings.ReplaceAll(resp.body, "{base}", c.srv.URL+"/v1.0"))
}

// set scripts more pages (or replaces some).
func (c *cannedGraph) set(pages map[string]cannedResp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range pages {
		c.pages[k] = v
	}
}

// takeHits returns and forgets the keys requested so far.
func (c *cannedGraph) takeHits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hits
	c.hits = nil
	return h
}

// sameRequests compares requests chain by chain: the users and groups
// readers run side by side, so only the order within each chain is
// fixed. Requests listed in optional may be missing or present in got (a
// reader stopped when the other one found its token expired).
func sameRequests(got, want []string, optional ...string) bool {
	chain := func(list []string, prefix string) []string {
		var out []string
		for _, h := range list {
			if strings.HasPrefix(h, prefix) && !slices.Contains(optional, h) {
				out = append(out, h)
			}
		}
		return out
	}
	return slices.Equal(chain(got, "users:"), chain(want, "users:")) && slices.Equal(chain(got, "groups:"), chain(want, "groups:"))
}

// config is the connector config pointing at the front.
func (c *cannedGraph) config(t *testing.T, override map[string]any) *connectorv1.Config {
	t.Helper()
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{
		"tenant":         c.sim.Tenant().Domain,
		"client_id":      c.sim.Config().ClientID,
		"client_secret":  testSecret,
		"authority_host": c.srv.URL + "/",
		"graph_url":      c.srv.URL + "/v1.0",
		"ca_file":        "ca.pem",
	}
	for k, v := range override {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &connectorv1.Config{Json: b, BaseDir: dir}
}

// The scripted directory: an initial round of two users pages and two
// groups pages (a group repeated across them, members that are not
// users, groups of every kind), an incremental round with partial
// updates, removals and member changes, and an empty round.
//
// Object IDs are GUIDs, as in Entra (the connector drops others), spelled
// to be told apart: users a11ce000-… Alice, b0b00000-… Bob, ca201000-…
// Carol, da7e0000-… Dave, 90e00000-… a deleted user; groups 6a00000N-…
// with N = 1 Microsoft 365 ("Sales Team"), 2 security ("VPN Users"), 3
// distribution, 4 of no kind, 5 deleted; de000001-… a device and
// c0000001-… an org contact.
const (
	userType   = `"@odata.type":"#microsoft.graph.user"`
	deviceType = `"@odata.type":"#microsoft.graph.device"`
)

func cannedDirectory() map[string]cannedResp {
	return map[string]cannedResp{
		"users:initial": {body: `{"@odata.context":"{base}/$metadata#users","@odata.nextLink":"{base}/users/delta?$skiptoken=p2","value":[
			{"id":"a11ce000-0000-4000-8000-000000000001","userPrincipalName":"alice@contoso.com","mail":"alice@contoso.com","displayName":"Alice Adams","givenName":"Alice","surname":"Adams","department":"Sales","jobTitle":"Rep","accountEnabled":true,"userType":"Member","assignedLicenses":[{"disabledPlans":[],"skuId":"s1"},{"disabledPlans":[],"skuId":"s2"}]},
			{"id":"b0b00000-0000-4000-8000-000000000002","userPrincipalName":"bob@contoso.com","mail":null,"displayName":"Bob","givenName":null,"surname":null,"department":null,"jobTitle":null,"accountEnabled":false,"userType":"Member","assignedLicenses":[]},
			{"id":"90e00000-0000-4000-8000-000000000005","@removed":{"reason":"deleted"}}]}`},
		"users:skip:p2": {body: `{"@odata.context":"{base}/$metadata#users","@odata.deltaLink":"{base}/users/delta?$deltatoken=d1","value":[
			{"id":"ca201000-0000-4000-8000-000000000003","userPrincipalName":"carol_fabrikam.com#EXT#@contoso.onmicrosoft.com","mail":"carol@fabrikam.com","displayName":"Carol","givenName":"Carol","surname":"Cruz","department":null,"jobTitle":null,"accountEnabled":true,"userType":"Guest","assignedLicenses":[]}]}`},
		"groups:initial": {body: `{"@odata.context":"{base}/$metadata#groups","@odata.nextLink":"{base}/groups/delta?$skiptoken=g2","value":[
			{"id":"6a000001-0000-4000-8000-000000000001","displayName":"Sales Team","mail":"sales@contoso.com","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,
			 "members@delta":[{` + userType + `,"id":"a11ce000-0000-4000-8000-000000000001"},{` + userType + `,"id":"b0b00000-0000-4000-8000-000000000002"},{` + deviceType + `,"id":"de000001-0000-4000-8000-000000000001"}]},
			{"id":"6a000002-0000-4000-8000-000000000002","displayName":"VPN Users","mail":null,"groupTypes":[],"mailEnabled":false,"securityEnabled":true,
			 "members@delta":[{` + userType + `,"id":"a11ce000-0000-4000-8000-000000000001"}]},
			{"id":"6a000003-0000-4000-8000-000000000003","displayName":"All Staff","mail":"staff@contoso.com","groupTypes":[],"mailEnabled":true,"securityEnabled":false,
			 "members@delta":[{` + userType + `,"id":"ca201000-0000-4000-8000-000000000003"}]}]}`},
		"groups:skip:g2": {body: `{"@odata.context":"{base}/$metadata#groups","@odata.deltaLink":"{base}/groups/delta?$deltatoken=d1","value":[
			{"id":"6a000001-0000-4000-8000-000000000001","displayName":"Sales Team","mail":"sales@contoso.com","groupTypes":["Unified"],"mailEnabled":true,"securityEnabled":false,
			 "members@delta":[{` + userType + `,"id":"ca201000-0000-4000-8000-000000000003"},{"@odata.type":"#microsoft.graph.orgContact","id":"c0000001-0000-4000-8000-000000000001"}]},
			{"id":"6a000002-0000-4000-8000-000000000002","members@delta":[{` + userType + `,"id":"b0b00000-0000-4000-8000-000000000002"}]},
			{"id":"6a000004-0000-4000-8000-000000000004","displayName":"Neither","mail":null,"groupTypes":[],"mailEnabled":false,"securityEnabled":false,
			 "members@delta":[{` + userType + `,"id":"b0b00000-0000-4000-8000-000000000002"}]}]}`},
		"users:delta:d1": {body: `{"@odata.context":"{base}/$metadata#users","@odata.deltaLink":"{base}/users/delta?$deltatoken=d2","value":[
			{"id":"a11ce000-0000-4000-8000-000000000001","department":"Marketing"},
			{"id":"b0b00000-0000-4000-8000-000000000002","accountEnabled":true,"mail":null},
			{"id":"ca201000-0000-4000-8000-000000000003","@removed":{"reason":"changed"}}]}`},
		"groups:delta:d1": {body: `{"@odata.context":"{base}/$metadata#groups","@odata.deltaLink":"{base}/groups/delta?$deltatoken=d2","value":[
			{"id":"6a000001-0000-4000-8000-000000000001","members@delta":[{` + userType + `,"id":"a11ce000-0000-4000-8000-000000000001","@removed":{"reason":"deleted"}},{` + userType + `,"id":"da7e0000-0000-4000-8000-000000000004"},{"@odata.type":"#microsoft.graph.group","id":"6a000002-0000-4000-8000-000000000002"}]},
			{"id":"6a000002-0000-4000-8000-000000000002","displayName":"VPN Users (EU)"},
			{"id":"6a000005-0000-4000-8000-000000000005","@removed":{"reason":"deleted"}}]}`},
		"users:delta:d2":  {body: `{"@odata.deltaLink":"{base}/users/delta?$deltatoken=d3","value":[]}`},
		"groups:delta:d2": {body: `{"@odata.deltaLink":"{base}/groups/delta?$deltatoken=d3","value":[]}`},
	}
}

// checkCannedFull checks a full read of cannedDirectory for the kinds
// unified and security.
func checkCannedFull(t *testing.T, r *syncResult) {
	t.Helper()
	checkCannedFullAfter(t, r, 0)
}

// checkCannedFullAfter is checkCannedFull for a full read that followed
// extraUsers user changes in the same Sync.
func checkCannedFullAfter(t *testing.T, r *syncResult, extraUsers int64) {
	t.Helper()
	if !r.last.GetComplete() || r.last.GetCursor() == "" {
		t.Errorf("full read: complete %v, cursor %q", r.last.GetComplete(), r.last.GetCursor())
	}
	if len(r.users) != 4 {
		t.Errorf("%d users, want 4", len(r.users))
	}
	alice := r.user(t, "a11ce000-0000-4000-8000-000000000001")
	if alice.GetUserPrincipalName() != "alice@contoso.com" || alice.GetDepartment() != "Sales" || alice.GetAssignedLicenseCount() != 2 ||
		!alice.GetAccountEnabled() || alice.GetUserType() != "Member" || alice.Removed != nil {
		t.Errorf("alice %v", alice)
	}
	bob := r.user(t, "b0b00000-0000-4000-8000-000000000002")
	// null is known and empty, never absent.
	if bob.Mail == nil || *bob.Mail != "" || bob.GivenName == nil || bob.Department == nil || bob.AccountEnabled == nil || bob.GetAccountEnabled() ||
		bob.AssignedLicenseCount == nil || bob.GetAssignedLicenseCount() != 0 {
		t.Errorf("bob %v", bob)
	}
	if gone := r.user(t, "90e00000-0000-4000-8000-000000000005"); gone.GetRemoved().GetReason() != "deleted" || gone.UserPrincipalName != nil {
		t.Errorf("removed user %v", gone)
	}
	if carol := r.user(t, "ca201000-0000-4000-8000-000000000003"); carol.GetUserType() != "Guest" {
		t.Errorf("carol %v", carol)
	}
	var ids []string
	for _, g := range r.groups {
		ids = append(ids, g.GetId())
	}
	if !slices.Equal(ids, []string{"6a000001-0000-4000-8000-000000000001", "6a000002-0000-4000-8000-000000000002"}) {
		t.Errorf("groups %v, want 6a000001-0000-4000-8000-000000000001 and 6a000002-0000-4000-8000-000000000002 once each", ids)
	}
	if u := r.group(t, "6a000001-0000-4000-8000-000000000001"); u.GetDisplayName() != "Sales Team" || !u.GetGroupTypesKnown() || !slices.Equal(u.GetGroupTypes(), []string{"Unified"}) ||
		u.MailEnabled == nil || u.SecurityEnabled == nil {
		t.Errorf("unified group %v", u)
	}
	if s := r.group(t, "6a000002-0000-4000-8000-000000000002"); s.Mail == nil || s.GetMail() != "" || !s.GetGroupTypesKnown() || len(s.GetGroupTypes()) != 0 {
		t.Errorf("security group %v", s)
	}
	if got := sorted(r.added["6a000001-0000-4000-8000-000000000001"]); !slices.Equal(got, []string{"a11ce000-0000-4000-8000-000000000001", "b0b00000-0000-4000-8000-000000000002", "ca201000-0000-4000-8000-000000000003"}) {
		t.Errorf("6a000001-0000-4000-8000-000000000001 members %v", got)
	}
	if got := sorted(r.added["6a000002-0000-4000-8000-000000000002"]); !slices.Equal(got, []string{"a11ce000-0000-4000-8000-000000000001", "b0b00000-0000-4000-8000-000000000002"}) {
		t.Errorf("6a000002-0000-4000-8000-000000000002 members %v", got)
	}
	for _, g := range []string{"6a000003-0000-4000-8000-000000000003", "6a000004-0000-4000-8000-000000000004"} {
		if len(r.added[g]) > 0 {
			t.Errorf("members of %s (a kind not asked for) sent", g)
		}
	}
	if p := r.last.GetProgress(); p.GetSkippedMembers() != 2 || p.GetUsers() != 4+extraUsers || p.GetGroups() != 2 || p.GetMemberships() != 5 {
		t.Errorf("progress %v", p)
	}
}

func TestDeltaAgainstCannedPages(t *testing.T) {
	g := startCanned(t, cannedDirectory())
	cfg := g.config(t, nil)
	kinds := []string{"unified", "security"}
	c := New(nil)

	// Initial round: everything, paged, merged.
	first := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, GroupTypes: kinds})
	checkCannedFull(t, first)
	if h := g.takeHits(); !sameRequests(h, []string{"users:initial", "users:skip:p2", "groups:initial", "groups:skip:g2"}) {
		t.Errorf("requests %v", h)
	}
	var cur cursor
	if err := json.Unmarshal([]byte(first.last.GetCursor()), &cur); err != nil || !strings.HasSuffix(cur.Users, "$deltatoken=d1") ||
		!strings.HasSuffix(cur.Groups, "$deltatoken=d1") || !slices.Equal(cur.Kinds, kinds) {
		t.Fatalf("cursor %s: %v", first.last.GetCursor(), err)
	}

	// Incremental round: exactly the changes, with exactly their fields.
	second := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, GroupTypes: kinds, Cursor: first.last.GetCursor()})
	if second.last.GetComplete() || second.last.GetResyncReason() != "" || !strings.Contains(second.last.GetCursor(), "d2") {
		t.Errorf("incremental: complete %v reason %q cursor %q", second.last.GetComplete(), second.last.GetResyncReason(), second.last.GetCursor())
	}
	if h := g.takeHits(); !sameRequests(h, []string{"users:delta:d1", "groups:delta:d1"}) {
		t.Errorf("requests %v", h)
	}
	wantUsers := []*connectorv1.User{
		{Id: "a11ce000-0000-4000-8000-000000000001", Department: ptr("Marketing")},
		{Id: "b0b00000-0000-4000-8000-000000000002", AccountEnabled: ptr(true), Enabled: ptr(true), Mail: ptr("")},
		{Id: "ca201000-0000-4000-8000-000000000003", Removed: &connectorv1.Removal{Reason: "changed"}},
	}
	if len(second.users) != len(wantUsers) {
		t.Fatalf("users %v", second.users)
	}
	for i, want := range wantUsers {
		if got := second.users[i]; got.String() != want.String() {
			t.Errorf("user %d = %v, want %v", i, got, want)
		}
	}
	wantGroups := []*connectorv1.Group{
		{Id: "6a000002-0000-4000-8000-000000000002", DisplayName: ptr("VPN Users (EU)")},
		{Id: "6a000005-0000-4000-8000-000000000005", Removed: &connectorv1.Removal{Reason: "deleted"}},
	}
	if len(second.groups) != len(wantGroups) {
		t.Fatalf("groups %v", second.groups)
	}
	for i, want := range wantGroups {
		if got := second.groups[i]; got.String() != want.String() {
			t.Errorf("group %d = %v, want %v", i, got, want)
		}
	}
	if !slices.Equal(second.added["6a000001-0000-4000-8000-000000000001"], []string{"da7e0000-0000-4000-8000-000000000004"}) || !slices.Equal(second.removed["6a000001-0000-4000-8000-000000000001"], []string{"a11ce000-0000-4000-8000-000000000001"}) {
		t.Errorf("member changes +%v -%v", second.added["6a000001-0000-4000-8000-000000000001"], second.removed["6a000001-0000-4000-8000-000000000001"])
	}
	// A group member is nesting, sent for the host to expand, not skipped.
	if got := second.addedGroups["6a000001-0000-4000-8000-000000000001"]; !slices.Equal(got, []string{"6a000002-0000-4000-8000-000000000002"}) {
		t.Errorf("group members added %v", got)
	}
	if p := second.last.GetProgress(); p.GetSkippedMembers() != 0 || p.GetMemberships() != 3 || p.GetRequests() != 2 || p.GetRetries() != 0 {
		t.Errorf("progress %v", p)
	}

	// No change: nothing, not complete, a new cursor.
	third := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, GroupTypes: kinds, Cursor: second.last.GetCursor()})
	if third.objects() != 0 || third.last.GetComplete() || !strings.Contains(third.last.GetCursor(), "d3") || len(third.batches) != 1 {
		t.Errorf("no-change sync: %d objects, %d batches, last %v", third.objects(), len(third.batches), third.last)
	}

	// Forced full read with a cursor: a full read, no resync reason.
	full := mustSync(t, c, &connectorv1.SyncRequest{Config: cfg, GroupTypes: kinds, Cursor: third.last.GetCursor(), Full: true})
	checkCannedFull(t, full)
	if full.last.GetResyncReason() != "" {
		t.Errorf("requested full read has resync reason %q", full.last.GetResyncReason())
	}
}

// Every way Graph refuses a cursor, and every cursor the connector
// cannot use, makes a full read in the same Sync equal to a fresh one.
func TestDeltaResync(t *testing.T) {
	gone := cannedResp{status: 410}
	goneLocation := cannedResp{status: 410, header: map[string]string{"Location": "{base}/users/delta?$deltatoken=fresh"},
		body: `{"error":{"code":"resyncRequired","message":"Resync required. Replace any local cached data with a full delta query."}}`}
	notFound := cannedResp{status: 400, body: `{"error":{"code":"syncStateNotFound","message":"The sync state generation is not found."}}`}
	kinds := []string{"unified", "security"}
	goodCursor := func(g *cannedGraph) string {
		return (&cursor{V: cursorVersion, Tenant: g.sim.Tenant().Domain, Kinds: kinds,
			Users: g.srv.URL + "/v1.0/users/delta?$deltatoken=old", Groups: g.srv.URL + "/v1.0/groups/delta?$deltatoken=old"}).encode()
	}
	// The other chain's old link answers with no change: whether it is
	// asked before the refusal stops its reader is a matter of timing.
	noGroupChange := cannedResp{body: `{"@odata.deltaLink":"{base}/groups/delta?$deltatoken=y","value":[]}`}
	tests := []struct {
		name      string
		pages     map[string]cannedResp
		cursor    func(g *cannedGraph) string
		reason    string   // part of resync_reason
		wantHits0 []string // requests before the full read
		optional  []string // requests before the full read that may not happen
	}{
		{name: "410 empty body", pages: map[string]cannedResp{"users:delta:old": gone, "groups:delta:old": noGroupChange}, cursor: goodCursor,
			reason: "Graph 410", wantHits0: []string{"users:delta:old"}, optional: []string{"groups:delta:old"}},
		{name: "410 resyncRequired with Location", pages: map[string]cannedResp{"users:delta:old": goneLocation, "groups:delta:old": noGroupChange}, cursor: goodCursor,
			reason: "Graph 410 resyncRequired", wantHits0: []string{"users:delta:old"}, optional: []string{"groups:delta:old"}},
		{name: "400 syncStateNotFound on groups", cursor: goodCursor,
			pages: map[string]cannedResp{
				"users:delta:old":  {body: `{"@odata.deltaLink":"{base}/users/delta?$deltatoken=x","value":[{"id":"a11ce000-0000-4000-8000-000000000001","department":"Ops"}]}`},
				"groups:delta:old": notFound},
			reason: "Graph 400 syncStateNotFound", wantHits0: []string{"groups:delta:old"}, optional: []string{"users:delta:old"}},
		{name: "unreadable cursor", cursor: func(*cannedGraph) string { return "not a cursor" }, reason: "the stored cursor is unreadable"},
		{name: "other group types", reason: "group types to read changed",
			cursor: func(g *cannedGraph) string {
				return (&cursor{V: cursorVersion, Tenant: g.sim.Tenant().Domain, Kinds: []string{"unified"}, Users: "https://x/", Groups: "https://x/"}).encode()
			}},
		{name: "other tenant", reason: "tenant",
			cursor: func(g *cannedGraph) string {
				return (&cursor{V: cursorVersion, Tenant: "fabrikam.onmicrosoft.com", Kinds: kinds, Users: "https://x/", Groups: "https://x/"}).encode()
			}},
		{name: "other Graph host", reason: "graph_url",
			cursor: func(g *cannedGraph) string {
				return (&cursor{V: cursorVersion, Tenant: g.sim.Tenant().Domain, Kinds: kinds,
					Users: "https://graph.example.com/v1.0/users/delta?$deltatoken=a", Groups: "https://graph.example.com/v1.0/groups/delta?$deltatoken=a"}).encode()
			}},
		{name: "other version", reason: "format", cursor: func(*cannedGraph) string { return `{"v":99,"users":"a","groups":"b"}` }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startCanned(t, cannedDirectory())
			g.set(tt.pages)
			log, logs := logBuffer()
			c := New(log)
			r := mustSync(t, c, &connectorv1.SyncRequest{Config: g.config(t, nil), GroupTypes: kinds, Cursor: tt.cursor(g)})
			t.Logf("resync_reason %q", r.last.GetResyncReason())
			if !strings.Contains(r.last.GetResyncReason(), tt.reason) {
				t.Errorf("resync_reason %q, want it to mention %q", r.last.GetResyncReason(), tt.reason)
			}
			want := append(slices.Clone(tt.wantHits0), "users:initial", "users:skip:p2", "groups:initial", "groups:skip:g2")
			if h := g.takeHits(); !sameRequests(h, want, tt.optional...) {
				t.Errorf("requests %v, want %v", h, want)
			}
			// What the full read sent equals a fresh full read (changes
			// sent before Graph refused come first).
			full := &syncResult{added: r.added, removed: r.removed, last: r.last, groups: r.groups}
			for _, u := range r.users {
				if u.GetDepartment() != "Ops" {
					full.users = append(full.users, u)
				}
			}
			checkCannedFullAfter(t, full, int64(len(r.users)-len(full.users)))
			assertNoSecrets(t, "log", logs.String())
			assertNoLinksAboveDebug(t, logs.String())
		})
	}

	t.Run("expired twice in a full read", func(t *testing.T) {
		g := startCanned(t, cannedDirectory())
		g.set(map[string]cannedResp{"users:skip:p2": gone})
		_, err := runSync(t, New(nil), &connectorv1.SyncRequest{Config: g.config(t, nil), GroupTypes: kinds})
		var exp *expiredError
		if !errors.As(err, &exp) || !strings.Contains(err.Error(), "start over") {
			t.Fatalf("want a failure after restarting once, got %v", err)
		}
		h := g.takeHits()
		var groups int
		for _, x := range h {
			if strings.HasPrefix(x, "groups:") {
				groups++
			}
		}
		if !sameRequests(h, []string{"users:initial", "users:skip:p2", "users:initial", "users:skip:p2"}, "groups:initial", "groups:skip:g2") || groups > 4 {
			t.Errorf("requests %v, want 2 tries of 2 pages", h)
		}
	})
}

// assertNoLinksAboveDebug fails when a log line above debug holds a delta
// or skip token (links are long; they are for debug logs only).
func assertNoLinksAboveDebug(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var entry struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil || entry.Level == "debug" {
			continue
		}
		if strings.Contains(line, "deltatoken") || strings.Contains(line, "skiptoken") {
			t.Errorf("a delta link was logged at %s: %s", entry.Level, line)
		}
	}
}

// Throttling, server errors and connection failures are retried as
// Graph asks; the sync reads the same as without faults.
func TestRetries(t *testing.T) {
	throttle := func(retryAfter func() string) func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
		return func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
			if attempt > 0 {
				return false
			}
			if ra := retryAfter(); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":{"code":"TooManyRequests","innerError":{"code":"429","message":"Please retry after","status":"429"},"message":"Please retry again later."}}`)
			return true
		}
	}
	hijack := func(w http.ResponseWriter, partial bool) {
		if partial {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "5000")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"value":[{"id":`)
			w.(http.Flusher).Flush()
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.Close()
	}
	tests := []struct {
		name    string
		fault   func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool
		minWait time.Duration // least throttle_wait per retry
		maxWait time.Duration // most throttle_wait per retry
	}{
		{name: "Retry-After fractional", fault: throttle(func() string { return "0.3" }), minWait: 300 * time.Millisecond, maxWait: 300 * time.Millisecond},
		// An HTTP date has whole seconds: 3s ahead is 2 to 3s ahead when
		// sent, and at least 1s when read even on a slow machine.
		{name: "Retry-After HTTP date", fault: throttle(func() string { return time.Now().Add(3 * time.Second).UTC().Format(http.TimeFormat) }),
			minWait: time.Second, maxWait: 3 * time.Second},
		{name: "no Retry-After: backoff", fault: throttle(func() string { return "" }), minWait: 10 * time.Millisecond, maxWait: 20 * time.Millisecond},
		{name: "503 then 504", maxWait: 40 * time.Millisecond,
			fault: func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
				switch attempt {
				case 0:
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(503)
					_, _ = io.WriteString(w, `{"error":{"code":"serviceNotAvailable","message":"Service unavailable"}}`)
				case 1:
					w.Header().Set("Content-Type", "text/html")
					w.WriteHeader(504)
					_, _ = io.WriteString(w, `<html>Gateway Timeout</html>`)
				default:
					return false
				}
				return true
			}},
		{name: "connection reset", maxWait: 20 * time.Millisecond,
			fault: func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
				if attempt > 0 {
					return false
				}
				hijack(w, false)
				return true
			}},
		{name: "body cut short", maxWait: 20 * time.Millisecond,
			fault: func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
				if attempt > 0 {
					return false
				}
				hijack(w, true)
				return true
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startCanned(t, cannedDirectory())
			g.fault = tt.fault
			c := New(nil)
			c.opts.backoffBase = 20 * time.Millisecond
			r := mustSync(t, c, &connectorv1.SyncRequest{Config: g.config(t, nil), GroupTypes: []string{"unified", "security"}})
			checkCannedFull(t, r)
			p := r.last.GetProgress()
			hits := g.takeHits()
			t.Logf("progress %v; %d requests served", p, len(hits))
			// net/http itself re-sends a request once when a reused
			// connection dies before any byte of the answer: then Graph
			// sees more attempts than the connector counts.
			served := int(p.GetRequests() + p.GetRetries())
			if p.GetRequests() != 4 || p.GetRetries() < 4 || served > len(hits) || (tt.name != "connection reset" && served != len(hits)) {
				t.Errorf("requests %d + retries %d, served %d: want 4 requests, each retried", p.GetRequests(), p.GetRetries(), len(hits))
			}
			perRetry := time.Duration(p.GetThrottleWaitMs()) * time.Millisecond / time.Duration(max(p.GetRetries(), 1))
			if perRetry < tt.minWait || perRetry > tt.maxWait {
				t.Errorf("waited %v per retry, want %v to %v", perRetry, tt.minWait, tt.maxWait)
			}
		})
	}
}

// A Graph that stays down fails the sync once retry_budget is spent, with
// Graph's code and message, the budget and what to do, and no final
// batch.
func TestRetryBudget(t *testing.T) {
	down := func(retryAfter string) func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
		return func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, `{"error":{"code":"serviceNotAvailable","message":"Service unavailable","innerError":{"request-id":"b3d019b0-f262-44f1-929f-2843e2bc57f9","date":"2019-04-16T11:48:44"}}}`)
			return true
		}
	}
	tests := []struct {
		name       string
		fault      func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool
		budget     string
		minElapsed time.Duration
		code       string
		detail     []string
	}{
		{name: "503 with backoff", fault: down(""), budget: "2s", minElapsed: 500 * time.Millisecond,
			code: CodeGraphUnavailable, detail: []string{"serviceNotAvailable", "Service unavailable", "retry_budget 2s", "b3d019b0"}},
		{name: "Retry-After beyond the budget", fault: down("120"), budget: "2s",
			code: CodeGraphUnavailable, detail: []string{"serviceNotAvailable", "after 1 attempt "}},
		{name: "connection refused", budget: "1s", code: CodeUnreachable,
			fault: func(w http.ResponseWriter, r *http.Request, key string, attempt int) bool {
				conn, _, _ := w.(http.Hijacker).Hijack()
				_ = conn.Close()
				return true
			}, detail: []string{"retry_budget 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startCanned(t, cannedDirectory())
			g.fault = tt.fault
			log, logs := logBuffer()
			c := New(log)
			c.opts.backoffBase = 200 * time.Millisecond
			start := time.Now()
			r, err := runSync(t, c, &connectorv1.SyncRequest{Config: g.config(t, map[string]any{"retry_budget": tt.budget})})
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("sync succeeded with Graph down")
			}
			t.Logf("after %v: %v", elapsed, err)
			// Batches with no objects report the retry waves; none may
			// carry objects or end the sync.
			for _, b := range r.batches {
				if len(b.GetUsers())+len(b.GetGroups())+len(b.GetMemberships()) > 0 || b.GetDone() {
					t.Errorf("a batch with objects or a final batch was sent: %v", b)
				}
			}
			// The last one, sent with the failure, counts what was tried:
			// the failed job's summary says it.
			if len(r.batches) == 0 {
				t.Fatal("no progress was sent before the failure")
			}
			if p := r.batches[len(r.batches)-1].GetProgress(); p.GetRequests() == 0 || (tt.minElapsed > 0 && p.GetRetries() == 0) || p.GetRetrying() != nil {
				t.Errorf("progress sent with the failure: %v", p)
			}
			var p *Problem
			var rbe *RetryBudgetError
			if !errors.As(err, &p) || p.Code != tt.code || !errors.As(err, &rbe) {
				t.Fatalf("want a %s Problem from a RetryBudgetError, got %#v", tt.code, err)
			}
			for _, d := range tt.detail {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("error does not mention %q", d)
				}
			}
			// Both readers meet the outage; the first to give up says so.
			if !strings.Contains(p.Remedy, "retry_budget") || !(strings.HasPrefix(err.Error(), "reading users: ") || strings.HasPrefix(err.Error(), "reading groups: ")) {
				t.Errorf("remedy %q", p.Remedy)
			}
			// The least time is the backoff's own sleeps (a sleep never ends
			// early); the guard tells the budget from the default 10m and
			// measures nothing closer than that.
			if elapsed < tt.minElapsed || elapsed > hangGuard {
				t.Errorf("failed after %v, want at least %v and within the retry budget", elapsed, tt.minElapsed)
			}
			assertNoSecrets(t, "log", logs.String())
		})
	}

	t.Run("canceled while waiting", func(t *testing.T) {
		g := startCanned(t, cannedDirectory())
		g.fault = down("300")
		c := New(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := c.Sync(ctx, &connectorv1.SyncRequest{Config: g.config(t, nil)}, func(*connectorv1.SyncBatch) error { return nil })
		if err == nil || time.Since(start) > hangGuard { // the wait was 5 minutes
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
		var p *Problem
		if !errors.As(err, &p) || p.Code != CodeCanceled {
			t.Errorf("want %s, got %v", CodeCanceled, err)
		}
	})
}
