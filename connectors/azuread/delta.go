package azuread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Delta queries.
//
// Every sync is a delta round over /users/delta and /groups/delta: the
// initial round (no cursor, or a full sync) reads the whole directory and
// ends with two @odata.deltaLinks; a later round starts from them and
// reads only what changed. The cursor is those two links (see cursor).
//
// Transport and auth are the SDK's (the request adapter, its middleware
// and azidentity): each page is a RequestInformation built from the link
// and sent with SendPrimitive("[]byte"), which hands back the raw body.
// Decoding is ours, with encoding/json into structs of json.RawMessage:
// it is several times leaner than the SDK's typed models and, unlike
// them, tells a property that is absent (not changed: left absent in the
// User or Group sent) from one that is null (changed to nothing: sent as
// "" or 0).
//
// Memory is bounded by the page in hand: each page is decoded, sent in
// batches of at most connector.MaxBatchObjects and dropped. The only
// state kept across pages is one small entry per group seen in the round
// (its kind decision and which properties were sent), so that a group
// repeated across pages is merged by ID, in any order.

// Delta query settings.
const (
	// preferPageSize asks Graph for its largest delta pages (delta takes
	// no $top).
	preferPageSize = "odata.maxpagesize=999"
	// cursorVersion changes when the $select or the meaning of the cursor
	// changes: a cursor of another version makes a full resync. 2:
	// proxyAddresses selected, the attributes read recorded.
	cursorVersion = 2
	// maxFullRestarts bounds how often a full read that Graph answers with
	// "resync" (a skip token expired between two pages) starts over.
	maxFullRestarts = 1
)

// userSelect is the $select of users/delta: every property the import
// policy needs (proxyAddresses decides aliases and email_from =
// primary_smtp), and the properties of the attributes asked for.
func userSelect(attrs userAttrs) []string {
	return append([]string{"id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "department", "jobTitle",
		"accountEnabled", "userType", "assignedLicenses", "proxyAddresses"}, attrs.selectProps()...)
}

// groupSelect is the $select of groups/delta: what classifies a group
// (groupTypes, mailEnabled, securityEnabled) and its members.
func groupSelect() []string {
	return []string{"id", "displayName", "mail", "groupTypes", "mailEnabled", "securityEnabled", "members"}
}

// graphErrors maps every error status to Graph's OData error, as the
// SDK's own request builders do.
var graphErrors = abs.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// Resync reasons, as SyncBatch.resync_reason says them.
const (
	reasonCursorUnreadable = "the stored cursor is unreadable"
)

// cursor is the position of the next incremental sync, the opaque
// SyncBatch.cursor: JSON of the two delta links and what they were read
// for. Delta links are long: they are never logged above debug.
type cursor struct {
	V      int      `json:"v"`
	Tenant string   `json:"tenant"`
	Kinds  []string `json:"kinds"`
	// Attrs are the attributes the users link selects: a delta link keeps
	// the $select of the round that made it, so a sync asking for others
	// cannot go on from it.
	Attrs  userAttrs `json:"attrs,omitempty"`
	Users  string    `json:"users"`
	Groups string    `json:"groups"`
}

// encode returns the cursor as SyncBatch.cursor.
func (c *cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: strings only
		return ""
	}
	return string(b)
}

// parseCursor decodes a stored cursor and checks that it fits this sync.
// It returns nil and why when a full read is needed instead.
func parseCursor(s string, cfg *Config, kinds groupKinds, attrs userAttrs) (*cursor, string) {
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.V == 0 || c.Users == "" || c.Groups == "" {
		return nil, reasonCursorUnreadable
	}
	if c.V != cursorVersion {
		return nil, fmt.Sprintf("the stored cursor is of format %d, this connector version reads %d", c.V, cursorVersion)
	}
	if !strings.EqualFold(c.Tenant, cfg.Tenant) {
		return nil, fmt.Sprintf("the stored cursor is of tenant %q, the config names %q", c.Tenant, cfg.Tenant)
	}
	if want := kinds.names(); !slices.Equal(c.Kinds, want) {
		return nil, fmt.Sprintf("the group types to read changed from [%s] to [%s]", strings.Join(c.Kinds, ", "), strings.Join(want, ", "))
	}
	if !slices.Equal(c.Attrs, attrs) {
		return nil, fmt.Sprintf("the user attributes to read changed from [%s] to [%s]", c.Attrs, attrs)
	}
	for _, link := range []string{c.Users, c.Groups} {
		if err := checkLink(link, cfg); err != nil {
			return nil, "the stored cursor does not fit graph_url: " + err.Error()
		}
	}
	return &c, ""
}

