// Package connectortest is the conformance suite every directory connector
// runs, in the spirit of Watermill's pubsub tests: one set of checks of the
// connector.v1 contract, run by each connector's own tests against its
// real source (azuread against graphsim, ldap against slapd and Samba,
// faulty in its normal mode), and by this package against an in-memory
// Fake and deliberately broken fakes, which must fail it.
//
// The stream rules the suite holds a connector to are connector.StreamRules,
// the ones the daemon's intake applies, with the bound a connector is asked
// to keep (connector.MaxBatchObjects) rather than the daemon's tolerance.
// Beyond them the suite checks what the daemon relies on without being able
// to check it per batch: a full read lists only what exists and names the
// neutral fields, an incremental read sends only what changed, a cursor
// comes back usable, an unusable one gives a full read with a reason, a
// canceled sync stops, a failed send stops it, and no secret reaches an
// error, a check or a batch.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"google.golang.org/protobuf/proto"
)

// T is what the checks need of a test: *testing.T has it, and the suite's
// own tests pass a recorder to see a broken connector fail.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Harness is what a connector's test gives the suite: the connector and a
// live source it can read and change.
type Harness struct {
	// New returns a fresh connector; the suite makes several.
	New func() connector.Connector
	// Config is a valid config block that reaches the source.
	Config *connectorv1.Config
	// GroupKinds are sent as SyncRequest.group_types; empty sends none
	// (the connector's default kinds).
	GroupKinds []string
	// Secrets are the secret values in Config and WrongSecret (a password,
	// a client secret), none of which may appear in an error, a check, a
	// config problem or a batch.
	Secrets []string
	// WrongSecret is Config with a secret the source refuses; nil skips
	// the checks that need one.
	WrongSecret *connectorv1.Config
	// Change makes changes in the source and says what an incremental
	// read must then send. Needed with Features.Incremental.
	Change func() (Changes, error)
	// InvalidateCursor makes the source refuse cursor (an expired Graph
	// delta token, a syncrepl cookie older than the session log, a DirSync
	// cookie of another domain) and returns the cursor to send. Needed
	// with Features.Incremental.
	InvalidateCursor func(cursor string) (string, error)
	// ForceRestart makes the source refuse the next read part way once,
	// so that the connector starts over (SyncBatch.restart). Needed with
	// Features.Restart.
	ForceRestart func() error
	// Timeout bounds one sync; 0 means two minutes. It is a deadline for
	// a hang, never a measurement.
	Timeout time.Duration
}

// Features says which parts of the contract a connector implements.
type Features struct {
	// Incremental: a cursor gives only the changes since it was issued.
	Incremental bool
	// Restart: the connector may start a read over within one sync.
	Restart bool
	// Groups: the source has groups with user members, which a full read
	// sends.
	Groups bool
	// MultiBatch: the source is large enough for a full read to take
	// more than one batch, so a sync can be canceled half way.
	MultiBatch bool
}

// Changes is what an incremental read must send after Harness.Change. A
// nil list is not checked; an empty one must match nothing.
type Changes struct {
	// Users are the IDs of users created or changed; RemovedUsers those
	// deleted, which must come marked removed.
	Users, RemovedUsers []string
	// Groups and RemovedGroups are the same for groups.
	Groups, RemovedGroups []string
}

// Check is one check of the suite, run as a subtest by Run.
type Check struct {
	Name string
	Run  func(t T, h *Harness, f Features)
}

// Checks returns the suite's checks, in the order Run runs them; the
// checks that change the source come last.
func Checks() []Check {
	return []Check{
		{"Describe", checkDescribe},
		{"ValidConfig", checkValidConfig},
		{"FullRead", checkFullRead},
		{"SendErrorStops", checkSendError},
		{"CancelStops", checkCancel},
		{"SecretsStayOut", checkSecrets},
		{"CursorRoundTrip", checkCursorRoundTrip},
		{"IncrementalReadsChanges", checkIncremental},
		{"InvalidCursorRereads", checkInvalidCursor},
		{"RestartStartsOver", checkRestart},
	}
}

