package ldap

import (
	"context"
	"errors"
	"fmt"
	"slices"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Sync implements connector.Connector: a full read of the users and
// groups under base_dn, with each group's members expanded through nested
// groups.
//
// Nested groups are expanded in memory, from the member DNs of the groups
// the read returns, with cycle protection, for both flavors: the read
// needs every group's members anyway, so this costs no request, where
// Active Directory's in-chain matching rule (1.2.840.113556.1.4.1941)
// would cost one search per group. A member that is neither a user nor a
// group of the read (a contact, a computer, an entry outside base_dn or
// the filters) is skipped and counted (Progress.skipped_members).
func (c *Connector) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	cfg, err := ParseConfig(req.GetConfig())
	if err != nil {
		return fmt.Errorf("ldap: the config is invalid: %w", err)
	}
	kinds, err := groupKinds(req.GetGroupTypes())
	if err != nil {
		return err
	}
	s, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.close()
	log := c.log.With(zap.String("job", req.GetJobId()), zap.String("flavor", string(s.flavor)))
	dec := cfg.Decoder(s.flavor)
	dec.WantAttributes(req.GetAttributes())
	dec.MailboxPurpose = req.GetMailboxPurpose()
	r := &dirReader{s: s, dec: dec, kinds: kinds, out: &batcher{send: send}, log: log}
	r.out.progress = r.progress
	last, err := r.read(ctx, req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return err
	}
	return r.out.finish(last)
}

// read reads the changes since the request's cursor, or everything (with
// the reason when the cursor could not be used), and returns the final
// batch.
func (r *dirReader) read(ctx context.Context, req *connectorv1.SyncRequest) (*connectorv1.SyncBatch, error) {
	var resync string
	if c := req.GetCursor(); c != "" && !req.GetFull() {
		reason, next, err := r.incremental(ctx, c)
		if err != nil {
			return nil, err
		}
		if reason == "" {
			r.phase = "done"
			return &connectorv1.SyncBatch{Done: true, Cursor: next.String()}, nil
		}
		r.log.Info("reading the whole directory: the cursor cannot be used", zap.String("reason", reason))
		resync = reason
	}
	mark, err := r.mark(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.full(ctx); err != nil {
		return nil, err
	}
	return &connectorv1.SyncBatch{Done: true, Complete: true, Cursor: mark.String(), ResyncReason: resync}, nil
}

// groupKinds checks SyncRequest.group_types: empty means the connector's
// default kinds (security and distribution).
func groupKinds(names []string) (map[string]bool, error) {
	if len(names) == 0 {
		names = []string{connector.GroupSecurity, connector.GroupDistribution}
	}
	out := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(connector.GroupKinds(), n) {
			return nil, fmt.Errorf("ldap: group_types: unknown group kind %q; allowed: %v", n, connector.GroupKinds())
		}
		out[n] = true
	}
	return out, nil
}

// dirReader is one sync's read of the directory.
type dirReader struct {
	s     *session
	dec   *Decoder
	kinds map[string]bool
	out   *batcher
	log   *zap.Logger
	tally Tally

	phase                 string
	users, groups, member int64
	skipped               int64
}

// progress is the Progress of the next batch.
func (r *dirReader) progress() *connectorv1.Progress {
	p := &connectorv1.Progress{Phase: r.phase, Users: r.users, Groups: r.groups, Memberships: r.member,
		Requests: r.s.requests, SkippedMembers: r.skipped}
	r.tally.Fill(p)
	return p
}

// node is a group of the read: its ID and its members' DN keys.
type node struct {
	id      string
	members []string
	keep    bool // of a kind the sync asked for
}

// full reads every user, then every group with its members, and sends
// them.
func (r *dirReader) full(ctx context.Context) error {
	userByDN := map[string]string{}
	var managers []managerRef
	disabled, err := r.disabledSet(ctx)
	if err != nil {
		return err
	}
	r.phase = "reading users"
	err = r.s.searchPages(ctx, StageUsers, r.s.cfg.UserFilter(r.s.flavor), r.dec.UserAttributes(), func(e *goldap.Entry) error {
		var opts EntryOptions
		if disabled != nil {
			d := disabled[normalOrRaw(e.DN)]
			opts.Disabled = &d
		}
		u, ok := r.dec.User(e, opts, &r.tally)
		if !ok || u.GetRemoved() != nil {
			return nil
		}
		userByDN[normalOrRaw(e.DN)] = u.GetId()
		if ref, ok := takeManager(u); ok {
			managers = append(managers, ref)
		}
		r.users++
		return r.out.user(u)
	})
	if err != nil {
		return err
	}
	if err := r.resolveManagers(ctx, managers, userByDN); err != nil {
		return err
	}
	r.phase = "reading groups"
	groups := map[string]*node{} // by DN key
	var order []string
	err = r.s.searchPages(ctx, StageGroups, r.s.cfg.GroupFilter(r.s.flavor), r.dec.GroupAttributes(), func(e *goldap.Entry) error {
		g, ok := r.dec.Group(e, EntryOptions{}, &r.tally)
		if !ok || g.GetRemoved() != nil {
			return nil
		}
		m, err := r.allMembers(ctx, e)
		if err != nil {
			return err
		}
		n := &node{id: g.GetId(), keep: r.kinds[g.GetKind()]}
		for _, dn := range m {
			key, err := NormalizeDN(dn)
			if err != nil {
				r.tally.Reject(RejectMemberDNInvalid)
				continue
			}
			n.members = append(n.members, key)
		}
		key := normalOrRaw(e.DN)
		groups[key] = n
		order = append(order, key)
		if !n.keep {
			return nil
		}
		r.groups++
		return r.out.group(g)
	})
	if err != nil {
		return err
	}
	r.phase = "expanding nested groups"
	for _, key := range order {
		n := groups[key]
		if !n.keep {
			continue
		}
		ids := expand(key, groups, userByDN, &r.skipped)
		r.member += int64(len(ids))
		if err := r.out.members(n.id, ids); err != nil {
			return err
		}
	}
	r.phase = "done"
	return nil
}