// checkLink accepts a link to follow: an https URL on graph_url's host,
// the only host the token is sent to.
func checkLink(link string, cfg *Config) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("the link is not a URL: %w", err)
	}
	if host := cfg.graphHost(); u.Scheme != "https" || !strings.EqualFold(u.Host, host) {
		return fmt.Errorf("the link leads to %s://%s, not to graph_url's host %s", u.Scheme, u.Host, host)
	}
	return nil
}

// expiredError is Graph's answer that a delta or skip token can no longer
// be used: the round must start over from scratch.
type expiredError struct {
	reason string // for SyncBatch.resync_reason
	err    error
}

func (e *expiredError) Error() string { return e.reason }
func (e *expiredError) Unwrap() error { return e.err }

// asExpired recognizes an expired or invalid delta token: 410 Gone
// (with a Location header or an empty body), or Graph's error codes
// syncStateNotFound, syncStateInvalid and resyncRequired (400 or 410).
func asExpired(err error) (*expiredError, bool) {
	ge, ok := asGraphError(err)
	if !ok {
		return nil, false
	}
	code := ge.Code
	switch {
	case strings.EqualFold(code, "syncStateNotFound"), strings.EqualFold(code, "syncStateInvalid"), strings.EqualFold(code, "resyncRequired"):
	case ge.Status == http.StatusGone:
		if code == "" {
			code = "Gone"
		}
	default:
		return nil, false
	}
	return &expiredError{
		reason: fmt.Sprintf("the delta token expired (Graph %d %s); read the whole directory again", ge.Status, code),
		err:    err,
	}, true
}

// deltaReader reads delta rounds into a batcher.
type deltaReader struct {
	g     *graphClient
	log   *zap.Logger
	kinds groupKinds
	attrs userAttrs
}

// initialLinks are the first URLs of an initial round.
func (r *deltaReader) initialLinks() (users, groups string) {
	base := r.g.cfg.GraphURL
	return base + "/users/delta?$select=" + strings.Join(userSelect(r.attrs), ","),
		base + "/groups/delta?$select=" + strings.Join(groupSelect(), ",")
}

// round reads users then groups from the links of from, or from scratch
// when from is nil, and returns the cursor of the next round. An
// *expiredError means Graph refused a link of from (or a skip token) and
// the round must start over from scratch.
func (r *deltaReader) round(ctx context.Context, out *batcher, from *cursor) (*cursor, error) {
	users, groups := r.initialLinks()
	if from != nil {
		users, groups = from.Users, from.Groups
	}
	// The two chains do not depend on each other: reading them side by
	// side makes a round as long as the longer chain, not the sum, and a
	// Graph round trip of 50-100 ms per page is what decides that. A
	// failure of one reader stops the other.
	out.setPhase(phaseReading)
	var usersNext, groupsNext string
	var usersErr, groupsErr, first error
	var mu sync.Mutex
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	failed := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		stop()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if usersNext, usersErr = r.readUsers(rctx, out, users, from == nil); usersErr != nil {
			failed(usersErr)
		}
	}()
	go func() {
		defer wg.Done()
		if groupsNext, groupsErr = r.readGroups(rctx, out, groups); groupsErr != nil {
			failed(groupsErr)
		}
	}()
	wg.Wait()
	if err := roundError(first, usersErr, groupsErr); err != nil {
		return nil, err
	}
	return &cursor{V: cursorVersion, Tenant: r.g.cfg.Tenant, Kinds: r.kinds.names(), Attrs: r.attrs, Users: usersNext, Groups: groupsNext}, nil
}

