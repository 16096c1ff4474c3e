package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Fake is an in-memory directory served as a connector, which the suite
// drives to test itself: it keeps a change log, so a cursor is a position
// in it and an incremental read sends what changed since. Its config is
// {"secret": "..."}, which must equal Secret. Break makes it break one
// rule on purpose.
type Fake struct {
	// Secret is the password the fake directory accepts.
	Secret string
	// Break names the rule the fake breaks ("" for none): see Breakages.
	Break string

	mu      sync.Mutex
	users   map[string]*connectorv1.User
	groups  map[string]*connectorv1.Group
	members map[string][]string // group ID -> user IDs
	log     []logEntry
	epoch   int  // a cursor of an older epoch is refused
	restart bool // the next read is refused part way once
}

// logEntry is one change: the object's ID, whether it is a group.
type logEntry struct {
	id    string
	group bool
}

// The rules a broken Fake breaks, one per Breakage; the suite must fail
// each.
const (
	BreakAfterFinal     = "batch_after_final"
	BreakRemovedInFull  = "removed_in_full_read"
	BreakOversized      = "oversized_batch"
	BreakIgnoresCursor  = "ignores_cursor"
	BreakLeaksSecret    = "leaks_secret"
	BreakIgnoresCancel  = "ignores_cancel"
	BreakNoResyncReason = "no_resync_reason"
	BreakNoNeutral      = "no_neutral_fields"
	BreakSwallowsSend   = "swallows_send_error"
	BreakFullRestart    = "restart_with_objects"
)

// Breakages lists every Break value.
func Breakages() []string {
	return []string{BreakAfterFinal, BreakRemovedInFull, BreakOversized, BreakIgnoresCursor, BreakLeaksSecret,
		BreakIgnoresCancel, BreakNoResyncReason, BreakNoNeutral, BreakSwallowsSend, BreakFullRestart}
}

// fakeBatch is the fake's batch size: small, so that a few hundred users
// take several batches.
const fakeBatch = 100

// NewFake returns a fake directory of n users (user<i>@fake.example) and
// three groups, the first two security groups holding every other user,
// the third a distribution group holding none.
func NewFake(secret string, n int) *Fake {
	f := &Fake{Secret: secret, users: map[string]*connectorv1.User{}, groups: map[string]*connectorv1.Group{}, members: map[string][]string{}}
	for i := 1; i <= n; i++ {
		f.users[FakeUserID(i)] = fakeUser(i)
	}
	for g := 1; g <= 3; g++ {
		kind := connector.GroupSecurity
		if g == 3 {
			kind = connector.GroupDistribution
		}
		id := fakeGroupID(g)
		f.groups[id] = &connectorv1.Group{Id: id, DisplayName: proto.String(fmt.Sprintf("Fake Group %d", g)), Kind: proto.String(kind)}
		if g < 3 {
			for i := g; i <= n; i += 2 {
				f.members[id] = append(f.members[id], FakeUserID(i))
			}
		}
	}
	return f
}

// FakeUserID is the ID of the fake's user i.
func FakeUserID(i int) string { return fmt.Sprintf("fa4e0000-0000-4000-8000-%012d", i) }

func fakeGroupID(g int) string { return fmt.Sprintf("fa4e6000-0000-4000-8000-%012d", g) }

func fakeUser(i int) *connectorv1.User {
	mail := fmt.Sprintf("user%d@fake.example", i)
	return &connectorv1.User{Id: FakeUserID(i), Mail: &mail, DisplayName: proto.String(fmt.Sprintf("Fake User %d", i)),
		Enabled: proto.Bool(true), Guest: proto.Bool(false)}
}

// Config returns the fake's config block with secret.
func (f *Fake) Config(secret string) *connectorv1.Config {
	b, _ := json.Marshal(map[string]string{"secret": secret})
	return &connectorv1.Config{Json: b}
}

