package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/projections"
)

// usersN is n enabled users u000… with mails u000@contoso.com….
func usersN(n int) []*connectorv1.User {
	var out []*connectorv1.User
	for i := range n {
		out = append(out, user(fmt.Sprintf("u%03d", i), fmt.Sprintf("u%03d@contoso.com", i), fmt.Sprintf("User %d", i), ""))
	}
	return out
}

// removeDemo makes the runner's configuration lose connector demo (a
// reload), keeping one other connector.
func (e *env) removeDemo() {
	e.runner.SetSpecs([]Spec{{Name: "other", Config: &connectorv1.Config{}, Policy: policy.Default()}})
}

func TestRetireRefusals(t *testing.T) {
	e := startEnv(t, &dir{users: usersN(3)})
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	ctx := context.Background()
	if _, err := e.runner.RetireConnector(ctx, "demo", Retire{}, false, "test"); !errors.Is(err, ErrConfigured) ||
		!strings.Contains(err.Error(), "remove its block from plugins.hcl") {
		t.Errorf("retiring a configured connector: %v, want ErrConfigured saying to remove it first", err)
	}
	e.removeDemo()
	tests := []struct {
		name, connector, onRemoved string
		want                       error
	}{
		{"still configured", "other", "", ErrConfigured},
		{"never known", "nope", "", ErrUnknownConnector},
		{"keep is no retire", "demo", policy.OnRemovedKeep, ErrInvalidRetire},
		{"an unknown rule", "demo", "purge", ErrInvalidRetire},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.runner.RetireConnector(ctx, tt.connector, Retire{OnRemoved: tt.onRemoved}, false, "test"); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if n := len(e.recipients()); n != 3 {
		t.Errorf("%d recipients after refused retires, want the 3 untouched", n)
	}
	for _, r := range e.recipients() {
		if r.Status != events.RecipientActive {
			t.Errorf("recipient %s is %s after refused retires", r.ID, r.Status)
		}
	}
}

func TestRetireJob(t *testing.T) {
	tests := []struct {
		name      string
		users     int
		onRemoved string
		allow     bool
		// wantState is the job's final state; wantLeft the recipients left
		// (archived ones included) and wantActive the active ones.
		wantState            string
		wantLeft, wantActive int
		reason               string
	}{
		{name: "archive by default", users: 5, wantState: events.StateCompleted, wantLeft: 5},
		{name: "delete", users: 5, onRemoved: policy.OnRemovedDelete, wantState: events.StateCompleted},
		{name: "mass removal refused", users: 60, wantState: events.StateFailed, wantLeft: 60, wantActive: 59,
			reason: "dirsync connector retire demo --allow-mass-removal"},
		{name: "mass removal confirmed", users: 60, allow: true, wantState: events.StateCompleted, wantLeft: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &dir{users: usersN(tt.users)}
			e := startEnv(t, d)
			if j := e.sync(); j.State != events.StateCompleted {
				t.Fatal(j.Reason)
			}
			// One user left while the connector was still configured: under
			// delete, the retire takes its archived recipient too.
			d.mu.Lock()
			d.users = d.users[1:]
			d.mu.Unlock()
			if j := e.sync(); j.State != events.StateCompleted {
				t.Fatal(j.Reason)
			}
			e.removeDemo()
			if u := e.runner.Unconfigured(); len(u) != 1 || u[0].Name != "demo" || u[0].Active != tt.users-1 || u[0].Archived != 1 {
				t.Fatalf("Unconfigured() = %+v, want demo with %d active, 1 archived", u, tt.users-1)
			}
			id, err := e.runner.RetireConnector(context.Background(), "demo", Retire{OnRemoved: tt.onRemoved}, tt.allow, "test")
			if err != nil {
				t.Fatal(err)
			}
			j := e.waitFinal(id)
			if j.State != tt.wantState || !strings.Contains(j.Reason, tt.reason) {
				t.Fatalf("retire job %s %q, want %s with %q", j.State, j.Reason, tt.wantState, tt.reason)
			}
			rs := e.recipients()
			active := 0
			for _, r := range rs {
				if r.Status == events.RecipientActive {
					active++
				}
			}
			if len(rs) != tt.wantLeft || active != tt.wantActive {
				t.Errorf("after the retire: %d recipients, %d active; want %d, %d", len(rs), active, tt.wantLeft, tt.wantActive)
			}
			if tt.wantState != events.StateCompleted {
				return
			}
			want := []string{events.StatePending, events.StateStarted, events.StateProcessing, events.StateSaving, events.StateCompleted}
			if got := historyStates(j); !slices.Equal(got, want) {
				t.Errorf("states %v, want %v", got, want)
			}
			changes := e.changes(id)
			wantKind, wantChanges := "archived", tt.users-1
			if tt.onRemoved == policy.OnRemovedDelete {
				wantKind, wantChanges = "removed", tt.users
			}
			if len(changes) != wantChanges {
				t.Fatalf("%d changes, want %d", len(changes), wantChanges)
			}
			for _, c := range changes {
				if c.Kind != wantKind || c.Reason != RetireReason("demo") {
					t.Fatalf("change %+v, want %s with the retire reason", c, wantKind)
				}
			}
			if s := j.Summary; s == nil || s.RecipientsArchived+s.RecipientsRemoved != wantChanges || s.Recipients != 0 {
				t.Errorf("summary %+v", j.Summary)
			}
			if u := e.runner.Unconfigured(); len(u) != 1 || u[0].Active != 0 {
				t.Errorf("Unconfigured() after the retire = %+v, want demo with 0 active", u)
			}
			// The live read models (KV) equal a rebuild from the stream: the
			// retire's events replay, deletes included.
			fresh, err := projections.Rebuild(context.Background(), e.st)
			if err != nil {
				t.Fatal(err)
			}
			diffs, err := projections.Diff(context.Background(), e.b.JS, fresh)
			if err != nil || len(diffs) > 0 || fresh.Malformed > 0 {
				t.Errorf("rebuild vs live: %v, %v, %d malformed", diffs, err, fresh.Malformed)
			}
		})
	}
}