// roundError picks the error a round reports when a reader failed: an
// expired token from either (the round becomes a full read), else the
// failure that came first, not the cancellation it caused in the other
// reader.
func roundError(first error, errs ...error) error {
	for _, err := range errs {
		if _, ok := asExpired(err); ok {
			return err
		}
	}
	return first
}

// deltaPage is one page of a delta response.
type deltaPage[T any] struct {
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
	Value     []T    `json:"value"`
}

// pages fetches link and follows every @odata.nextLink verbatim, calling
// fn with each page's objects; it returns the final @odata.deltaLink.
// Graph's failures come back explained (a *Problem), except an expired
// token (an *expiredError) and a failure of fn, which come back as they
// are.
func pages[T any](ctx context.Context, r *deltaReader, what string, st stage, link string, fn func(values []T) error) (string, error) {
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return "", r.fail("reading "+what, st, err)
		}
		if err := checkLink(link, r.g.cfg); err != nil {
			return "", fmt.Errorf("reading %s: not following Graph's link: %w", what, err)
		}
		body, err := r.fetch(ctx, link)
		if err != nil {
			if exp, ok := asExpired(err); ok {
				return "", exp
			}
			return "", r.fail("reading "+what, st, err)
		}
		var p deltaPage[T]
		if err := json.Unmarshal(body, &p); err != nil {
			return "", fmt.Errorf("reading %s: page %d is not a Graph delta response: %w", what, page, err)
		}
		body = nil // the decoded page is all that is kept
		more := p.NextLink != ""
		r.log.Debug("delta page", zap.String("of", what), zap.Int("page", page), zap.Int("objects", len(p.Value)), zap.Bool("more", more))
		if err := fn(p.Value); err != nil {
			return "", err
		}
		switch {
		case more && p.NextLink == link:
			return "", fmt.Errorf("reading %s: paging loops: Graph sent the same @odata.nextLink twice", what)
		case more:
			link = p.NextLink
		case p.DeltaLink != "":
			r.log.Debug("delta link", zap.String("of", what), zap.String("link", p.DeltaLink))
			return p.DeltaLink, nil
		default:
			return "", fmt.Errorf("reading %s: page %d has neither @odata.nextLink nor @odata.deltaLink", what, page)
		}
	}
}

// fetch GETs a Graph URL and returns the raw body.
func (r *deltaReader) fetch(ctx context.Context, link string) ([]byte, error) {
	ri, err := newRequest(abs.GET, link)
	if err != nil {
		return nil, err
	}
	ri.Headers.Add("Prefer", preferPageSize)
	return r.g.send(ctx, ri, false)
}

// newRequest is a request for a JSON answer from a Graph URL.
func newRequest(method abs.HttpMethod, link string) (*abs.RequestInformation, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, err
	}
	ri := abs.NewRequestInformation()
	ri.Method = method
	ri.SetUri(*u)
	ri.Headers.Add("Accept", "application/json")
	return ri, nil
}

// send sends a request through the SDK's request adapter (auth,
// middleware, retries; readOnly lets a POST that only reads, a JSON
// $batch of GETs, be retried) and returns the raw body. Its error quotes
// no URL query and says when the retry budget ran out.
func (g *graphClient) send(ctx context.Context, ri *abs.RequestInformation, readOnly bool) ([]byte, error) {
	info := &attemptInfo{readOnly: readOnly}
	res, err := g.adapter.SendPrimitive(withAttemptInfo(ctx, info), ri, "[]byte", graphErrors)
	if err != nil {
		// Transport errors quote the URL: keep its path only, as delta
		// and skip tokens are long and end up in the job's reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = withoutQuery(ue.URL)
		}
		if info.exhausted {
			rbe := &RetryBudgetError{Budget: g.cfg.RetryBudget, Attempts: info.attempts, Elapsed: info.elapsed, Err: err}
			if info.waitAsked {
				rbe.RetryAfter = info.nextWait
			}
			err = rbe
		}
		return nil, err
	}
	body, _ := res.([]byte)
	if len(body) == 0 {
		return nil, errors.New("graph answered with an empty body")
	}
	return body, nil
}

