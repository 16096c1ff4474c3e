package jobs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

const (
	propSequences = 40 // random sequences per policy combination
	propSteps     = 30 // directory changes and syncs per sequence
	propUsers     = 8  // user IDs per connector
	propMails     = 10 // mail addresses, shared by both connectors
)

// propUser is a directory user as the property test changes it.
type propUser struct {
	mail    string
	enabled bool
}

// propWorld is the directories of the test and the state folded from the
// events planned for them.
type propWorld struct {
	t *testing.T
	// connectors are the connectors of the test; their directories draw
	// on one pool of mails, as two tenants of one company (or one tenant
	// configured twice) do.
	connectors []string
	rng        *rand.Rand
	pol        policy.Policy
	state      *projections.State
	dirs       map[string]map[string]propUser // connector → object ID → user
	// changed holds, per connector, the users changed since its last sync
	// (for incremental reads).
	changed map[string]map[string]bool
	jobs    int
	log     []string // what happened, printed on failure
}

// TestOneRecipientPerEmailProperty is the property test of "one recipient
// per email": random directory
// changes (mail swaps, a user taking a leaver's or a renamed user's mail,
// renames, disables, deletions, re-enables, case changes, mails shared
// with another connector's directory) go through plan over a
// projections.State, whose events are folded as the projector folds them,
// under every combination of update_existing, tag_mode and on_removed.
// After every job no two active recipients of any connector share an
// email (case-insensitively); with update_existing = true, once both
// connectors synced twice, every user the policy admits whose mail no
// other admitted user has, and no other connector's active recipient,
// is an active recipient with exactly that mail.
//
// The seed is fixed, so that `make test` runs the same sequences every
// time; EMAIL_PROPERTY_SEED=<n> runs (or replays) others, and
// EMAIL_PROPERTY_SEED=random a new one, printed on failure.
func TestOneRecipientPerEmailProperty(t *testing.T) {
	seed := uint64(20261204)
	if s := os.Getenv("EMAIL_PROPERTY_SEED"); s == "random" {
		seed = uint64(time.Now().UnixNano())
	} else if s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EMAIL_PROPERTY_SEED=%q is not a number: %v", s, err)
		}
		seed = n
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: replay with EMAIL_PROPERTY_SEED=%d go test ./daemon/jobs -run TestOneRecipientPerEmailProperty", seed, seed)
		}
	})
	for _, update := range []bool{true, false} {
		for _, tagMode := range []string{policy.TagModeAppend, policy.TagModeReplace} {
			for _, onRemoved := range []string{policy.OnRemovedArchive, policy.OnRemovedDelete, policy.OnRemovedKeep} {
				name := fmt.Sprintf("update_existing=%v,tag_mode=%s,on_removed=%s", update, tagMode, onRemoved)
				t.Run(name, func(t *testing.T) {
					pol := policy.Default()
					pol.UpdateExisting, pol.TagMode, pol.OnRemoved = update, tagMode, onRemoved
					for seq := range propSequences {
						// One stream per combination and sequence: a failure
						// replays from the seed alone.
						rng := rand.New(rand.NewPCG(seed, uint64(seq)<<8|combo(update, tagMode, onRemoved)))
						if !runSequence(t, rng, pol) {
							t.Logf("sequence %d", seq)
							return
						}
					}
				})
			}
		}
	}
}

// combo numbers a policy combination, for the random stream.
func combo(update bool, tagMode, onRemoved string) uint64 {
	n := uint64(slices.Index([]string{policy.OnRemovedArchive, policy.OnRemovedDelete, policy.OnRemovedKeep}, onRemoved))
	if tagMode == policy.TagModeReplace {
		n += 3
	}
	if update {
		n += 6
	}
	return n
}

// runSequence runs one random sequence and reports whether every check
// held.
func runSequence(t *testing.T, rng *rand.Rand, pol policy.Policy) bool {
	w := &propWorld{t: t, connectors: []string{"a", "b"}, rng: rng, pol: pol, state: projections.NewState(),
		dirs: map[string]map[string]propUser{}, changed: map[string]map[string]bool{}}
	for _, c := range w.connectors {
		w.dirs[c] = map[string]propUser{}
		w.changed[c] = map[string]bool{}
		for i := range propUsers / 2 {
			w.set(c, fmt.Sprintf("u%d", i), propUser{mail: w.randomMail(), enabled: true})
		}
	}
	for range propSteps {
		for n := 1 + rng.IntN(3); n > 0; n-- {
			w.change()
		}
		// Connectors sync in a random order, each check after each job.
		order := slices.Clone(w.connectors)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for round := range 2 {
			for _, c := range order {
				w.sync(c)
				if !w.noSharedEmail() {
					return false
				}
			}
			if round == 1 && pol.UpdateExisting && !w.everyUniqueMailActive() {
				return false
			}
		}
	}
	return true
}

