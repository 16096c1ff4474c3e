package azuread

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Graph query settings of the full read.
const (
	pageSize          = 999 // Graph's maximum $top for users, groups and members
	memberConcurrency = 4   // groups whose members are read at once
	unifiedFilter     = "groupTypes/any(c:c eq 'Unified')"
	userODataType     = "#microsoft.graph.user"
)

// userSelect is the $select of the users listing.
func userSelect() []string {
	return []string{"id", "userPrincipalName", "mail", "displayName", "givenName", "surname", "department", "jobTitle", "accountEnabled", "userType", "assignedLicenses"}
}

// groupSelect is the $select of the groups listing.
func groupSelect() []string {
	return []string{"id", "displayName", "mail", "groupTypes", "mailEnabled", "securityEnabled"}
}

// ErrUnknownGroupType is wrapped by the error of a Sync whose
// SyncRequest.group_types names a kind that connector.GroupKinds does not
// list.
var ErrUnknownGroupType = errors.New("unknown group type")

// groupKinds is the set of group kinds (connector.GroupUnified, ...) a
// sync reads.
type groupKinds map[string]bool

// parseGroupKinds checks SyncRequest.group_types. Empty means
// [connector.GroupUnified]; repeats are harmless; names are matched
// exactly, as the import policy spells them.
func parseGroupKinds(names []string) (groupKinds, error) {
	if len(names) == 0 {
		return groupKinds{connector.GroupUnified: true}, nil
	}
	allowed := connector.GroupKinds()
	kinds := groupKinds{}
	for _, n := range names {
		if !slices.Contains(allowed, n) {
			return nil, fmt.Errorf("group_types: %w %q; allowed: %s", ErrUnknownGroupType, n, strings.Join(allowed, ", "))
		}
		kinds[n] = true
	}
	return kinds, nil
}

// unifiedOnly reports whether only Microsoft 365 groups are read, so that
// Graph can filter the groups listing.
func (k groupKinds) unifiedOnly() bool {
	return len(k) == 1 && k[connector.GroupUnified]
}

// names lists the kinds in the order of connector.GroupKinds.
func (k groupKinds) names() []string {
	var out []string
	for _, n := range connector.GroupKinds() {
		if k[n] {
			out = append(out, n)
		}
	}
	return out
}

// reader reads the directory into a batcher. It returns the cursor for
// the next sync and whether the read held the whole directory. The full
// reader is the only one today; a Graph delta reader (users/delta and
// groups/delta, cursor = delta links) fits beside it.
type reader interface {
	read(ctx context.Context, out *batcher) (cursor string, complete bool, err error)
}

// fullReader lists every user, every group of the requested kinds and
// the members of each of those groups.
type fullReader struct {
	g     *graphClient
	log   *zap.Logger
	kinds groupKinds
}

var _ reader = (*fullReader)(nil)

func (r *fullReader) read(ctx context.Context, out *batcher) (string, bool, error) {
	if err := r.readUsers(ctx, out); err != nil {
		return "", false, err
	}
	groupIDs, err := r.readGroups(ctx, out)
	if err != nil {
		return "", false, err
	}
	if err := r.readMembers(ctx, out, groupIDs); err != nil {
		return "", false, err
	}
	return "", true, nil
}

// fail explains err and wraps it with what was being done.
func (r *fullReader) fail(doing string, st stage, err error) error {
	var se *sendError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%s: %w", doing, explain(err, st, r.g.cfg, r.g.secret))
}

// collection is a page of a Graph collection response.
type collection[V any] interface {
	GetValue() []V
	GetOdataNextLink() *string
}

// forEachPage fetches the first page (nextLink "") and follows every
// @odata.nextLink verbatim, calling fn with each page's values.
func forEachPage[P collection[V], V any](ctx context.Context, st *stats, get func(ctx context.Context, nextLink string) (P, error), fn func(page int, values []V, more bool) error) error {
	next := ""
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		st.requests.Add(1)
		p, err := get(ctx, next)
		if err != nil {
			return err
		}
		if any(p) == nil {
			return fn(page, nil, false)
		}
		link := p.GetOdataNextLink()
		more := link != nil && *link != ""
		if err := fn(page, p.GetValue(), more); err != nil {
			return err
		}
		if !more {
			return nil
		}
		if *link == next {
			return fmt.Errorf("paging loops: the same @odata.nextLink came twice: %s", next)
		}
		next = *link
	}
}