// Run runs every check as a subtest of t.
func Run(t *testing.T, h Harness, f Features) {
	t.Helper()
	if h.New == nil || h.Config == nil {
		t.Fatal("connectortest.Run: the harness needs New and Config")
	}
	for _, c := range Checks() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, &h, f) })
	}
}

func (h *Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 2 * time.Minute
}

// Result is what one sync sent, reduced to what the checks compare.
type Result struct {
	// Batches counts the batches; Final is the last one.
	Batches int
	Final   *connectorv1.SyncBatch
	// Restarts counts restart batches. The maps below hold what came
	// after the last one, as the host keeps it.
	Restarts int
	// Users and Groups hold the objects sent, by ID (the last message of
	// each); RemovedUsers and RemovedGroups the IDs marked removed.
	Users, RemovedUsers   map[string]*connectorv1.User
	Groups, RemovedGroups map[string]*connectorv1.Group
	// Added and Removed are the member IDs sent, by group ID.
	Added, Removed map[string]map[string]bool
	// Problems are the contract's rules the stream broke.
	Problems []string
}

func newResult() *Result {
	r := &Result{}
	r.reset()
	return r
}

func (r *Result) reset() {
	r.Users, r.RemovedUsers = map[string]*connectorv1.User{}, map[string]*connectorv1.User{}
	r.Groups, r.RemovedGroups = map[string]*connectorv1.Group{}, map[string]*connectorv1.Group{}
	r.Added, r.Removed = map[string]map[string]bool{}, map[string]map[string]bool{}
}

// objects counts the objects sent after the last restart.
func (r *Result) objects() int {
	n := len(r.Users) + len(r.RemovedUsers) + len(r.Groups) + len(r.RemovedGroups)
	for _, m := range r.Added {
		n += len(m)
	}
	for _, m := range r.Removed {
		n += len(m)
	}
	return n
}

// userIDs returns the IDs of the users sent, sorted.
func (r *Result) userIDs() []string { return slices.Sorted(maps.Keys(r.Users)) }

// few shows at most ten IDs of a list, and how many there are.
func few(ids []string) string {
	if len(ids) <= 10 {
		return fmt.Sprint(ids)
	}
	return fmt.Sprintf("%v and %d more", ids[:10], len(ids)-10)
}

