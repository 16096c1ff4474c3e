// Package projections folds the event stream into read models: the
// directory as last observed, recipients, groups, jobs and sync status per
// connector. The fold (State.Apply) is a pure function of the events, so a
// rebuild from an empty state equals the live state byte for byte; the
// Projector keeps the state current and mirrors the read models that
// downstream services may read into JetStream KV buckets.
package projections

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dirsync/dirsync/events"
)

// Directory is one connector's directory as its events describe it.
type Directory struct {
	Users  map[string]events.User
	Groups map[string]events.Group
	// Members maps a group ID to the IDs of its user members.
	Members map[string]map[string]struct{}
	// Nested maps a group ID to the IDs of the groups that are its direct
	// members; nil or empty without nesting.
	Nested map[string]map[string]struct{}
	// Others, when set, finds the users of the connector's directory that
	// Users leaves out: a directory cut down to the users an incremental
	// plan decides about still names their managers.
	Others func(id string) (events.User, bool)
}

// User returns the user id of the directory, in Users or Others.
func (d *Directory) User(id string) (events.User, bool) {
	if u, ok := d.Users[id]; ok {
		return u, true
	}
	if d.Others != nil {
		return d.Others(id)
	}
	return events.User{}, false
}

// UserID returns the directory's own copy of a user's ID (its key in
// Users, which is also the user's ID field), or id when there is no such
// user: a member set built from it holds no string of its own per
// membership.
func (d *Directory) UserID(id string) string {
	if u, ok := d.Users[id]; ok {
		return u.ID
	}
	return id
}

func newDirectory() *Directory {
	return &Directory{
		Users:   map[string]events.User{},
		Groups:  map[string]events.Group{},
		Members: map[string]map[string]struct{}{},
		Nested:  map[string]map[string]struct{}{},
	}
}

// StateChange is one entry of a job's history.
type StateChange struct {
	State string    `json:"state"`
	At    time.Time `json:"at"`
}

// Job is the read model of one sync job.
type Job struct {
	ID          string             `json:"id"`
	Connector   string             `json:"connector"`
	State       string             `json:"state"`
	Full        bool               `json:"full"`
	RequestedBy string             `json:"requestedBy,omitempty"`
	RequestedAt time.Time          `json:"requestedAt"`
	UpdatedAt   time.Time          `json:"updatedAt"`
	FinishedAt  *time.Time         `json:"finishedAt,omitempty"`
	Reason      string             `json:"reason,omitempty"`
	Summary     *events.Summary    `json:"summary,omitempty"`
	Options     *events.JobOptions `json:"options,omitempty"`
	// Resumes is the failed job whose one-time options this one carried
	// on (see events.SyncState.Resumes).
	Resumes string        `json:"resumes,omitempty"`
	History []StateChange `json:"history"`
}

// DryRun reports whether the job was requested to apply nothing.
func (j *Job) DryRun() bool { return j.Options != nil && j.Options.DryRun }

// Change is one recipient event, as a job's change list and a
// recipient's history show it.
type Change struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	JobID       string    `json:"jobId"`
	Kind        string    `json:"kind"` // created, updated, archived, restored, removed
	RecipientID string    `json:"recipientId"`
	ObjectID    string    `json:"objectId"`
	Email       string    `json:"email"`
	Changed     []string  `json:"changed,omitempty"`
	Reason      string    `json:"reason"`
}

// ChangeKind names a recipient event type as a change kind.
func ChangeKind(eventType string) string {
	switch eventType {
	case events.TypeRecipientCreated:
		return "created"
	case events.TypeRecipientUpdated:
		return "updated"
	case events.TypeRecipientArchived:
		return "archived"
	case events.TypeRecipientRestored:
		return "restored"
	case events.TypeRecipientRemoved:
		return "removed"
	}
	return ""
}