func (r *fullReader) readUsers(ctx context.Context, out *batcher) error {
	out.setPhase(phaseUsers)
	r.log.Info("reading users")
	top := int32(pageSize)
	get := func(ctx context.Context, next string) (models.UserCollectionResponseable, error) {
		if next != "" {
			return r.g.sdk.Users().WithUrl(next).Get(ctx, nil)
		}
		return r.g.sdk.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Select: userSelect(), Top: &top},
		})
	}
	count := 0
	err := forEachPage(ctx, r.g.stats, get, func(page int, values []models.Userable, more bool) error {
		r.log.Debug("users page", zap.Int("page", page), zap.Int("users", len(values)), zap.Bool("more", more))
		for _, u := range values {
			if u == nil || deref(u.GetId()) == "" {
				r.log.Warn("skipping a user without an id")
				continue
			}
			if err := out.user(mapUser(u)); err != nil {
				return err
			}
			count++
		}
		return nil
	})
	if err != nil {
		return r.fail("reading users", stageUsers, err)
	}
	r.log.Info("read users", zap.Int("users", count), zap.Int64("requests", r.g.stats.requests.Load()))
	return nil
}

// readGroups emits the groups of the requested kinds and returns their
// IDs in order. When only Unified groups are requested, Graph filters the
// listing; otherwise every group is listed and classified here with
// connector.GroupKind.
func (r *fullReader) readGroups(ctx context.Context, out *batcher) ([]string, error) {
	out.setPhase(phaseGroups)
	unifiedOnly := r.kinds.unifiedOnly()
	r.log.Info("reading groups", zap.Strings("kinds", r.kinds.names()), zap.Bool("filtered", unifiedOnly))
	top := int32(pageSize)
	params := &groups.GroupsRequestBuilderGetQueryParameters{Select: groupSelect(), Top: &top}
	if unifiedOnly {
		filter := unifiedFilter
		params.Filter = &filter
	}
	get := func(ctx context.Context, next string) (models.GroupCollectionResponseable, error) {
		if next != "" {
			return r.g.sdk.Groups().WithUrl(next).Get(ctx, nil)
		}
		return r.g.sdk.Groups().Get(ctx, &groups.GroupsRequestBuilderGetRequestConfiguration{QueryParameters: params})
	}
	var ids []string
	seen := map[string]bool{}
	skipped := 0
	err := forEachPage(ctx, r.g.stats, get, func(page int, values []models.Groupable, more bool) error {
		r.log.Debug("groups page", zap.Int("page", page), zap.Int("groups", len(values)), zap.Bool("more", more))
		for _, g := range values {
			id := ""
			if g != nil {
				id = deref(g.GetId())
			}
			if id == "" {
				r.log.Warn("skipping a group without an id")
				continue
			}
			// Also when Graph filtered: never let another kind through.
			kind := connector.GroupKind(g.GetGroupTypes(), derefBool(g.GetMailEnabled()), derefBool(g.GetSecurityEnabled()))
			if !r.kinds[kind] {
				r.log.Debug("skipping a group of a kind not requested", zap.String("group", id), zap.String("kind", kind))
				skipped++
				continue
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			if err := out.group(mapGroup(g)); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, r.fail("reading groups", stageGroups, err)
	}
	r.log.Info("read groups", zap.Int("groups", len(ids)), zap.Int("skippedGroups", skipped), zap.Int64("requests", r.g.stats.requests.Load()))
	return ids, nil
}

// memberResult is the user members of one group.
type memberResult struct {
	users   []string
	skipped int
	err     error
}

// readMembers reads the members of the groups, memberConcurrency groups
// at a time, and emits them in the order of groupIDs.
func (r *fullReader) readMembers(ctx context.Context, out *batcher, groupIDs []string) error {
	out.setPhase(phaseMembers)
	r.log.Info("reading group members", zap.Int("groups", len(groupIDs)))
	ctx, cancel := context.WithCancel(ctx)

	results := make([]chan memberResult, len(groupIDs))
	for i := range results {
		results[i] = make(chan memberResult, 1)
	}
	// A slot is taken before a group's members are read and given back
	// when they were emitted, so at most memberConcurrency groups are read
	// or waiting in memory.
	slots := make(chan struct{}, memberConcurrency)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, id := range groupIDs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] <- r.groupMembers(ctx, id)
			}()
		}
	}()
	defer wg.Wait() // runs after cancel, deferred below
	defer cancel()

	users, skipped := 0, 0
	for i, id := range groupIDs {
		var res memberResult
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return r.fail("reading group members", stageMembers, ctx.Err())
		}
		<-slots
		if res.err != nil {
			return r.fail(fmt.Sprintf("reading the members of group %s", id), stageMembers, res.err)
		}
		out.skipMembers(res.skipped)
		if err := out.members(id, res.users); err != nil {
			return err
		}
		users += len(res.users)
		skipped += res.skipped
	}
	r.log.Info("read group members", zap.Int("groups", len(groupIDs)), zap.Int("userMembers", users),
		zap.Int("skippedMembers", skipped), zap.Int64("requests", r.g.stats.requests.Load()))
	return nil
}