// TestRetireAfterRestart: a connector removed before the daemon started
// has no worker; its retire job gets one, and a second retire replaces
// the first if it has not reached SAVING, never running beside it.
func TestRetireAfterRestart(t *testing.T) {
	e := startEnv(t, &dir{users: usersN(3)})
	if j := e.sync(); j.State != events.StateCompleted {
		t.Fatal(j.Reason)
	}
	e.runner.Stop()
	e.runner = New(e.st, e.proj.Projector, nil, nil, e.runner.log)
	if err := e.runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.runner.Stop)
	if u := e.runner.Unconfigured(); len(u) != 1 || u[0].Name != "demo" || u[0].Active != 3 {
		t.Fatalf("Unconfigured() = %+v", u)
	}
	if adv := e.runner.Unconfigured()[0].Advice(); !strings.Contains(adv, "3 active recipients") || !strings.Contains(adv, "dirsync connector retire demo") {
		t.Errorf("advice %q names neither the count nor the command", adv)
	}
	id, err := e.runner.RetireConnector(context.Background(), "demo", Retire{}, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	id2, err := e.runner.RetireConnector(context.Background(), "demo", Retire{}, false, "test")
	if err != nil {
		t.Fatal(err)
	}
	first, second := e.waitFinal(id), e.waitFinal(id2)
	if second.State != events.StateCompleted || (first.State != events.StateCompleted && first.State != events.StateCanceled) {
		t.Fatalf("retires: first %s (%s), second %s (%s); want the second COMPLETED, the first COMPLETED or CANCELED",
			first.State, first.Reason, second.State, second.Reason)
	}
	if first.FinishedAt.After(*second.FinishedAt) || (first.State == events.StateCompleted && first.History[len(first.History)-1].At.After(second.History[1].At)) {
		t.Errorf("the two retires overlapped: first %v, second %v", first.History, second.History)
	}
	for _, r := range e.recipients() {
		if r.Status != events.RecipientArchived {
			t.Errorf("recipient %s is %s after the retire", r.ID, r.Status)
		}
	}
}