// SyncStatus is the read model of one connector's sync status.
type SyncStatus struct {
	Connector string `json:"connector"`
	// CurrentJob and CurrentState name the connector's newest job while it
	// is not final.
	CurrentJob   string `json:"currentJob,omitempty"`
	CurrentState string `json:"currentState,omitempty"`
	// LastJob and LastState name the newest job that reached a final state.
	LastJob   string `json:"lastJob,omitempty"`
	LastState string `json:"lastState,omitempty"`
	// LastReason is why the last final job FAILED or was CANCELED.
	LastReason string `json:"lastReason,omitempty"`
	// LastSyncAt is the time of the last COMPLETED job: "last sync date".
	LastSyncAt *time.Time `json:"lastSyncAt,omitempty"`
	// LastFullReadAt is the time of the last COMPLETED job that read the
	// whole directory; full_sync_interval counts from it.
	LastFullReadAt  *time.Time `json:"lastFullReadAt,omitempty"`
	LastCompletedID string     `json:"lastCompletedJob,omitempty"`
	// Recipients counts active recipients, Archived archived ones.
	Recipients int `json:"recipients"`
	Archived   int `json:"archived"`
	Users      int `json:"users"`
	Groups     int `json:"groups"`
	// Epoch and ClaimedBy are the connector's claim in force: the
	// replica whose events the stream takes for it (see
	// events.TypeConnectorClaimed). Empty before the first claim.
	Epoch     uint64 `json:"epoch,omitempty"`
	ClaimedBy string `json:"claimedBy,omitempty"`
}

// GroupView is the read model of one directory group.
type GroupView struct {
	// ID is "<connector>.<objectId>", the form recipients' IDs have and
	// GET /v1/groups/{id} takes: an object ID alone is unique only within
	// its directory.
	ID          string   `json:"id"`
	Connector   string   `json:"connector"`
	ObjectID    string   `json:"objectId"`
	DisplayName string   `json:"displayName"`
	Mail        string   `json:"mail,omitempty"`
	GroupTypes  []string `json:"groupTypes"`
	Members     int      `json:"members"`
}

// State is everything the events say, folded.
type State struct {
	Directories map[string]*Directory
	// Recipients maps connector → object ID → recipient.
	Recipients map[string]map[string]events.Recipient
	Jobs       map[string]*Job
	Status     map[string]*SyncStatus
	// Cursors maps connector → cursor of its last COMPLETED job.
	Cursors map[string]string
	// FormerEmails maps an email, lower-cased, to the recipients that had
	// it once and no longer do (their email changed, or they were
	// removed): a history asked by email finds them through it. Current
	// emails are in Recipients. Histories themselves are read from the
	// stream when asked (see Projector.History).
	FormerEmails map[string][]string
	// Spans maps a sync ID to where its recipient events are in the
	// stream, so a job's change list is read from there when asked (see
	// Projector.JobChanges) instead of kept in memory.
	Spans map[string]ChangeSpan
	// LastSeq is the stream sequence of the last event applied.
	LastSeq uint64
	// Malformed counts events that could not be applied.
	Malformed int
	// Claims maps connector → its claim in force: the newest epoch a
	// replica claimed it at (see events.TypeConnectorClaimed).
	Claims map[string]events.Claim
	// Superseded counts events ignored because their epoch is older than
	// their connector's claim in force when they were read. Fenced
	// appends keep it 0; an unfenced writer (an older dirsyncd sharing
	// the stream) would raise it.
	Superseded int

	// instance, changes and allChanges make up Generation.
	instance, allChanges uint64
	changes              map[string]uint64
	// counted holds, per connector, how many of its recipients are
	// active and archived, kept by the fold so that SyncStatus (asked at
	// every KV write of a job's status) does not count 100,000 each time.
	// A connector missing here is counted when asked.
	counted map[string]*recipientCount
}

// recipientCount is a connector's recipients by status.
type recipientCount struct{ active, archived int }

// add counts r n times (n = -1 takes it off).
func (c *recipientCount) add(r events.Recipient, n int) {
	if r.Status == events.RecipientArchived {
		c.archived += n
	} else {
		c.active += n
	}
}

// count returns connector's recipientCount, counting it if the fold
// has not yet.
func (s *State) count(connector string) recipientCount {
	if c, ok := s.counted[connector]; ok {
		return *c
	}
	var c recipientCount
	for _, r := range s.Recipients[connector] {
		c.add(r, 1)
	}
	return c
}

// counting returns the recipientCount the fold keeps for connector.
func (s *State) counting(connector string) *recipientCount {
	c, ok := s.counted[connector]
	if !ok {
		n := s.count(connector)
		c = &n
		s.counted[connector] = c
	}
	return c
}

