package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// stateFormat is the version of the state file's layout; a file of
// another version is refused rather than half read.
const stateFormat = 1

// savedState is the state file: everything a restarted graphsim needs to
// be the same tenant to a client. The change log, the delta-token key
// and the epoch are kept with the tenant, so a delta link issued before
// the restart still works and returns exactly the changes since it (a
// restart must not look like a tenant that changed, nor force a resync).
type savedState struct {
	Format int `json:"format"`
	// Generated are the settings the tenant was generated from: a state
	// file is refused when the flags ask for another tenant.
	Generated generatedFrom `json:"generated"`
	Version   uint64        `json:"version"`
	Epoch     uint64        `json:"epoch"`
	// PageKey signs $skiptoken and $deltatoken values.
	PageKey string        `json:"pageKey"`
	Tenant  *Tenant       `json:"tenant"`
	Deleted []User        `json:"deletedUsers"`
	Log     []savedChange `json:"changes"`
}

// generatedFrom are the Config fields that decide the generated tenant.
type generatedFrom struct {
	Users        int    `json:"users"`
	Groups       int    `json:"groups"`
	Seed         int64  `json:"seed"`
	TenantDomain string `json:"tenantDomain"`
	TenantID     string `json:"tenantId"`
	// Left out when unset, so that the state files of tenants generated
	// without them read as before.
	Attributes bool `json:"attributes,omitempty"`
	Resources  int  `json:"resources,omitempty"`
}

// savedChange is a change log entry in the state file.
type savedChange struct {
	Ver    uint64  `json:"ver"`
	Kind   objKind `json:"kind"`
	Op     op      `json:"op"`
	ID     string  `json:"id"`
	Mask   uint64  `json:"mask,omitempty"`
	Member *Member `json:"member,omitempty"`
}

func generatedOf(c Config) generatedFrom {
	return generatedFrom{Users: c.Users, Groups: c.Groups, Seed: c.Seed, TenantDomain: c.TenantDomain, TenantID: c.TenantID,
		Attributes: c.Attributes, Resources: c.Resources}
}

// loadState reads the state file at path into a snapshot and the page
// key. It returns fs.ErrNotExist (wrapped) when there is no file.
func loadState(path string, cfg Config) (*snapshot, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("graphsim: state file: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, fmt.Errorf("graphsim: state file %s is not graphsim's (delete it to generate the tenant afresh): %w", path, err)
	}
	if st.Format != stateFormat {
		return nil, nil, fmt.Errorf("graphsim: state file %s has format %d, this graphsim reads %d (delete it to generate the tenant afresh)", path, st.Format, stateFormat)
	}
	if want := generatedOf(cfg); st.Generated != want {
		g := st.Generated
		return nil, nil, fmt.Errorf("graphsim: state file %s holds the tenant generated with -users %d -groups %d -seed %d -tenant-domain %s -tenant-id %s, "+
			"not the one these flags ask for: start with those flags, or delete the file to generate a new tenant", path, g.Users, g.Groups, g.Seed, g.TenantDomain, g.TenantID)
	}
	key, err := base64.StdEncoding.DecodeString(st.PageKey)
	if err != nil || len(key) != 32 {
		return nil, nil, fmt.Errorf("graphsim: state file %s: pageKey is not 32 bytes of base64", path)
	}
	if st.Tenant == nil || st.Tenant.ID != cfg.TenantID || st.Tenant.Domain != cfg.TenantDomain {
		return nil, nil, fmt.Errorf("graphsim: state file %s: the tenant's ID or domain is not the generated one", path)
	}
	snap, err := newSnapshot(st.Tenant, st.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("graphsim: state file %s: %w", path, err)
	}
	snap.epoch = st.Epoch
	snap.deleted = make(map[string]*User, len(st.Deleted))
	for i := range st.Deleted {
		u := &st.Deleted[i]
		snap.deleted[strings.ToLower(u.ID)] = u
	}
	snap.log = make([]change, 0, len(st.Log))
	for _, c := range st.Log {
		if c.Ver > st.Version || (len(snap.log) > 0 && c.Ver < snap.log[len(snap.log)-1].ver) {
			return nil, nil, fmt.Errorf("graphsim: state file %s: change log out of order at version %d", path, c.Ver)
		}
		ch := change{ver: c.Ver, kind: c.Kind, op: c.Op, id: c.ID, mask: c.Mask}
		if c.Member != nil {
			ch.member = *c.Member
		}
		snap.log = append(snap.log, ch)
	}
	return snap, key, nil
}

// saveState writes snap to the state file: to a temporary file first,
// renamed over the old one, so a graphsim killed while saving leaves the
// previous state, never half a file. The caller holds mutateMu, so saves
// happen in the order of the changes.
func (s *Sim) saveState(snap *snapshot) error {
	path := s.cfg.StateFile
	if path == "" {
		return nil
	}
	st := savedState{
		Format:    stateFormat,
		Generated: generatedOf(s.cfg),
		Version:   snap.ver,
		Epoch:     snap.epoch,
		PageKey:   base64.StdEncoding.EncodeToString(s.pageKey),
		Tenant:    snap.tenant,
		Deleted:   make([]User, 0, len(snap.deleted)),
		Log:       make([]savedChange, 0, len(snap.log)),
	}
	for _, u := range snap.deleted {
		st.Deleted = append(st.Deleted, *u)
	}
	slices.SortFunc(st.Deleted, func(a, b User) int { return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID)) })
	for _, c := range snap.log {
		sc := savedChange{Ver: c.ver, Kind: c.kind, Op: c.op, ID: c.id, Mask: c.mask}
		if c.member != (Member{}) {
			m := c.member
			sc.Member = &m
		}
		st.Log = append(st.Log, sc)
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("graphsim: saving the tenant: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("graphsim: saving the tenant: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("graphsim: saving the tenant to %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("graphsim: saving the tenant to %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("graphsim: saving the tenant to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("graphsim: saving the tenant to %s: %w", path, err)
	}
	return nil
}

// saveFailed says that a change failed only to be saved: it is live in
// this process, and a restart would lose it.
func saveFailed(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("the change is made but not saved: %w", err)
}

// isNotExist reports whether err says the state file does not exist.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