// expand returns the IDs of the users that are members of the group at
// key, directly or through groups nested in it, sorted; each member
// counted once, cycles cut. skipped counts the direct members that are
// neither users nor groups of the read.
func expand(key string, groups map[string]*node, userByDN map[string]string, skipped *int64) []string {
	seen := map[string]bool{key: true}
	found := map[string]bool{}
	stack := []string{key}
	for len(stack) > 0 {
		g := groups[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		for _, m := range g.members {
			if id, ok := userByDN[m]; ok {
				found[id] = true
				continue
			}
			if _, ok := groups[m]; ok {
				if !seen[m] {
					seen[m] = true
					stack = append(stack, m)
				}
				continue
			}
			if g == groups[key] {
				*skipped++
			}
		}
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// allMembers returns every member DN of a group entry, reading the
// further ranges of an Active Directory group with more members than one
// answer holds (1,500 by default).
func (r *dirReader) allMembers(ctx context.Context, e *goldap.Entry) ([]string, error) {
	m, err := r.dec.Members(e)
	if err != nil {
		r.tally.Reject(RejectMemberDNInvalid)
		return nil, nil
	}
	dns := m.DNs
	for next := m.Next; len(next) > 0; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		more, err := r.s.readBase(StageMembers, e.DN, next)
		if err != nil {
			return nil, err
		}
		m, err := r.dec.Members(more)
		if err != nil {
			r.tally.Reject(RejectMemberDNInvalid)
			return dns, nil
		}
		dns = append(dns, m.DNs...)
		next = m.Next
	}
	return dns, nil
}

// disabledSet returns the DN keys of the users disabled_filter marks, or
// nil when the entry itself tells (Active Directory's userAccountControl,
// or a presence filter such as the default (pwdAccountLockedTime=*)).
func (r *dirReader) disabledSet(ctx context.Context) (map[string]bool, error) {
	if r.s.flavor != FlavorOpenLDAP || r.dec.DisabledAttr != "" {
		return nil, nil
	}
	r.phase = "reading disabled users"
	out := map[string]bool{}
	filter := "(&" + r.s.cfg.UserFilter(r.s.flavor) + r.s.cfg.DisabledFilter + ")"
	err := r.s.searchPages(ctx, StageDisabled, filter, []string{"1.1"}, func(e *goldap.Entry) error {
		out[normalOrRaw(e.DN)] = true
		return nil
	})
	return out, err
}

// normalOrRaw is a DN's key: NormalizeDN's form, or the DN as it came
// when it does not parse (it then matches only itself).
func normalOrRaw(dn string) string {
	if k, err := NormalizeDN(dn); err == nil {
		return k
	}
	return dn
}

// batcher packs users, groups and member IDs into batches of at most
// connector.MaxBatchObjects objects.
type batcher struct {
	send     func(*connectorv1.SyncBatch) error
	progress func() *connectorv1.Progress
	cur      connectorv1.SyncBatch
	n        int
}

func (b *batcher) room(k int) error {
	if b.n+k > connector.MaxBatchObjects {
		return b.flush()
	}
	return nil
}

func (b *batcher) user(u *connectorv1.User) error {
	if err := b.room(1); err != nil {
		return err
	}
	b.cur.Users = append(b.cur.Users, u)
	b.n++
	return nil
}

func (b *batcher) group(g *connectorv1.Group) error {
	if err := b.room(1); err != nil {
		return err
	}
	b.cur.Groups = append(b.cur.Groups, g)
	b.n++
	return nil
}

// members adds a group's member IDs, split over batches as needed (the
// contract lets a group's Membership messages add up).
func (b *batcher) members(groupID string, ids []string) error {
	for len(ids) > 0 {
		if err := b.room(1); err != nil {
			return err
		}
		k := min(len(ids), connector.MaxBatchObjects-b.n)
		b.cur.Memberships = append(b.cur.Memberships, &connectorv1.Membership{GroupId: groupID, AddedUserIds: ids[:k]})
		b.n += k
		ids = ids[k:]
	}
	return nil
}

// replaceMembers sends a group's whole member list (Membership.replace),
// split over batches as needed; an empty list is sent too, as it empties
// the group.
func (b *batcher) replaceMembers(groupID string, ids []string) error {
	for first := true; first || len(ids) > 0; first = false {
		if err := b.room(1); err != nil {
			return err
		}
		k := min(len(ids), connector.MaxBatchObjects-b.n)
		b.cur.Memberships = append(b.cur.Memberships, &connectorv1.Membership{GroupId: groupID, AddedUserIds: ids[:k], Replace: true})
		b.n += max(k, 1)
		ids = ids[k:]
	}
	return nil
}

func (b *batcher) flush() error {
	if b.n == 0 {
		return nil
	}
	batch := &connectorv1.SyncBatch{Users: b.cur.Users, Groups: b.cur.Groups, Memberships: b.cur.Memberships, Progress: b.progress()}
	b.cur, b.n = connectorv1.SyncBatch{}, 0
	return b.send(batch)
}

// finish sends what is left and then last, the final batch.
func (b *batcher) finish(last *connectorv1.SyncBatch) error {
	if err := b.flush(); err != nil {
		return err
	}
	last.Progress = b.progress()
	return b.send(last)
}
