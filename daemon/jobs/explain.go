package jobs

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/projections"
)

// ErrNoSuchUser says no directory user has the object ID or address an
// explanation was asked for.
var ErrNoSuchUser = errors.New("no directory user")

// Explain says why the directory users with object ID or address user
// (any of their addresses, any case) are or are not recipients, under
// each configured connector's import policy as plugins.hcl sets it (no
// job's one-time options), from the read models as they are; connector
// "" means every connector.
func (r *Runner) Explain(user, connectorName string) ([]policy.Explanation, error) {
	r.mu.Lock()
	specs := maps.Clone(r.specs)
	r.mu.Unlock()
	if _, ok := specs[connectorName]; connectorName != "" && !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownConnector, connectorName)
	}
	var out []policy.Explanation
	r.proj.View(func(s *projections.State) {
		for _, name := range slices.Sorted(maps.Keys(specs)) {
			if connectorName != "" && name != connectorName {
				continue
			}
			d := s.Directories[name]
			if d == nil {
				continue
			}
			pol := specs[name].Policy
			for _, id := range usersNamed(pol, d, user) {
				if ex, ok := pol.Explain(name, d, s.Recipients, id); ok {
					out = append(out, ex)
				}
			}
		}
	})
	if len(out) == 0 {
		where := "any connector's directory"
		if connectorName != "" {
			where = "connector " + connectorName + "'s directory"
		}
		return nil, fmt.Errorf("%w has the object ID or address %q in %s (as of its last sync)", ErrNoSuchUser, user, where)
	}
	return out, nil
}

// usersNamed returns the users of d whose object ID is name, or else
// that have name among their addresses, sorted.
func usersNamed(pol policy.Policy, d *projections.Directory, name string) []string {
	if _, ok := d.Users[name]; ok {
		return []string{name}
	}
	key := policy.EmailKey(name)
	var ids []string
	for id, u := range d.Users {
		if policy.EmailKey(pol.Email(u)) == key || slices.ContainsFunc(u.Addresses(), func(a string) bool { return policy.EmailKey(a) == key }) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
