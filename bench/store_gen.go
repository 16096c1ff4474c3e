package bench

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/dirsync/dirsync/events"
)

// storeLog describes a synthetic event log of exactly n events, as the
// daemon would have written it for one connector: a first full sync of a
// tenant (user, group and membership facts, one recipient created per
// user) and then incremental syncs, each changing a tenth of the users
// (a user changed fact and a recipient updated decision per user). Every
// job passes PENDING … SAVING before its events and COMPLETED after them,
// so the projections fold it as a real one. Event i is computed on its
// own (eventAt), so the log is marshaled in parallel and never held whole.
type storeLog struct {
	n      int
	users  int
	groups int
	// window is how many users an incremental job changes.
	window int
	jobs   []storeJob
	base   time.Time
}

// storeJob is one job of the log: its first event index, the number of
// users it changes (users of the first, full job: all) and whether it
// carries one padding event (a group fact) to make the count exact.
type storeJob struct {
	start, size int
	changed     int
	pad         bool
}

// jobStates are the states a job records before its events.
var jobStates = []string{events.StatePending, events.StateStarted, events.StateRetrieving, events.StateProcessing, events.StateSaving}

// newStoreLog lays out a log of n events: users = n/10, at most
// maxUsers (0: no bound), groups = users/20 (1,000,000 events: a tenant of
// 100,000 users and 5,000 groups, about 210,000 events for the full sync
// and then 40 incremental syncs). With the bound a longer log is the same
// tenant's history with more syncs (5,000,000 events and maxUsers
// 100,000: 240 incremental syncs), so start-up figures on it show what
// grows with the log rather than with the tenant.
func newStoreLog(n, maxUsers int) (*storeLog, error) {
	if n < 100 {
		return nil, fmt.Errorf("rebuild: %d events is too few for a full sync and its job states (at least 100)", n)
	}
	users := n / 10
	if maxUsers > 0 {
		users = min(users, maxUsers)
	}
	l := &storeLog{n: n, users: users, base: time.Date(2026, 1, 5, 6, 0, 0, 0, time.UTC)}
	l.groups = max(1, l.users/20)
	l.window = max(1, l.users/10)
	const states = 6 // PENDING…SAVING and COMPLETED
	first := states + 2*l.users + 2*l.groups
	l.jobs = append(l.jobs, storeJob{start: 0, size: first, changed: l.users})
	at := first
	for at < n {
		rem := n - at
		c := l.window
		if rem < states+2*c+states+2 {
			// The last job takes the rest: it must end with COMPLETED.
			c = min((rem-states)/2, l.users)
		}
		size := states + 2*c
		pad := rem-size == 1 || (rem-size > 0 && rem-size < states+2)
		if pad {
			size++
		}
		if size > rem || c < 0 {
			return nil, fmt.Errorf("rebuild: cannot lay out %d events (job at %d, %d left)", n, at, rem)
		}
		l.jobs = append(l.jobs, storeJob{start: at, size: size, changed: c, pad: pad})
		at += size
	}
	if at != n {
		return nil, fmt.Errorf("rebuild: laid out %d events, want %d", at, n)
	}
	return l, nil
}

func (l *storeLog) jobID(k int) string {
	t := l.base.Add(time.Duration(k) * time.Hour)
	return fmt.Sprintf("%s%03d-%08x", t.Format("20060102T150405"), 0, k)
}

func storeUserID(i int) string  { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }
func storeGroupID(g int) string { return fmt.Sprintf("%08x-0000-4000-9000-%012x", g, g) }

var storeDepartments = []string{"Sales", "Marketing", "Engineering", "Finance", "Legal", "Operations", "Support", "HR"}

// user is user i as job k describes it: its job title changes with every
// job that changes it.
func (l *storeLog) user(i int, title string) events.User {
	return events.User{
		ID:                   storeUserID(i),
		UserPrincipalName:    fmt.Sprintf("user%06d@contoso.onmicrosoft.com", i),
		Mail:                 fmt.Sprintf("User.%06d@contoso.com", i),
		DisplayName:          fmt.Sprintf("Given%06d Surname%06d", i, i),
		GivenName:            fmt.Sprintf("Given%06d", i),
		Surname:              fmt.Sprintf("Surname%06d", i),
		Department:           storeDepartments[i%len(storeDepartments)],
		JobTitle:             title,
		AccountEnabled:       true,
		UserType:             "Member",
		AssignedLicenseCount: 1,
	}
}

func (l *storeLog) group(g int) events.Group {
	return events.Group{ID: storeGroupID(g), DisplayName: fmt.Sprintf("Team %05d", g),
		Mail: fmt.Sprintf("team%05d@contoso.com", g), GroupTypes: []string{"Unified"}, MailEnabled: true}
}