// Generation says how far a state has moved, for a planner that keeps
// what it decided over a connector's directory between jobs: while a
// connector's Generation is the same, its directory and the recipients
// of every connector are as they were. It is not part of the read
// models (a checkpoint or a rebuild starts another Instance).
type Generation struct {
	// Instance tells this state from another one (reloaded, rebuilt).
	Instance uint64
	// Own counts the connector's directory and recipient events applied
	// to this state, All those of every connector.
	Own, All uint64
}

// Generation returns connector's Generation.
func (s *State) Generation(connector string) Generation {
	return Generation{Instance: s.instance, Own: s.changes[connector], All: s.allChanges}
}

// changed counts one directory or recipient event of connector.
func (s *State) changed(connector string) {
	s.changes[connector]++
	s.allChanges++
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Directories:  map[string]*Directory{},
		Recipients:   map[string]map[string]events.Recipient{},
		Jobs:         map[string]*Job{},
		Status:       map[string]*SyncStatus{},
		Cursors:      map[string]string{},
		FormerEmails: map[string][]string{},
		Spans:        map[string]ChangeSpan{},
		Claims:       map[string]events.Claim{},
		instance:     rand.Uint64(),
		changes:      map[string]uint64{},
		counted:      map[string]*recipientCount{},
	}
}

// ChangeSpan is where one job's recipient events are: all of them lie on
// the recipient subjects of Connectors (one, unless the job adopted
// recipients from a renamed connector) from First to Last.
type ChangeSpan struct {
	Connectors []string `json:"connectors"`
	First      uint64   `json:"first"`
	Last       uint64   `json:"last"`
	Count      int      `json:"count"`
}

// Size counts what the state holds in memory, by kind: the read models'
// own size counters. None of them grows with the number of jobs' changes
// or a recipient's changes; Jobs and Spans grow by one a job.
type Size struct {
	Users        int `json:"users"`
	Groups       int `json:"groups"`
	Memberships  int `json:"memberships"`
	Recipients   int `json:"recipients"`
	Jobs         int `json:"jobs"`
	JobStates    int `json:"jobStates"`
	Spans        int `json:"spans"`
	FormerEmails int `json:"formerEmails"`
}

// Size counts the state's entries.
func (s *State) Size() Size {
	var n Size
	for _, d := range s.Directories {
		n.Users += len(d.Users)
		n.Groups += len(d.Groups)
		for _, m := range d.Members {
			n.Memberships += len(m)
		}
	}
	for _, m := range s.Recipients {
		n.Recipients += len(m)
	}
	n.Jobs = len(s.Jobs)
	for _, j := range s.Jobs {
		n.JobStates += len(j.History)
	}
	n.Spans = len(s.Spans)
	for _, ids := range s.FormerEmails {
		n.FormerEmails += len(ids)
	}
	return n
}

// former records that recipient id no longer has email.
func (s *State) former(email, id string) {
	if email == "" {
		return
	}
	k := strings.ToLower(email)
	if !slices.Contains(s.FormerEmails[k], id) {
		s.FormerEmails[k] = append(s.FormerEmails[k], id)
	}
}

// Directory returns a connector's directory, creating it empty.
func (s *State) Directory(connector string) *Directory {
	d, ok := s.Directories[connector]
	if !ok {
		d = newDirectory()
		s.Directories[connector] = d
	}
	return d
}

func (s *State) recipients(connector string) map[string]events.Recipient {
	m, ok := s.Recipients[connector]
	if !ok {
		m = map[string]events.Recipient{}
		s.Recipients[connector] = m
	}
	return m
}

func (s *State) status(connector string) *SyncStatus {
	st, ok := s.Status[connector]
	if !ok {
		st = &SyncStatus{Connector: connector}
		s.Status[connector] = st
	}
	return st
}

// Key names a read model entry changed by an event.
type Key struct {
	Bucket string
	Key    string
}

// Connector returns the connector a read model entry belongs to: every
// key is the connector's name or starts with it and a dot.
func (k Key) Connector() string {
	c, _, _ := strings.Cut(k.Key, ".")
	return c
}

// String names the entry as bucket/key.
func (k Key) String() string { return k.Bucket + "/" + k.Key }

// Read model buckets in JetStream KV.
const (
	BucketRecipients = "dirsync_recipients"
	BucketGroups     = "dirsync_groups"
	BucketJobs       = "dirsync_jobs"
	BucketSync       = "dirsync_sync"
)

// Buckets lists the KV buckets the projector maintains.
func Buckets() []string {
	return []string{BucketRecipients, BucketGroups, BucketJobs, BucketSync}
}