// reasonKey is what the daemon keeps of a plugin's rejected or sanitized
// reason (anything else is counted as "other").
var reasonKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Collect runs one Sync of c and checks each batch against the contract as
// it comes. send, when set, is called after each batch is recorded and
// may stop the sync by returning an error.
func Collect(ctx context.Context, c connector.Connector, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) (*Result, error) {
	r := newResult()
	rules := connector.StreamRules{Full: req.GetCursor() == "" || req.GetFull(), MaxObjects: connector.MaxBatchObjects}
	problem := func(format string, args ...any) {
		if len(r.Problems) < 20 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	err := c.Sync(ctx, req, func(b *connectorv1.SyncBatch) error {
		r.Batches++
		if err := rules.Check(b); err != nil {
			problem("batch %d: %v", r.Batches, err)
		}
		if b.GetRestart() {
			r.Restarts++
			if connector.BatchObjects(b) > 0 || b.GetDone() {
				problem("batch %d: a restart batch carries objects or ends the sync; the contract sends it otherwise empty", r.Batches)
			}
			r.reset()
		}
		for _, u := range b.GetUsers() {
			if !connector.ValidObjectID(u.GetId()) {
				problem("batch %d: user ID %q is not 1 to 64 of A-Z a-z 0-9 -: the daemon drops it", r.Batches, u.GetId())
			}
			if u.GetRemoved() != nil {
				r.RemovedUsers[u.GetId()] = u
				delete(r.Users, u.GetId())
			} else {
				// A user sent again (in parts) adds up, as the daemon
				// merges it.
				if prev, ok := r.Users[u.GetId()]; ok {
					merged := proto.Clone(prev).(*connectorv1.User)
					connector.MergeUser(merged, u)
					u = merged
				}
				r.Users[u.GetId()] = u
				delete(r.RemovedUsers, u.GetId())
			}
		}
		for _, g := range b.GetGroups() {
			if !connector.ValidObjectID(g.GetId()) {
				problem("batch %d: group ID %q is not 1 to 64 of A-Z a-z 0-9 -: the daemon drops it", r.Batches, g.GetId())
			}
			if g.GetRemoved() != nil {
				r.RemovedGroups[g.GetId()] = g
				delete(r.Groups, g.GetId())
			} else {
				r.Groups[g.GetId()] = g
				delete(r.RemovedGroups, g.GetId())
			}
		}
		for _, m := range b.GetMemberships() {
			add := func(set map[string]map[string]bool, ids []string) {
				for _, id := range ids {
					if set[m.GetGroupId()] == nil {
						set[m.GetGroupId()] = map[string]bool{}
					}
					set[m.GetGroupId()][id] = true
				}
			}
			add(r.Added, m.GetAddedUserIds())
			add(r.Removed, m.GetRemovedUserIds())
		}
		if p := b.GetProgress(); p != nil {
			for _, counts := range []map[string]int64{p.GetRejected(), p.GetSanitized()} {
				for k, n := range counts {
					if !reasonKey.MatchString(k) || n < 0 {
						problem("batch %d: progress counts %d under %q; reasons are snake_case words with counts from 0", r.Batches, n, k)
					}
				}
			}
			if p.GetRequests() < 0 || p.GetRetries() < 0 || p.GetUsers() < 0 || p.GetThrottleWaitMs() < 0 {
				problem("batch %d: progress has a negative counter: %v", r.Batches, p)
			}
		}
		if b.GetDone() {
			r.Final = b
		}
		if send != nil {
			return send(b)
		}
		return nil
	})
	if err == nil && r.Final == nil {
		problem("Sync returned nil without sending a final batch")
	}
	if r.Final != nil && r.Final.GetComplete() && (len(r.RemovedUsers) > 0 || len(r.RemovedGroups) > 0 || len(r.Removed) > 0) {
		problem("the read was complete but marked objects or members removed; a complete read lists only what exists")
	}
	return r, err
}

// sync runs one Sync with the harness's deadline and reports the
// stream's problems on t.
func (h *Harness) sync(t T, req *connectorv1.SyncRequest) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
	defer cancel()
	if req.Config == nil {
		req.Config = h.Config
	}
	if req.GroupTypes == nil {
		req.GroupTypes = h.GroupKinds
	}
	r, err := Collect(ctx, h.New(), req, nil)
	for _, p := range r.Problems {
		t.Errorf("%s", p)
	}
	if ctx.Err() != nil {
		t.Fatalf("the sync did not end within %s: it hangs", h.timeout())
	}
	return r, err
}