// Change hires user n (new), renames user 1, and deletes user 2: what
// Harness.Change does.
func (f *Fake) Change() (Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	hire := len(f.users) + 100
	f.users[FakeUserID(hire)] = fakeUser(hire)
	f.users[FakeUserID(1)].DisplayName = proto.String("Renamed User 1")
	delete(f.users, FakeUserID(2))
	f.log = append(f.log, logEntry{id: FakeUserID(hire)}, logEntry{id: FakeUserID(1)}, logEntry{id: FakeUserID(2)})
	return Changes{Users: []string{FakeUserID(hire), FakeUserID(1)}, RemovedUsers: []string{FakeUserID(2)}, Groups: []string{}, RemovedGroups: []string{}}, nil
}

// InvalidateCursor refuses every cursor issued so far.
func (f *Fake) InvalidateCursor(cursor string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	return cursor, nil
}

// ForceRestart makes the next read fail part way once.
func (f *Fake) ForceRestart() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restart = true
	return nil
}

// Describe implements connector.Connector.
func (f *Fake) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	return &connectorv1.DescribeResponse{Name: "fake", Description: "An in-memory directory for the conformance suite's own tests.", Version: "0.0.1",
		ConfigFields: []*connectorv1.ConfigField{{Name: "secret", Type: connectorv1.ConfigField_TYPE_STRING, Required: true, Sensitive: true,
			Description: "The password the fake directory accepts."}},
		DefaultGroupKinds: []string{connector.GroupSecurity, connector.GroupDistribution}}, nil
}

func (f *Fake) secretOf(cfg *connectorv1.Config) (string, error) {
	var c struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(cfg.GetJson(), &c); err != nil || c.Secret == "" {
		return "", errors.New("secret: required")
	}
	return c.Secret, nil
}

// ValidateConfig implements connector.Connector.
func (f *Fake) ValidateConfig(_ context.Context, cfg *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	if _, err := f.secretOf(cfg); err != nil {
		return []*connectorv1.ConfigProblem{{Field: "secret", Message: "required"}}, nil
	}
	return nil, nil
}

// login checks the config's secret.
func (f *Fake) login(cfg *connectorv1.Config) error {
	s, err := f.secretOf(cfg)
	if err != nil {
		return err
	}
	if s != f.Secret {
		if f.Break == BreakLeaksSecret {
			return fmt.Errorf("the fake directory refused the secret %q", s)
		}
		return errors.New("the fake directory refused the secret: set the right one")
	}
	return nil
}

// TestConnection implements connector.Connector.
func (f *Fake) TestConnection(_ context.Context, cfg *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	if err := f.login(cfg); err != nil {
		return &connectorv1.TestConnectionResponse{Checks: []*connectorv1.Check{{Name: "login", Detail: err.Error(),
			Remedy: "Set the secret the fake directory accepts.", Code: "wrong_secret"}}}, nil
	}
	return &connectorv1.TestConnectionResponse{Ok: true, Checks: []*connectorv1.Check{{Name: "login", Ok: true, Detail: "logged in"}}}, nil
}

// snapshot is what one read sends, taken under the lock.
type snapshot struct {
	users   []*connectorv1.User
	removed []string
	groups  []*connectorv1.Group
	members map[string][]string
	pos     int
	full    bool
	resync  string
	restart bool
}

func (f *Fake) read(req *connectorv1.SyncRequest) snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := snapshot{pos: len(f.log), full: true, members: map[string][]string{}}
	s.restart, f.restart = f.restart, false
	if c := req.GetCursor(); c != "" && !req.GetFull() {
		epoch, pos, ok := parseFakeCursor(c)
		switch {
		case !ok || epoch != f.epoch || pos > len(f.log):
			if f.Break != BreakNoResyncReason {
				s.resync = "the fake directory refused the cursor: it was issued before the directory was reset"
			}
		case f.Break == BreakIgnoresCursor:
			s.full = false
		default:
			s.full = false
			seen := map[string]bool{}
			for _, e := range f.log[pos:] {
				if seen[e.id] || e.group {
					continue
				}
				seen[e.id] = true
				if u, ok := f.users[e.id]; ok {
					s.users = append(s.users, proto.Clone(u).(*connectorv1.User))
				} else {
					s.removed = append(s.removed, e.id)
				}
			}
			return s
		}
	}
	for _, id := range slices.Sorted(maps.Keys(f.users)) {
		u := proto.Clone(f.users[id]).(*connectorv1.User)
		if f.Break == BreakNoNeutral {
			u.Enabled, u.Guest = nil, nil
		}
		s.users = append(s.users, u)
	}
	kinds := req.GetGroupTypes()
	for _, id := range slices.Sorted(maps.Keys(f.groups)) {
		g := f.groups[id]
		if len(kinds) > 0 && !slices.Contains(kinds, g.GetKind()) {
			continue
		}
		s.groups = append(s.groups, proto.Clone(g).(*connectorv1.Group))
		s.members[id] = slices.Clone(f.members[id])
	}
	return s
}