// groupMembers reads every member of one group and keeps the users.
func (r *fullReader) groupMembers(ctx context.Context, groupID string) memberResult {
	top := int32(pageSize)
	get := func(ctx context.Context, next string) (models.DirectoryObjectCollectionResponseable, error) {
		b := r.g.sdk.Groups().ByGroupId(groupID).Members()
		if next != "" {
			return b.WithUrl(next).Get(ctx, nil)
		}
		return b.Get(ctx, &groups.ItemMembersRequestBuilderGetRequestConfiguration{
			QueryParameters: &groups.ItemMembersRequestBuilderGetQueryParameters{Select: []string{"id"}, Top: &top},
		})
	}
	var res memberResult
	err := forEachPage(ctx, r.g.stats, get, func(page int, values []models.DirectoryObjectable, more bool) error {
		r.log.Debug("members page", zap.String("group", groupID), zap.Int("page", page), zap.Int("members", len(values)), zap.Bool("more", more))
		for _, m := range values {
			if m == nil {
				continue
			}
			id := deref(m.GetId())
			if id == "" || !isUserMember(m) {
				res.skipped++
				continue
			}
			res.users = append(res.users, id)
		}
		return nil
	})
	if err != nil {
		if ge, ok := asGraphError(err); ok && ge.Status == 404 {
			// The group was deleted after it was listed; the next sync
			// sees it gone.
			r.log.Warn("group vanished while reading its members", zap.String("group", groupID))
			return memberResult{}
		}
		res.err = err
	}
	return res
}

// isUserMember reports whether a member is a user: the SDK builds a
// models.User for @odata.type #microsoft.graph.user.
func isUserMember(m models.DirectoryObjectable) bool {
	if _, ok := m.(models.Userable); ok {
		return true
	}
	return strings.EqualFold(deref(m.GetOdataType()), userODataType)
}

// derefBool is *b, or false for nil (a selected property Graph returned
// as null).
func derefBool(b *bool) bool {
	return b != nil && *b
}

// known returns a copy of a selected string property. In a full read every
// selected property was returned, so null means empty, not unknown.
func known(s *string) *string {
	v := deref(s)
	return &v
}

func copyBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

func mapUser(u models.Userable) *connectorv1.User {
	n := int32(len(u.GetAssignedLicenses()))
	return &connectorv1.User{
		Id:                   deref(u.GetId()),
		UserPrincipalName:    known(u.GetUserPrincipalName()),
		Mail:                 known(u.GetMail()),
		DisplayName:          known(u.GetDisplayName()),
		GivenName:            known(u.GetGivenName()),
		Surname:              known(u.GetSurname()),
		Department:           known(u.GetDepartment()),
		JobTitle:             known(u.GetJobTitle()),
		AccountEnabled:       copyBool(u.GetAccountEnabled()),
		UserType:             known(u.GetUserType()),
		AssignedLicenseCount: &n,
	}
}

func mapGroup(g models.Groupable) *connectorv1.Group {
	types := append([]string{}, g.GetGroupTypes()...)
	return &connectorv1.Group{
		Id:              deref(g.GetId()),
		DisplayName:     known(g.GetDisplayName()),
		Mail:            known(g.GetMail()),
		GroupTypes:      types,
		MailEnabled:     copyBool(g.GetMailEnabled()),
		SecurityEnabled: copyBool(g.GetSecurityEnabled()),
		GroupTypesKnown: true,
	}
}