// withoutQuery returns a URL without its query (where tokens are).
func withoutQuery(link string) string {
	if i := strings.IndexByte(link, '?'); i >= 0 {
		return link[:i] + "?…"
	}
	return link
}

// fail explains err and wraps it with what was being done; a failure to
// send a batch is passed on as it is.
func (r *deltaReader) fail(doing string, st stage, err error) error {
	var se *sendError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, explain(err, st, r.g.cfg, r.g.secret))
}

// graphRemoval is the @removed annotation of a delta object.
type graphRemoval struct {
	Reason string `json:"reason"`
}

// removal maps @removed: "deleted" (permanent) or "changed" (soft
// deleted, restorable); an unknown or missing reason is taken as
// "changed", the one that loses nothing.
func removal(r *graphRemoval) *connectorv1.Removal {
	reason := strings.ToLower(r.Reason)
	if reason != "deleted" {
		reason = "changed"
	}
	return &connectorv1.Removal{Reason: reason}
}

// graphUser is a user of users/delta. Properties are raw so that absent
// (nil: not changed) differs from null ("null": changed to nothing).
type graphUser struct {
	ID                string          `json:"id"`
	UserPrincipalName json.RawMessage `json:"userPrincipalName"`
	Mail              json.RawMessage `json:"mail"`
	DisplayName       json.RawMessage `json:"displayName"`
	GivenName         json.RawMessage `json:"givenName"`
	Surname           json.RawMessage `json:"surname"`
	Department        json.RawMessage `json:"department"`
	JobTitle          json.RawMessage `json:"jobTitle"`
	AccountEnabled    json.RawMessage `json:"accountEnabled"`
	UserType          json.RawMessage `json:"userType"`
	AssignedLicenses  json.RawMessage `json:"assignedLicenses"`
	ProxyAddresses    json.RawMessage `json:"proxyAddresses"`
	Removed           *graphRemoval   `json:"@removed"`

	// The attributes (see attributes.go), selected only when asked for.
	PreferredLanguage   json.RawMessage `json:"preferredLanguage"`
	EmployeeID          json.RawMessage `json:"employeeId"`
	EmployeeType        json.RawMessage `json:"employeeType"`
	CompanyName         json.RawMessage `json:"companyName"`
	OfficeLocation      json.RawMessage `json:"officeLocation"`
	City                json.RawMessage `json:"city"`
	Country             json.RawMessage `json:"country"`
	UsageLocation       json.RawMessage `json:"usageLocation"`
	MobilePhone         json.RawMessage `json:"mobilePhone"`
	ExtensionAttributes json.RawMessage `json:"onPremisesExtensionAttributes"`
	Manager             json.RawMessage `json:"manager@delta"`
}

// isNull reports a JSON null.
func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// optString maps a raw string property: absent → nil, null → "".
func optString(name string, raw json.RawMessage) (*string, error) {
	if raw == nil {
		return nil, nil
	}
	s := ""
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s is not a string: %w", name, err)
		}
	}
	return &s, nil
}

// optBool maps a raw boolean property: absent or null → nil.
func optBool(name string, raw json.RawMessage) (*bool, error) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s is not a boolean: %w", name, err)
	}
	return &b, nil
}

// optCount maps a raw collection to its length: absent → nil, null → 0.
func optCount(name string, raw json.RawMessage) (*int32, error) {
	if raw == nil {
		return nil, nil
	}
	var items []json.RawMessage
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("%s is not a collection: %w", name, err)
		}
	}
	n := int32(len(items))
	return &n, nil
}

