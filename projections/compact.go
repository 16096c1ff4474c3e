package projections

import "github.com/dirsync/dirsync/events"

// A checkpoint decodes every string on its own: a user's ID as a map key,
// again as the user's ID field, again as the recipient's key and object
// ID and once more in each group's member set; "Sales" once per user in
// that department. A loaded state (snapshot.state) keeps one copy of
// each through interned, so that what a start holds for planning is about
// what the directory holds, not several times it (`go test -run '^$'
// -bench CheckpointLoad ./projections/` reports the live heap of a loaded
// state).

// interned maps a string to the one copy of it the state keeps: for the
// few values many objects share (departments, group names, tags). IDs are
// shared through the users map instead (Directory.UserID): a table of every ID
// would duplicate that map, and filling it made a start's load slower.
type interned map[string]string

// of returns the kept copy of s, keeping s if it is the first.
func (in interned) of(s string) string {
	if s == "" {
		return ""
	}
	if k, ok := in[s]; ok {
		return k
	}
	in[s] = s
	return s
}

// all interns each of ss in place.
func (in interned) all(ss []string) {
	for i, s := range ss {
		ss[i] = in.of(s)
	}
}

// user interns a directory user stored under key id, which becomes its
// ID field too.
func (in interned) user(id string, u events.User) events.User {
	u.ID = id
	u.Department = in.of(u.Department)
	u.JobTitle = in.of(u.JobTitle)
	u.UserType = in.of(u.UserType)
	return u
}

// recipient interns a recipient of the user u (if ok), whose ID and
// fields it shares where they are equal.
func (in interned) recipient(r events.Recipient, u events.User, ok bool) events.Recipient {
	r.Connector = in.of(r.Connector)
	r.Status = in.of(r.Status)
	r.Department = in.of(r.Department)
	r.JobTitle = in.of(r.JobTitle)
	in.all(r.Groups)
	in.all(r.Tags)
	if ok {
		r.ObjectID = same(r.ObjectID, u.ID)
		r.DisplayName = same(r.DisplayName, u.DisplayName)
		r.GivenName = same(r.GivenName, u.GivenName)
		r.Surname = same(r.Surname, u.Surname)
		r.Email = same(r.Email, u.Mail)
	}
	return r
}

// same returns b if it equals a, so that a can be freed.
func same(a, b string) string {
	if a == b {
		return b
	}
	return a
}