// Apply folds one event into the state and returns the read model entries
// it changed. An event it cannot understand changes nothing and returns an
// error wrapping events.ErrMalformed.
func (s *State) Apply(e events.Event) ([]Key, error) {
	if e.Seq != 0 {
		s.LastSeq = e.Seq
	}
	keys, err := s.apply(e)
	if err != nil {
		s.Malformed++
	}
	return keys, err
}

func (s *State) apply(e events.Event) ([]Key, error) {
	tok := strings.Split(e.Subject, ".")
	if len(tok) < 4 || tok[0] != events.SubjectRoot {
		return nil, fmt.Errorf("%w: subject %q", events.ErrMalformed, e.Subject)
	}
	connector := tok[2]
	// One writer per connector: an event of an epoch older than the
	// connector's claim in force was written by a replica that had lost
	// it, and every replica ignores it alike.
	if e.Type == events.TypeConnectorClaimed {
		return s.applyClaim(e, connector)
	}
	if e.Epoch < s.Claims[connector].Epoch {
		s.Superseded++
		return nil, nil
	}
	if e.Type != events.TypeSyncState {
		// Counted even if the event turns out malformed: a planner's
		// cache must not outlive anything that reached the state.
		s.changed(connector)
	}
	switch e.Type {
	case events.TypeSyncState:
		d, err := data[events.SyncState](e)
		if err != nil {
			return nil, err
		}
		return s.applySyncState(e, d)
	case events.TypeUserChanged:
		u, err := data[events.User](e)
		if err != nil {
			return nil, err
		}
		if u.ID == "" {
			return nil, fmt.Errorf("%w: user without id", events.ErrMalformed)
		}
		s.Directory(connector).Users[u.ID] = u
		return []Key{{BucketSync, connector}}, nil
	case events.TypeUserRemoved:
		r, err := data[events.Removed](e)
		if err != nil {
			return nil, err
		}
		delete(s.Directory(connector).Users, r.ID)
		return []Key{{BucketSync, connector}}, nil
	case events.TypeGroupChanged:
		g, err := data[events.Group](e)
		if err != nil {
			return nil, err
		}
		if g.ID == "" {
			return nil, fmt.Errorf("%w: group without id", events.ErrMalformed)
		}
		s.Directory(connector).Groups[g.ID] = g
		return []Key{{BucketGroups, connector + "." + g.ID}, {BucketSync, connector}}, nil
	case events.TypeGroupRemoved:
		r, err := data[events.Removed](e)
		if err != nil {
			return nil, err
		}
		d := s.Directory(connector)
		delete(d.Groups, r.ID)
		delete(d.Members, r.ID)
		// A group gone is nobody's member either: its parents, which a
		// later event may not name, no longer reach through it.
		delete(d.Nested, r.ID)
		for g, set := range d.Nested {
			delete(set, r.ID)
			if len(set) == 0 {
				delete(d.Nested, g)
			}
		}
		return []Key{{BucketGroups, connector + "." + r.ID}, {BucketSync, connector}}, nil
	case events.TypeGroupMembersChanged:
		m, err := data[events.MembersChanged](e)
		if err != nil {
			return nil, err
		}
		d := s.Directory(connector)
		applySet(d.Members, m.GroupID, m.Added, m.Removed)
		if len(m.AddedGroups) > 0 || len(m.RemovedGroups) > 0 {
			if d.Nested == nil {
				d.Nested = map[string]map[string]struct{}{}
			}
			applySet(d.Nested, m.GroupID, m.AddedGroups, m.RemovedGroups)
		}
		return []Key{{BucketGroups, connector + "." + m.GroupID}}, nil
	case events.TypeRecipientCreated, events.TypeRecipientUpdated, events.TypeRecipientRemoved,
		events.TypeRecipientArchived, events.TypeRecipientRestored:
		c, err := data[events.RecipientChange](e)
		if err != nil {
			return nil, err
		}
		r := c.Recipient
		if r.ObjectID == "" || r.Connector != connector {
			return nil, fmt.Errorf("%w: recipient event without object id or for another connector", events.ErrMalformed)
		}
		rs := s.recipients(connector)
		n := s.counting(connector)
		if old, ok := rs[r.ObjectID]; ok {
			n.add(old, -1)
		}
		if e.Type == events.TypeRecipientRemoved {
			delete(rs, r.ObjectID)
			s.former(r.Email, r.ID)
		} else {
			if old, ok := rs[r.ObjectID]; ok && !strings.EqualFold(old.Email, r.Email) {
				s.former(old.Email, old.ID)
			}
			rs[r.ObjectID] = r
			n.add(r, 1)
		}
		if e.JobID != "" {
			sp, ok := s.Spans[e.JobID]
			if !ok {
				sp.First = e.Seq
			}
			if !slices.Contains(sp.Connectors, connector) {
				sp.Connectors = append(sp.Connectors, connector)
			}
			sp.Last = e.Seq
			sp.Count++
			s.Spans[e.JobID] = sp
		}
		return []Key{{BucketRecipients, RecipientKey(connector, r.ObjectID)}, {BucketSync, connector}}, nil
	default:
		return nil, fmt.Errorf("%w: unknown type %q", events.ErrMalformed, e.Type)
	}
}