func (l *storeLog) recipient(u events.User, g int, at time.Time) events.Recipient {
	return events.Recipient{
		ID: Connector + "." + u.ID, Connector: Connector, ObjectID: u.ID, Email: u.Mail,
		DisplayName: u.DisplayName, GivenName: u.GivenName, Surname: u.Surname,
		Department: u.Department, JobTitle: u.JobTitle,
		Groups: []string{fmt.Sprintf("Team %05d", g)}, Tags: []string{},
		Status: events.RecipientActive, UpdatedAt: at.UTC(),
	}
}

// changedUser is the i-th user job k (k ≥ 1) changes: a window sliding
// over the tenant.
func (l *storeLog) changedUser(k, i int) int { return ((k-1)*l.window + i) % l.users }

// eventAt returns event i of the log.
func (l *storeLog) eventAt(i int) events.Event {
	k := sort.Search(len(l.jobs), func(k int) bool { return l.jobs[k].start > i }) - 1
	j := l.jobs[k]
	off := i - j.start
	id := l.jobID(k)
	at := l.base.Add(time.Duration(k) * time.Hour)
	full := k == 0
	ev := func(typ, subject string, part int, data any) events.Event {
		return events.New(typ, subject, Connector, id, part, at.Add(5*time.Second), data)
	}
	state := func(s string, part int, sum *events.Summary, cursor string) events.Event {
		d := events.SyncState{JobID: id, Connector: Connector, State: s, Full: full, RequestedBy: "schedule", Summary: sum, Cursor: cursor}
		if full {
			d.RequestedBy = "cli"
		}
		return events.New(events.TypeSyncState, events.SyncSubject(Connector, id), Connector, id, part, at.Add(time.Duration(part)*time.Second), d)
	}
	if off < len(jobStates) {
		return state(jobStates[off], off, nil, "")
	}
	if off == j.size-1 {
		sum := &events.Summary{UsersRetrieved: int64(j.changed), FullRead: full, DirectoryEvents: j.changed,
			Recipients: l.users, DurationMS: 6000}
		if full {
			sum.GroupsRetrieved, sum.MembershipsRetrieved = int64(l.groups), int64(l.users)
			sum.DirectoryEvents = l.users + 2*l.groups
			sum.RecipientsCreated = l.users
		} else {
			sum.RecipientsUpdated = j.changed
			sum.RecipientsUnchanged = l.users - j.changed
		}
		return state(events.StateCompleted, 5, sum, fmt.Sprintf("users=delta-%d;groups=delta-%d", k, k))
	}
	off -= len(jobStates)
	if full {
		u, g := l.users, l.groups
		switch {
		case off < u:
			return ev(events.TypeUserChanged, events.DirectorySubject(Connector, "user", storeUserID(off)), 0, l.user(off, "Title 0"))
		case off < u+g:
			g := off - u
			return ev(events.TypeGroupChanged, events.DirectorySubject(Connector, "group", storeGroupID(g)), 0, l.group(g))
		case off < u+2*g:
			g := off - u - l.groups
			var members []string
			for m := g; m < l.users; m += l.groups {
				members = append(members, storeUserID(m))
			}
			sort.Strings(members)
			return ev(events.TypeGroupMembersChanged, events.DirectorySubject(Connector, "group", storeGroupID(g)), 0,
				events.MembersChanged{GroupID: storeGroupID(g), Added: members})
		default:
			i := off - u - 2*g
			r := l.recipient(l.user(i, "Title 0"), i%l.groups, at.Add(5*time.Second))
			return ev(events.TypeRecipientCreated, events.RecipientSubject(Connector, r.ObjectID), 0,
				events.RecipientChange{Recipient: r, Reason: "user has a mail address"})
		}
	}
	title := fmt.Sprintf("Title %d", k)
	switch {
	case off < j.changed:
		u := l.changedUser(k, off)
		return ev(events.TypeUserChanged, events.DirectorySubject(Connector, "user", storeUserID(u)), 0, l.user(u, title))
	case off < 2*j.changed:
		u := l.changedUser(k, off-j.changed)
		r := l.recipient(l.user(u, title), u%l.groups, at.Add(5*time.Second))
		return ev(events.TypeRecipientUpdated, events.RecipientSubject(Connector, r.ObjectID), 0,
			events.RecipientChange{Recipient: r, Changed: []string{"jobTitle"}, Reason: "user has a mail address"})
	default: // the padding event
		g := k % l.groups
		return ev(events.TypeGroupChanged, events.DirectorySubject(Connector, "group", storeGroupID(g)), 0, l.group(g))
	}
}

// marshal encodes events [from, to) on every core, in order.
func (l *storeLog) marshal(from, to int) ([]storeMsg, error) {
	out := make([]storeMsg, to-from)
	workers := runtime.NumCPU()
	per := (len(out) + workers - 1) / workers
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		lo, hi := from+w*per, min(to, from+(w+1)*per)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				e := l.eventAt(i)
				b, err := e.Marshal()
				if err != nil {
					errs[w] = err
					return
				}
				out[i-from] = storeMsg{subject: e.Subject, msgID: e.ID, data: b}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