// mustSync is sync that stops the check on an error.
func (h *Harness) mustSync(t T, req *connectorv1.SyncRequest) *Result {
	t.Helper()
	r, err := h.sync(t, req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return r
}

// full runs a full read and checks what every full read must be.
func (h *Harness) full(t T, f Features) *Result {
	t.Helper()
	r := h.mustSync(t, &connectorv1.SyncRequest{JobId: "connectortest-full"})
	if !r.Final.GetComplete() {
		t.Errorf("a full read ended with complete = false")
	}
	if f.Incremental && r.Final.GetCursor() == "" {
		t.Errorf("a full read of an incremental connector sent no cursor")
	}
	return r
}

var (
	pluginName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	configKey  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
)

func checkDescribe(t T, h *Harness, _ Features) {
	d, err := h.New().Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if !pluginName.MatchString(d.GetName()) {
		t.Errorf("name %q is not a short lower-case machine name", d.GetName())
	}
	if d.GetVersion() == "" || d.GetDescription() == "" {
		t.Errorf("Describe leaves out the version or the description: %v", d)
	}
	seen := map[string]bool{}
	sensitive := false
	for _, f := range d.GetConfigFields() {
		switch {
		case !configKey.MatchString(f.GetName()):
			t.Errorf("config key %q is not a snake_case HCL attribute name", f.GetName())
		case seen[f.GetName()]:
			t.Errorf("config key %q is described twice", f.GetName())
		case f.GetType() == connectorv1.ConfigField_TYPE_UNSPECIFIED:
			t.Errorf("config key %q has no type", f.GetName())
		case f.GetDescription() == "":
			t.Errorf("config key %q has no description", f.GetName())
		}
		seen[f.GetName()] = true
		sensitive = sensitive || f.GetSensitive()
	}
	if len(h.Secrets) > 0 && !sensitive {
		t.Errorf("the config holds secrets but no config key is marked sensitive, so the daemon would log them")
	}
	for _, k := range d.GetDefaultGroupKinds() {
		if !slices.Contains(connector.GroupKinds(), k) {
			t.Errorf("default group kind %q is none of %v", k, connector.GroupKinds())
		}
	}
}

func checkValidConfig(t T, h *Harness, _ Features) {
	problems, err := h.New().ValidateConfig(context.Background(), h.Config)
	if err != nil {
		t.Fatalf("ValidateConfig: %v", err)
	}
	for _, p := range problems {
		t.Errorf("the harness's config is valid, but ValidateConfig says %s: %s", p.GetField(), p.GetMessage())
	}
}

func checkFullRead(t T, h *Harness, f Features) {
	r := h.full(t, f)
	if len(r.Users) == 0 {
		t.Fatalf("a full read sent no users; the harness's source must have some")
	}
	for id, u := range r.Users {
		if u.Enabled == nil || u.Guest == nil {
			t.Errorf("user %s: a full read leaves out enabled or guest, which the import policy decides by", id)
			break
		}
	}
	d, err := h.New().Describe(context.Background())
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	kinds := h.GroupKinds
	if len(kinds) == 0 {
		kinds = d.GetDefaultGroupKinds()
	}
	if f.Groups && len(r.Groups) == 0 {
		t.Errorf("a full read sent no groups of kinds %v; the harness's source must have some", kinds)
	}
	for id, g := range r.Groups {
		if g.Kind == nil || (len(kinds) > 0 && !slices.Contains(kinds, g.GetKind())) {
			t.Errorf("group %s: kind %q in a full read; want one of %v", id, g.GetKind(), kinds)
		}
	}
	for gid, members := range r.Added {
		if _, ok := r.Groups[gid]; !ok {
			t.Errorf("members of group %s, which the full read did not send", gid)
		}
		for id := range members {
			if _, ok := r.Users[id]; !ok {
				t.Errorf("group %s has member %s, which the full read did not send as a user", gid, id)
				break
			}
		}
	}
}

var errStop = errors.New("connectortest: the host stopped taking batches")

func checkSendError(t T, h *Harness, _ Features) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
	defer cancel()
	calls := 0
	r, err := Collect(ctx, h.New(), &connectorv1.SyncRequest{Config: h.Config, GroupTypes: h.GroupKinds}, func(*connectorv1.SyncBatch) error {
		calls++
		return errStop
	})
	if ctx.Err() != nil {
		t.Fatalf("Sync did not return within %s after its send failed", h.timeout())
	}
	if !errors.Is(err, errStop) {
		t.Errorf("Sync returned %v after its send failed; want the send's error (wrapped with %%w)", err)
	}
	if calls != 1 {
		t.Errorf("Sync called send %d times after the first call failed; want it to stop", calls-1)
	}
	_ = r
}