func (s *State) applySyncState(e events.Event, d events.SyncState) ([]Key, error) {
	if d.JobID == "" || d.Connector == "" {
		return nil, fmt.Errorf("%w: sync state without job or connector", events.ErrMalformed)
	}
	j, ok := s.Jobs[d.JobID]
	if !ok {
		j = &Job{ID: d.JobID, Connector: d.Connector, RequestedAt: e.Time, Full: d.Full, RequestedBy: d.RequestedBy}
		s.Jobs[d.JobID] = j
	}
	if d.Options != nil {
		o := *d.Options
		j.Options = &o
	}
	if d.Resumes != "" {
		j.Resumes = d.Resumes
	}
	if events.Final(j.State) {
		// A final job never changes again; a late duplicate is ignored.
		return nil, nil
	}
	j.State = d.State
	j.UpdatedAt = e.Time
	j.History = append(j.History, StateChange{State: d.State, At: e.Time})
	if d.Reason != "" {
		j.Reason = d.Reason
	}
	if d.Summary != nil {
		sum := *d.Summary
		j.Summary = &sum
	}
	// Full says what the job read: decided when it starts retrieving (a
	// first sync reads everything though nobody asked), and a summary
	// that says the read was complete (an expired delta token) settles it.
	if d.Full || (d.Summary != nil && d.Summary.FullRead) {
		j.Full = true
	}
	st := s.status(d.Connector)
	if events.Final(d.State) {
		t := e.Time
		j.FinishedAt = &t
		st.LastJob, st.LastState, st.LastReason = j.ID, j.State, j.Reason
		if st.CurrentJob == j.ID {
			st.CurrentJob, st.CurrentState = "", ""
		}
		if d.State == events.StateCompleted && !j.DryRun() {
			st.LastSyncAt = &t
			st.LastCompletedID = j.ID
			if d.Summary != nil && d.Summary.FullRead {
				st.LastFullReadAt = &t
			}
			s.Cursors[d.Connector] = d.Cursor
		}
	} else if st.CurrentJob == "" || st.CurrentJob == j.ID || d.State == events.StatePending {
		st.CurrentJob, st.CurrentState = j.ID, j.State
	}
	return []Key{{BucketJobs, JobKey(j.Connector, j.ID)}, {BucketSync, d.Connector}}, nil
}

// data returns an event's data as T: as it was built when the event comes
// from this process's own append (store.FollowOwn), which spares decoding
// back what was just encoded, else decoded from its JSON. Either way the
// read models' JSON form is the same (JSON is what both went through or
// will go through), which the rebuild tests check.
func data[T any](e events.Event) (T, error) {
	switch d := e.Data.(type) {
	case T:
		return d, nil
	case *T:
		if d != nil {
			return *d, nil
		}
	}
	var v T
	err := e.DecodeData(&v)
	return v, err
}

// RecipientKey is a recipient's key in BucketRecipients.
func RecipientKey(connector, objectID string) string { return connector + "." + objectID }

// JobKey is a job's key in BucketJobs.
func JobKey(connector, jobID string) string { return connector + "." + jobID }