// mapUser turns a delta user into a User holding exactly the properties
// Graph sent, and of the attributes those of attrs. full says the user
// comes from a full read (see userAttrs.decode).
func mapUser(u *graphUser, attrs userAttrs, full bool) (*connectorv1.User, error) {
	out := &connectorv1.User{Id: u.ID}
	if u.Removed != nil {
		out.Removed = removal(u.Removed)
		return out, nil
	}
	var errs []error
	str := func(dst **string, name string, raw json.RawMessage) {
		v, err := optString(name, raw)
		*dst = v
		errs = append(errs, err)
	}
	str(&out.UserPrincipalName, "userPrincipalName", u.UserPrincipalName)
	str(&out.Mail, "mail", u.Mail)
	str(&out.DisplayName, "displayName", u.DisplayName)
	str(&out.GivenName, "givenName", u.GivenName)
	str(&out.Surname, "surname", u.Surname)
	str(&out.Department, "department", u.Department)
	str(&out.JobTitle, "jobTitle", u.JobTitle)
	str(&out.UserType, "userType", u.UserType)
	var err error
	out.AccountEnabled, err = optBool("accountEnabled", u.AccountEnabled)
	errs = append(errs, err)
	out.AssignedLicenseCount, err = optCount("assignedLicenses", u.AssignedLicenses)
	errs = append(errs, err)
	out.ProxyAddresses, out.ProxyAddressesKnown, err = proxyAddresses(u.ProxyAddresses)
	errs = append(errs, err)
	out.Attributes, err = attrs.decode(u, full)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("user %s: %w", u.ID, err)
	}
	setNeutral(out)
	return out, nil
}

// setNeutral sets the neutral fields of connector.v1 from Entra's, where
// the change carries what they need (an incremental change carries only
// what changed): enabled is accountEnabled, licensed is a licence count
// above 0, and a guest has userType Guest or an invited guest's UPN
// (#EXT#), which Entra gives guests invited before userType existed.
func setNeutral(u *connectorv1.User) {
	u.Enabled = u.AccountEnabled
	if n := u.AssignedLicenseCount; n != nil {
		u.Licensed = proto.Bool(*n > 0)
	}
	extUPN := u.UserPrincipalName != nil && strings.Contains(strings.ToUpper(*u.UserPrincipalName), "#EXT#")
	switch {
	case extUPN || (u.UserType != nil && strings.EqualFold(*u.UserType, "Guest")):
		u.Guest = proto.Bool(true)
	case u.UserType != nil:
		u.Guest = proto.Bool(false)
	}
}