// TestRenamedFromAdopts: the first sync of a connector renamed from
// another archives the old one's active recipients before it creates its
// own from them, so that no email is ever active twice in the stream,
// and the adopted recipients keep what the old ones had (tags).
func TestRenamedFromAdopts(t *testing.T) {
	s := projections.NewState()
	old := []*connectorv1.User{user("a", "a@contoso.com", "A", ""), user("b", "b@contoso.com", "B", ""), user("x", "x@contoso.com", "X", "")}
	pol := policy.Default()
	pol.Tags = []string{"q4"}
	sum := &events.Summary{}
	fold(t, s, planned(plan(s, "old", "j1", Spec{Name: "old", Policy: pol}, nil, fullRead(old...), time.Unix(1, 0), sum, nil)))
	// x left while old was configured: its archived recipient stays old's.
	fold(t, s, planned(plan(s, "old", "j2", Spec{Name: "old", Policy: pol}, nil, fullRead(old[:2]...), time.Unix(2, 0), sum, nil)))

	// new reads the same tenant: a and b, and c who joined; b is now disabled.
	disabled := user("b", "b@contoso.com", "B", "")
	disabled.AccountEnabled = new(bool)
	next := fullRead(user("a", "a@contoso.com", "A", "Sales"), disabled, user("c", "c@contoso.com", "C", ""))
	sum = &events.Summary{}
	evs := planned(plan(s, "new", "j3", Spec{Name: "new", Policy: policy.Default(), RenamedFrom: "old"}, nil, next, time.Unix(3, 0), sum, nil))
	want := []string{"archived a a@contoso.com", "archived b b@contoso.com", "created a a@contoso.com", "created c c@contoso.com"}
	if got := recipientEvents(evs); !slices.Equal(got, want) {
		t.Fatalf("recipient events %v, want %v", got, want)
	}
	// Fold one event at a time: never two active recipients with one email.
	for _, e := range evs {
		fold(t, s, []events.Event{e})
		seen := map[string]string{}
		for c, rs := range s.Recipients {
			for _, r := range rs {
				if r.Status != events.RecipientActive {
					continue
				}
				if other, dup := seen[policy.EmailKey(r.Email)]; dup {
					t.Fatalf("after %s %s: %s and %s share %s", e.Type, e.Subject, other, r.ID, r.Email)
				}
				seen[policy.EmailKey(r.Email)] = c + "." + r.ObjectID
			}
		}
	}
	a := s.Recipients["new"]["a"]
	if a.ID != "new.a" || a.Department != "Sales" || !slices.Equal(a.Tags, []string{"q4"}) {
		t.Errorf("adopted recipient %+v, want new.a with old's tag q4 and the new department", a)
	}
	if _, ok := s.Recipients["new"]["b"]; ok {
		t.Errorf("b (disabled) was adopted; it must stay archived under old")
	}
	if r := s.Recipients["old"]["x"]; r.Status != events.RecipientArchived {
		t.Errorf("old's archived x: %+v, want it left archived", r)
	}
	var reason string
	for _, e := range evs {
		if c, ok := e.Data.(events.RecipientChange); ok && e.Type == events.TypeRecipientCreated && c.Recipient.ObjectID == "a" {
			reason = c.Reason
		}
	}
	if !strings.Contains(reason, `adopted from recipient old.a (renamed_from = "old")`) {
		t.Errorf("reason of the adopted recipient %q does not name old.a", reason)
	}
	if sum.RecipientsCreated != 2 || sum.RecipientsArchived != 0 || len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "2 active recipients of connector old were archived") {
		t.Errorf("summary %+v", sum)
	}

	// Once old has no active recipient, renamed_from does nothing.
	sum = &events.Summary{}
	evs = planned(plan(s, "new", "j4", Spec{Name: "new", Policy: policy.Default(), RenamedFrom: "old"}, nil, next, time.Unix(4, 0), sum, nil))
	if got := recipientEvents(evs); len(got) != 0 || len(sum.Warnings) != 0 {
		t.Errorf("second sync: events %v, warnings %v; want none", got, sum.Warnings)
	}
}