func checkCancel(t T, h *Harness, f Features) {
	if !f.MultiBatch {
		t.Skipf("the harness's source fits in one batch: nothing to cancel half way")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	guard, stop := context.WithTimeout(context.Background(), h.timeout())
	defer stop()
	canceled, after := false, 0
	done := make(chan struct{})
	var r *Result
	var err error
	go func() {
		defer close(done)
		r, err = Collect(ctx, h.New(), &connectorv1.SyncRequest{Config: h.Config, GroupTypes: h.GroupKinds}, func(b *connectorv1.SyncBatch) error {
			if canceled {
				after++
			}
			if !canceled && !b.GetDone() {
				canceled = true
				cancel()
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-guard.Done():
		t.Fatalf("Sync did not return within %s of its context being canceled", h.timeout())
	}
	if !canceled {
		t.Skipf("the first batch was the final one: nothing to cancel half way")
	}
	if err == nil {
		t.Errorf("Sync returned nil after its context was canceled (%d batches after it, final %v)", after, r.Final != nil)
	}
	if r.Final != nil {
		t.Errorf("Sync sent its final batch after its context was canceled")
	}
}

// textOf is every piece of text a batch carries that a host may show.
func textOf(b *connectorv1.SyncBatch) string {
	var s []string
	s = append(s, b.GetCursor(), b.GetResyncReason())
	if p := b.GetProgress(); p != nil {
		s = append(s, p.GetPhase(), p.GetRetrying().GetCause())
		s = append(s, slices.Collect(maps.Keys(p.GetRejected()))...)
		s = append(s, slices.Collect(maps.Keys(p.GetSanitized()))...)
	}
	return strings.Join(s, "\n")
}

func checkSecrets(t T, h *Harness, _ Features) {
	if len(h.Secrets) == 0 {
		t.Skipf("the harness names no secrets")
	}
	leaks := func(what, text string) {
		t.Helper()
		for _, s := range h.Secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s carries a secret: %q", what, text)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
	defer cancel()
	configs := []*connectorv1.Config{h.Config}
	if h.WrongSecret != nil {
		configs = append(configs, h.WrongSecret)
	}
	for i, cfg := range configs {
		which := [...]string{"with the right secret", "with a wrong secret"}[i]
		c := h.New()
		problems, err := c.ValidateConfig(ctx, cfg)
		for _, p := range problems {
			leaks("a config problem "+which, p.GetField()+": "+p.GetMessage())
		}
		if err != nil {
			leaks("ValidateConfig's error "+which, err.Error())
		}
		resp, err := c.TestConnection(ctx, cfg)
		if err != nil {
			leaks("TestConnection's error "+which, err.Error())
		}
		for _, ch := range resp.GetChecks() {
			leaks("a connection check "+which, strings.Join([]string{ch.GetName(), ch.GetDetail(), ch.GetRemedy(), ch.GetCode()}, "\n"))
		}
		if i == 1 && err == nil && resp.GetOk() {
			t.Errorf("the connection test passed with a wrong secret")
		}
		var text []string
		_, err = Collect(ctx, h.New(), &connectorv1.SyncRequest{Config: cfg, GroupTypes: h.GroupKinds}, func(b *connectorv1.SyncBatch) error {
			text = append(text, textOf(b))
			return nil
		})
		leaks("a batch "+which, strings.Join(text, "\n"))
		if err != nil {
			leaks("Sync's error "+which, err.Error())
		}
		if i == 1 && err == nil {
			t.Errorf("a sync with a wrong secret succeeded")
		}
	}
}

func checkCursorRoundTrip(t T, h *Harness, f Features) {
	if !f.Incremental {
		t.Skipf("the connector reads the whole directory every time")
	}
	first := h.full(t, f)
	r := h.mustSync(t, &connectorv1.SyncRequest{Cursor: first.Final.GetCursor()})
	if r.Final.GetComplete() || r.Restarts > 0 || r.Final.GetResyncReason() != "" {
		t.Errorf("an unchanged source read from a fresh cursor gave a full read (complete %v, restarts %d, resync reason %q)",
			r.Final.GetComplete(), r.Restarts, r.Final.GetResyncReason())
	}
	if n := r.objects(); n != 0 {
		t.Errorf("an unchanged source read from a fresh cursor sent %d objects (users %s); want none", n, few(r.userIDs()))
	}
	if r.Final.GetCursor() == "" {
		t.Errorf("an incremental read sent no cursor for the next one")
	}
	again := h.mustSync(t, &connectorv1.SyncRequest{Cursor: r.Final.GetCursor()})
	if again.Final.GetComplete() || again.objects() != 0 {
		t.Errorf("the cursor of an incremental read did not round-trip: complete %v, %d objects", again.Final.GetComplete(), again.objects())
	}
}

func checkIncremental(t T, h *Harness, f Features) {
	if !f.Incremental {
		t.Skipf("the connector reads the whole directory every time")
	}
	if h.Change == nil {
		t.Fatalf("an incremental connector's harness needs Change")
	}
	first := h.full(t, f)
	want, err := h.Change()
	if err != nil {
		t.Fatalf("changing the source: %v", err)
	}
	r := h.mustSync(t, &connectorv1.SyncRequest{Cursor: first.Final.GetCursor()})
	if r.Final.GetComplete() || r.Restarts > 0 {
		t.Errorf("an incremental read of a few changes read everything (complete %v, restarts %d, resync reason %q)",
			r.Final.GetComplete(), r.Restarts, r.Final.GetResyncReason())
	}
	same := func(what string, got map[string]bool, want []string) {
		t.Helper()
		if want == nil {
			return
		}
		g := slices.Sorted(maps.Keys(got))
		w := slices.Sorted(slices.Values(want))
		w = slices.Compact(w)
		if !slices.Equal(g, w) {
			t.Errorf("%s: the incremental read sent %s; want exactly %s", what, few(g), few(w))
		}
	}
	ids := func(m any) map[string]bool {
		out := map[string]bool{}
		switch m := m.(type) {
		case map[string]*connectorv1.User:
			for id := range m {
				out[id] = true
			}
		case map[string]*connectorv1.Group:
			for id := range m {
				out[id] = true
			}
		}
		return out
	}
	same("changed users", ids(r.Users), want.Users)
	same("removed users", ids(r.RemovedUsers), want.RemovedUsers)
	same("changed groups", ids(r.Groups), want.Groups)
	same("removed groups", ids(r.RemovedGroups), want.RemovedGroups)
	after := h.mustSync(t, &connectorv1.SyncRequest{Cursor: r.Final.GetCursor()})
	if n := after.objects(); n != 0 || after.Final.GetComplete() {
		t.Errorf("the read after the changes were read sent %d objects again (complete %v); want none", n, after.Final.GetComplete())
	}
}

func checkInvalidCursor(t T, h *Harness, f Features) {
	if !f.Incremental {
		t.Skipf("the connector reads the whole directory every time")
	}
	if h.InvalidateCursor == nil {
		t.Fatalf("an incremental connector's harness needs InvalidateCursor")
	}
	first := h.full(t, f)
	bad, err := h.InvalidateCursor(first.Final.GetCursor())
	if err != nil {
		t.Fatalf("invalidating the cursor: %v", err)
	}
	r := h.mustSync(t, &connectorv1.SyncRequest{Cursor: bad})
	if !r.Final.GetComplete() {
		t.Errorf("a refused cursor did not give a full read in the same sync (complete = false)")
	}
	if r.Final.GetResyncReason() == "" {
		t.Errorf("a refused cursor gave a full read without a resync reason, which the job summary shows the admin")
	}
	full := h.full(t, f)
	if got, want := r.userIDs(), full.userIDs(); !slices.Equal(got, want) {
		t.Errorf("the full read after a refused cursor sent %d users; a full read sends %d", len(got), len(want))
	}
	if r.Final.GetCursor() == "" {
		t.Errorf("the full read after a refused cursor sent no new cursor")
	}
}

func checkRestart(t T, h *Harness, f Features) {
	if !f.Restart {
		t.Skipf("the connector never starts a read over")
	}
	if h.ForceRestart == nil {
		t.Fatalf("a restarting connector's harness needs ForceRestart")
	}
	if err := h.ForceRestart(); err != nil {
		t.Fatalf("forcing a restart: %v", err)
	}
	r := h.mustSync(t, &connectorv1.SyncRequest{JobId: "connectortest-restart"})
	if r.Restarts == 0 {
		t.Fatalf("the source refused the read part way, but the connector sent no restart batch")
	}
	full := h.full(t, f)
	if got, want := r.userIDs(), full.userIDs(); !slices.Equal(got, want) {
		t.Errorf("after its restart the read sent %d users; a full read sends %d", len(got), len(want))
	}
}