// set puts a user in a connector's directory and notes the change.
func (w *propWorld) set(c, id string, u propUser) {
	w.dirs[c][id] = u
	w.changed[c][id] = true
}

func (w *propWorld) randomMail() string {
	m := fmt.Sprintf("m%d@contoso.com", w.rng.IntN(propMails))
	if w.rng.IntN(4) == 0 {
		return flipCase(w.rng, m)
	}
	return m
}

// flipCase changes the case of some letters of mail: the same address.
func flipCase(rng *rand.Rand, mail string) string {
	b := []byte(mail)
	for i, c := range b {
		if rng.IntN(2) == 0 {
			switch {
			case c >= 'a' && c <= 'z':
				b[i] = c - 'a' + 'A'
			case c >= 'A' && c <= 'Z':
				b[i] = c - 'A' + 'a'
			}
		}
	}
	return string(b)
}

// change makes one random directory change in a random connector.
func (w *propWorld) change() {
	c := w.connectors[w.rng.IntN(len(w.connectors))]
	d := w.dirs[c]
	ids := slices.Sorted(maps.Keys(d))
	pick := func() string { return ids[w.rng.IntN(len(ids))] }
	newID := func() string {
		for range 20 {
			id := fmt.Sprintf("u%d", w.rng.IntN(propUsers))
			if _, ok := d[id]; !ok {
				return id
			}
		}
		return ""
	}
	if len(ids) < 2 {
		if id := newID(); id != "" {
			w.set(c, id, propUser{mail: w.randomMail(), enabled: true})
			w.note("%s: new user %s %s", c, id, d[id].mail)
		}
		return
	}
	switch op := w.rng.IntN(9); op {
	case 0: // two users swap mails
		a, b := pick(), pick()
		ua, ub := d[a], d[b]
		ua.mail, ub.mail = ub.mail, ua.mail
		w.set(c, a, ua)
		w.set(c, b, ub)
		w.note("%s: %s and %s swap mails", c, a, b)
	case 1: // a user leaves (deleted or disabled) and another takes the mail
		a, b := pick(), pick()
		if a == b {
			return
		}
		mail := d[a].mail
		if w.rng.IntN(2) == 0 {
			delete(d, a)
			w.changed[c][a] = true
			w.note("%s: %s deleted, %s takes its mail %s", c, a, b, mail)
		} else {
			ua := d[a]
			ua.enabled = false
			w.set(c, a, ua)
			w.note("%s: %s disabled, %s takes its mail %s", c, a, b, mail)
		}
		ub := d[b]
		ub.mail = mail
		w.set(c, b, ub)
	case 2: // a user is renamed, another takes the old mail
		a, b := pick(), pick()
		ua, ub := d[a], d[b]
		ub.mail, ua.mail = ua.mail, w.randomMail()
		w.set(c, a, ua)
		w.set(c, b, ub)
		w.note("%s: %s renamed to %s, %s takes %s", c, a, ua.mail, b, ub.mail)
	case 3: // a rename, perhaps onto a mail in use
		a := pick()
		u := d[a]
		u.mail = w.randomMail()
		w.set(c, a, u)
		w.note("%s: %s renamed to %s", c, a, u.mail)
	case 4: // disabled or re-enabled
		a := pick()
		u := d[a]
		u.enabled = !u.enabled
		w.set(c, a, u)
		w.note("%s: %s enabled=%v", c, a, u.enabled)
	case 5: // deleted
		a := pick()
		delete(d, a)
		w.changed[c][a] = true
		w.note("%s: %s deleted", c, a)
	case 6: // a new user, or a deleted one back
		if id := newID(); id != "" {
			w.set(c, id, propUser{mail: w.randomMail(), enabled: true})
			w.note("%s: new user %s %s", c, id, d[id].mail)
		}
	case 7: // the mail's case changes
		a := pick()
		u := d[a]
		u.mail = flipCase(w.rng, u.mail)
		w.set(c, a, u)
		w.note("%s: %s's mail now spelt %s", c, a, u.mail)
	case 8: // the mail goes away
		a := pick()
		u := d[a]
		u.mail = ""
		w.set(c, a, u)
		w.note("%s: %s has no mail", c, a)
	}
}

func (w *propWorld) note(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf(format, args...))
}