func parseFakeCursor(c string) (epoch, pos int, ok bool) {
	e, p, found := strings.Cut(strings.TrimPrefix(c, "fake:"), ":")
	if !found || !strings.HasPrefix(c, "fake:") {
		return 0, 0, false
	}
	epoch, err1 := strconv.Atoi(e)
	pos, err2 := strconv.Atoi(p)
	return epoch, pos, err1 == nil && err2 == nil && pos >= 0
}

// Sync implements connector.Connector.
func (f *Fake) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	if err := f.login(req.GetConfig()); err != nil {
		return err
	}
	s := f.read(req)
	f.mu.Lock()
	epoch := f.epoch
	f.mu.Unlock()
	var batches []*connectorv1.SyncBatch
	if s.restart {
		// The directory refused the read after a first batch.
		batches = append(batches, &connectorv1.SyncBatch{Users: s.users[:min(len(s.users), fakeBatch)]}, &connectorv1.SyncBatch{Restart: true})
		if f.Break == BreakFullRestart {
			batches[1].Users = s.users[:1]
		}
	}
	size := fakeBatch
	if f.Break == BreakOversized && len(s.users) > 0 {
		// One batch over the bound: the users, repeated.
		var big []*connectorv1.User
		for len(big) <= connector.MaxBatchObjects {
			big = append(big, s.users...)
		}
		batches = append(batches, &connectorv1.SyncBatch{Users: big})
	}
	for start := 0; start < len(s.users); start += size {
		batches = append(batches, &connectorv1.SyncBatch{Users: s.users[start:min(start+size, len(s.users))],
			Progress: &connectorv1.Progress{Phase: "reading users", Users: int64(min(start+size, len(s.users))), Requests: int64(start/size + 1)}})
	}
	for _, id := range s.removed {
		batches = append(batches, &connectorv1.SyncBatch{Users: []*connectorv1.User{{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}}})
	}
	if f.Break == BreakRemovedInFull && s.full && len(s.users) > 0 {
		batches = append(batches, &connectorv1.SyncBatch{Users: []*connectorv1.User{{Id: s.users[0].GetId(), Removed: &connectorv1.Removal{Reason: "deleted"}}}})
	}
	if len(s.groups) > 0 {
		b := &connectorv1.SyncBatch{Groups: s.groups}
		for _, g := range s.groups {
			if ids := s.members[g.GetId()]; len(ids) > 0 {
				b.Memberships = append(b.Memberships, &connectorv1.Membership{GroupId: g.GetId(), AddedUserIds: ids})
			}
		}
		batches = append(batches, b)
	}
	batches = append(batches, &connectorv1.SyncBatch{Done: true, Complete: s.full, ResyncReason: s.resync,
		Cursor: fmt.Sprintf("fake:%d:%d", epoch, s.pos)})
	if f.Break == BreakAfterFinal {
		batches = append(batches, &connectorv1.SyncBatch{})
	}
	for _, b := range batches {
		if f.Break != BreakIgnoresCancel {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("fake: %w", err)
			}
		}
		if err := send(b); err != nil && f.Break != BreakSwallowsSend {
			return fmt.Errorf("fake: %w", err)
		}
	}
	return nil
}