// Value returns the current read model value for a key, or nil when the
// entry does not exist (it was deleted).
func (s *State) Value(k Key) any {
	connector, id, _ := strings.Cut(k.Key, ".")
	switch k.Bucket {
	case BucketRecipients:
		if r, ok := s.Recipients[connector][id]; ok {
			return r
		}
	case BucketGroups:
		if g := s.GroupView(connector, id); g != nil {
			return *g
		}
	case BucketJobs:
		if j, ok := s.Jobs[id]; ok {
			return j
		}
	case BucketSync:
		if _, ok := s.Status[k.Key]; ok || s.Directories[k.Key] != nil || s.Recipients[k.Key] != nil {
			st := s.SyncStatus(k.Key)
			return st
		}
	}
	return nil
}

// GroupView returns the read model of a group, or nil.
func (s *State) GroupView(connector, id string) *GroupView {
	d := s.Directories[connector]
	if d == nil {
		return nil
	}
	g, ok := d.Groups[id]
	if !ok {
		return nil
	}
	types := g.GroupTypes
	if types == nil {
		types = []string{}
	}
	return &GroupView{ID: connector + "." + g.ID, Connector: connector, ObjectID: g.ID, DisplayName: g.DisplayName, Mail: g.Mail,
		GroupTypes: types, Members: len(d.Members[id])}
}

// saving reports whether a job of some connector is in SAVING.
func (s *State) saving() bool {
	for _, st := range s.Status {
		if st.CurrentState == events.StateSaving {
			return true
		}
	}
	return false
}

// applyClaim makes a claim newer than the connector's claim in force
// the one in force.
func (s *State) applyClaim(e events.Event, connector string) ([]Key, error) {
	c, err := data[events.Claim](e)
	if err != nil {
		return nil, err
	}
	if c.Connector != connector || c.Epoch == 0 || c.Epoch != e.Epoch {
		return nil, fmt.Errorf("%w: claim of connector %q at epoch %d on subject %s with epoch %d", events.ErrMalformed, c.Connector, c.Epoch, e.Subject, e.Epoch)
	}
	if c.Epoch <= s.Claims[connector].Epoch {
		s.Superseded++
		return nil, nil
	}
	s.Claims[connector] = c
	return []Key{{BucketSync, connector}}, nil
}

// SyncStatus returns a connector's status with its counts filled in.
func (s *State) SyncStatus(connector string) SyncStatus {
	st := SyncStatus{Connector: connector}
	if p, ok := s.Status[connector]; ok {
		st = *p
	}
	c := s.count(connector)
	st.Recipients, st.Archived = c.active, c.archived
	if cl, ok := s.Claims[connector]; ok {
		st.Epoch, st.ClaimedBy = cl.Epoch, cl.Replica
	}
	if d := s.Directories[connector]; d != nil {
		st.Users, st.Groups = len(d.Users), len(d.Groups)
	}
	return st
}

// Connectors lists, sorted, every connector the state knows: one with
// jobs, recipients or a directory, configured now or not.
func (s *State) Connectors() []string {
	seen := map[string]bool{}
	for c := range s.Status {
		seen[c] = true
	}
	for c := range s.Directories {
		seen[c] = true
	}
	for c := range s.Recipients {
		seen[c] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Keys lists every read model entry the state holds, sorted.
func (s *State) Keys() []Key {
	var keys []Key
	for c, m := range s.Recipients {
		for id := range m {
			keys = append(keys, Key{BucketRecipients, RecipientKey(c, id)})
		}
	}
	for c, d := range s.Directories {
		for id := range d.Groups {
			keys = append(keys, Key{BucketGroups, c + "." + id})
		}
	}
	for _, j := range s.Jobs {
		keys = append(keys, Key{BucketJobs, JobKey(j.Connector, j.ID)})
	}
	seen := map[string]bool{}
	for c := range s.Status {
		seen[c] = true
	}
	for c := range s.Directories {
		seen[c] = true
	}
	for c := range s.Recipients {
		seen[c] = true
	}
	for c := range seen {
		keys = append(keys, Key{BucketSync, c})
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Bucket != keys[j].Bucket {
			return keys[i].Bucket < keys[j].Bucket
		}
		return keys[i].Key < keys[j].Key
	})
	return keys
}

// applySet adds and removes IDs of the set under key k, which goes when
// it is left empty.
func applySet(m map[string]map[string]struct{}, k string, added, removed []string) {
	set, ok := m[k]
	if !ok {
		set = map[string]struct{}{}
		m[k] = set
	}
	for _, id := range added {
		set[id] = struct{}{}
	}
	for _, id := range removed {
		delete(set, id)
	}
	if len(set) == 0 {
		delete(m, k)
	}
}