// sync plans a job for connector c from its directory, as a full read or
// (one time in three) an incremental one of the users changed since its
// last sync, and folds the job's events into the state.
func (w *propWorld) sync(c string) {
	w.jobs++
	snap := newSnapshot()
	snap.complete = w.rng.IntN(3) != 0
	for id, u := range w.dirs[c] {
		if snap.complete || w.changed[c][id] {
			snap.users[id] = &connectorv1.User{Id: id, Mail: &u.mail, UserPrincipalName: ptr(id + "@contoso.onmicrosoft.com"),
				DisplayName: ptr(id), AccountEnabled: &u.enabled, UserType: ptr("Member")}
		}
	}
	if !snap.complete {
		for id := range w.changed[c] {
			if _, ok := w.dirs[c][id]; !ok {
				snap.users[id] = &connectorv1.User{Id: id, Removed: &connectorv1.Removal{Reason: "deleted"}}
			}
		}
	}
	clear(w.changed[c])
	// One-time tags now and then, so tag_mode has something to do.
	var opts *events.JobOptions
	if w.rng.IntN(3) == 0 {
		opts = &events.JobOptions{Tags: []string{fmt.Sprintf("t%d", w.rng.IntN(3))}}
	}
	jobID := fmt.Sprintf("job%d", w.jobs)
	sum := &events.Summary{}
	fold(w.t, w.state, planned(plan(w.state, c, jobID, Spec{Name: c, Policy: w.pol}, opts, snap, time.Unix(int64(w.jobs), 0), sum, nil)))
	w.note("%s synced (%s, full=%v): %d created, %d updated, %d archived, %d restored, %d deleted, %d kept, skipped %v",
		c, jobID, snap.complete, sum.RecipientsCreated, sum.RecipientsUpdated, sum.RecipientsArchived, sum.RecipientsRestored,
		sum.RecipientsRemoved, sum.RecipientsKept, sum.Skipped)
}

func ptr[T any](v T) *T { return &v }

// fold applies a job's events to the state as the projector does: each
// stored in its wire form and read back.
func fold(t *testing.T, s *projections.State, evs []events.Event) {
	t.Helper()
	for _, e := range evs {
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("marshal %s %s: %v", e.Type, e.Subject, err)
		}
		d, err := events.Decode(b)
		if err != nil {
			t.Fatalf("decode %s %s: %v", e.Type, e.Subject, err)
		}
		if _, err := s.Apply(d); err != nil {
			t.Fatalf("fold %s %s: %v", e.Type, e.Subject, err)
		}
	}
}

// noSharedEmail checks the invariant: no two active recipients of any
// connector have the same email, compared case-insensitively.
func (w *propWorld) noSharedEmail() bool {
	seen := map[string]string{}
	for _, c := range slices.Sorted(maps.Keys(w.state.Recipients)) {
		for _, id := range slices.Sorted(maps.Keys(w.state.Recipients[c])) {
			r := w.state.Recipients[c][id]
			if r.Status != events.RecipientActive {
				continue
			}
			k := strings.ToLower(r.Email)
			if other, ok := seen[k]; ok {
				w.fail("active recipients %s and %s share the email %s", other, r.ID, k)
				return false
			}
			seen[k] = r.ID
		}
	}
	return true
}

// everyUniqueMailActive checks that every user the default policy admits
// (enabled, with a mail) whose mail no other admitted user of any
// connector has, and no active recipient of another connector, is an
// active recipient with exactly its mail.
func (w *propWorld) everyUniqueMailActive() bool {
	users := map[string]int{}
	for _, c := range w.connectors {
		for _, u := range w.dirs[c] {
			if u.enabled && u.mail != "" {
				users[strings.ToLower(u.mail)]++
			}
		}
	}
	for _, c := range w.connectors {
		for _, id := range slices.Sorted(maps.Keys(w.dirs[c])) {
			u := w.dirs[c][id]
			k := strings.ToLower(u.mail)
			if !u.enabled || u.mail == "" || users[k] > 1 || w.heldByAnother(c, k) {
				continue
			}
			r, ok := w.state.Recipients[c][id]
			if !ok || r.Status != events.RecipientActive || r.Email != u.mail {
				w.fail("%s user %s (mail %s, no one else's) is not an active recipient with that mail: %+v", c, id, u.mail, r)
				return false
			}
		}
	}
	return true
}

// heldByAnother reports whether an active recipient of a connector other
// than c has the email key k.
func (w *propWorld) heldByAnother(c, k string) bool {
	for other, rs := range w.state.Recipients {
		if other == c {
			continue
		}
		for _, r := range rs {
			if r.Status == events.RecipientActive && strings.ToLower(r.Email) == k {
				return true
			}
		}
	}
	return false
}

// fail reports a broken property with what led to it.
func (w *propWorld) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Errorf(format, args...)
	w.t.Logf("what happened:\n  %s", strings.Join(w.log, "\n  "))
}