// readUsers reads users/delta from link and sends every user; full says
// the link starts a full read.
func (r *deltaReader) readUsers(ctx context.Context, out *batcher, link string, full bool) (string, error) {
	r.log.Info("reading users")
	n, removed := 0, 0
	next, err := pages(ctx, r, "users", stageUsers, link, func(values []graphUser) error {
		for i := range values {
			u := &values[i]
			if !isGUID(u.ID) {
				rejectObject(out, r.log, RejectIDNotGUID, "user", u.ID)
				continue
			}
			m, err := mapUser(u, r.attrs, full)
			if err != nil {
				return fmt.Errorf("reading users: %w", err)
			}
			if m.Removed != nil {
				removed++
			}
			if err := out.user(m); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	r.log.Info("read users", zap.Int("users", n), zap.Int("removed", removed), zap.Int64("requests", r.g.stats.requests.Load()))
	return next, nil
}

// graphGroup is a group of groups/delta, its properties raw (see
// graphUser).
type graphGroup struct {
	ID              string          `json:"id"`
	DisplayName     json.RawMessage `json:"displayName"`
	Mail            json.RawMessage `json:"mail"`
	GroupTypes      json.RawMessage `json:"groupTypes"`
	MailEnabled     json.RawMessage `json:"mailEnabled"`
	SecurityEnabled json.RawMessage `json:"securityEnabled"`
	Members         []graphMember   `json:"members@delta"`
	Removed         *graphRemoval   `json:"@removed"`
}

// graphMember is an entry of members@delta: a member added, or removed
// when it has @removed.
type graphMember struct {
	ODataType string        `json:"@odata.type"`
	ID        string        `json:"id"`
	Removed   *graphRemoval `json:"@removed"`
}

// Properties of a Group, as bits of groupState.sent.
const (
	propDisplayName uint8 = 1 << iota
	propMail
	propGroupTypes
	propMailEnabled
	propSecurityEnabled
)

// mapGroup turns a delta group (not a removed one) into a Group holding
// exactly the properties Graph sent, and returns which ones.
func mapGroup(g *graphGroup) (*connectorv1.Group, uint8, error) {
	out := &connectorv1.Group{Id: g.ID}
	var props uint8
	var errs []error
	var err error
	if out.DisplayName, err = optString("displayName", g.DisplayName); out.DisplayName != nil {
		props |= propDisplayName
	}
	errs = append(errs, err)
	if out.Mail, err = optString("mail", g.Mail); out.Mail != nil {
		props |= propMail
	}
	errs = append(errs, err)
	if g.GroupTypes != nil {
		if !isNull(g.GroupTypes) {
			errs = append(errs, json.Unmarshal(g.GroupTypes, &out.GroupTypes))
		}
		out.GroupTypesKnown = true
		props |= propGroupTypes
	}
	if out.MailEnabled, err = optBool("mailEnabled", g.MailEnabled); out.MailEnabled != nil {
		props |= propMailEnabled
	}
	errs = append(errs, err)
	if out.SecurityEnabled, err = optBool("securityEnabled", g.SecurityEnabled); out.SecurityEnabled != nil {
		props |= propSecurityEnabled
	}
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, 0, fmt.Errorf("group %s: %w", g.ID, err)
	}
	if kind, ok := groupKindOf(out); ok && kind != "" {
		out.Kind = &kind
	}
	return out, props, nil
}

// groupKindOf returns the kind of a group from the properties it carries,
// or ok = false when they do not tell: groupTypes with "Unified" tells on
// its own; otherwise groupTypes, mailEnabled and securityEnabled are all
// needed.
func groupKindOf(g *connectorv1.Group) (kind string, ok bool) {
	if !g.GetGroupTypesKnown() {
		return "", false
	}
	if k := entraKind(g.GetGroupTypes(), false, false); k == connector.GroupUnified {
		return k, true
	}
	if g.MailEnabled == nil || g.SecurityEnabled == nil {
		return "", false
	}
	return entraKind(g.GetGroupTypes(), g.GetMailEnabled(), g.GetSecurityEnabled()), true
}

// Kind decisions of groupState.
const (
	undecided int8 = iota
	keep
	drop
)

// groupState is what a round remembers of a group it saw, to merge the
// group's fragments across pages.
type groupState struct {
	decision int8
	sent     uint8 // properties already sent in a Group message
}

// groupRound merges the fragments of the groups of one round.
//
// Kind filter. delta takes no $filter, so every group comes and the
// round keeps the kinds asked for, classifying each group with
// entraKind as soon as a fragment carries what that needs
// (always, in an initial round, where Graph sends every selected
// property). The decision is remembered for the group's later fragments
// in the round. A group that cannot be classified (an incremental change
// of its displayName only, a change of its members only, its removal) is
// sent anyway, with group_types_known = false and only the properties
// Graph sent; the daemon merges it with what it stored and filters by
// kind itself. So the memberships sent are those of groups kept or not
// classifiable; the memberships of groups of other kinds are dropped.
//
// Merging. A Group message is sent when a fragment brings a property not
// sent yet for the group in this round (so a group repeated across pages
// with the same properties is sent once, and a member-only fragment
// sends no Group); members@delta of every fragment are sent as they come,
// as the contract lets Memberships of one group add up.
type groupRound struct {
	kinds   groupKinds
	seen    map[string]*groupState
	dropped int // groups not of the kinds asked for
	sent    int // Group messages
	// log tells of the first members rejected; nil logs nothing.
	log *zap.Logger
}

func (gr *groupRound) add(out *batcher, g *graphGroup) error {
	st := gr.seen[g.ID]
	if st == nil {
		st = &groupState{}
		gr.seen[g.ID] = st
	}
	if g.Removed != nil {
		if st.decision == drop {
			return nil
		}
		gr.sent++
		return out.group(&connectorv1.Group{Id: g.ID, Removed: removal(g.Removed)})
	}
	grp, props, err := mapGroup(g)
	if err != nil {
		return fmt.Errorf("reading groups: %w", err)
	}
	if kind, ok := groupKindOf(grp); ok && st.decision == undecided {
		st.decision = keep
		if !gr.kinds[kind] {
			st.decision = drop
			gr.dropped++
		}
	}
	if st.decision == drop {
		return nil
	}
	if props&^st.sent != 0 {
		st.sent |= props
		gr.sent++
		if err := out.group(grp); err != nil {
			return err
		}
	}
	ch, skipped := gr.memberChanges(out, g)
	out.skipMembers(skipped)
	return out.members(g.ID, ch)
}

// memberChanges sorts a group's members@delta into user and group
// members added and removed, and counts the members of other types
// (devices, contacts, service principals), which are skipped. Group
// members are passed on for the host to expand nesting; a group of a
// kind not asked for is passed on too, as the host expands through the
// groups it holds and asks for every kind when nesting crosses kinds.
func (gr *groupRound) memberChanges(out *batcher, g *graphGroup) (ch memberChanges, skipped int) {
	for _, m := range g.Members {
		isUser := strings.EqualFold(m.ODataType, userODataType)
		isGroup := strings.EqualFold(m.ODataType, groupODataType)
		switch {
		case m.ID == "":
			rejectObject(out, gr.log, RejectMemberWithoutID, "member of group "+g.ID, "")
		case !isGUID(m.ID):
			rejectObject(out, gr.log, RejectIDNotGUID, "member of group "+g.ID, m.ID)
		case m.Removed != nil && m.ODataType == "":
			// A removal without a type is passed on as both: removing a
			// user or group that is no member changes nothing.
			ch.removedUsers = append(ch.removedUsers, m.ID)
			ch.removedGroups = append(ch.removedGroups, m.ID)
		case isUser && m.Removed != nil:
			ch.removedUsers = append(ch.removedUsers, m.ID)
		case isUser:
			ch.addedUsers = append(ch.addedUsers, m.ID)
		case isGroup && m.Removed != nil:
			ch.removedGroups = append(ch.removedGroups, m.ID)
		case isGroup:
			ch.addedGroups = append(ch.addedGroups, m.ID)
		default:
			skipped++
		}
	}
	return ch, skipped
}

// maxRejectLogs is how many objects of one reject reason a sync logs; the
// others are only counted (Progress.rejected), so that a hostile page
// cannot flood the log.
const maxRejectLogs = 5

// rejectObject drops an object Graph sent that fails the connector's
// checks: it counts it under reason and logs the first few. what names
// the object ("user", "member of group <id>"); id is quoted clipped, as
// it is untrusted.
func rejectObject(out *batcher, log *zap.Logger, reason, what, id string) {
	n := out.reject(reason, 1)
	if log == nil || n > maxRejectLogs {
		return
	}
	msg := "dropping a " + what + " whose id is not a GUID"
	if reason == RejectMemberWithoutID {
		msg = "dropping a " + what + " without an id"
	}
	if n == maxRejectLogs {
		msg += "; further ones are only counted"
	}
	log.Warn(msg, zap.String("reason", reason), zap.String("id", clip(id, 80)))
}

// clip returns at most n bytes of s, as valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.ToValidUTF8(s, "\ufffd")
}

// readGroups reads groups/delta (with members) from link and sends the
// groups and membership changes to keep (see groupRound).
func (r *deltaReader) readGroups(ctx context.Context, out *batcher, link string) (string, error) {
	r.log.Info("reading groups and members", zap.Strings("kinds", r.kinds.names()))
	gr := &groupRound{kinds: r.kinds, seen: map[string]*groupState{}, log: r.log}
	next, err := pages(ctx, r, "groups", stageGroups, link, func(values []graphGroup) error {
		for i := range values {
			g := &values[i]
			if !isGUID(g.ID) {
				// Its members go with it, uncounted.
				rejectObject(out, r.log, RejectIDNotGUID, "group", g.ID)
				continue
			}
			if err := gr.add(out, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	p, _ := out.snapshot()
	r.log.Info("read groups and members", zap.Int("groupsSeen", len(gr.seen)), zap.Int("groupsSent", gr.sent),
		zap.Int("otherKinds", gr.dropped), zap.Int64("memberships", p.Memberships),
		zap.Int64("skippedMembers", p.SkippedMembers), zap.Int64("requests", r.g.stats.requests.Load()))
	return next, nil
}
