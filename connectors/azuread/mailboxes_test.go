package azuread

import (
	"context"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// withMailboxRead is graphsim's default permissions and MailboxSettings.Read.
func withMailboxRead() []string {
	return append(graphsim.DefaultRoles(), graphsim.RoleMailboxSettingsRead)
}

// ClassifyMailboxes answers each user's userPurpose as graphsim holds it,
// leaves out users without a mailbox, sends at most 20 requests to a
// JSON batch and retries the requests a batch answers 429 on their own,
// without asking twice about users already answered.
func TestClassifyMailboxesAgainstGraphsim(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 300, Resources: 15, Groups: 4, Seed: 23, Attributes: true, Roles: withMailboxRead()})
	sim.SetFaults(graphsim.Faults{BatchItemThrottleRate: 0.2, RetryAfter: "0.05", Seed: 5})
	cfg := simConfig(t, sim, nil)
	tenant := sim.Tenant()
	var ids []string
	want := map[string]string{}
	kinds := map[string]int{}
	for _, u := range tenant.Users {
		ids = append(ids, u.ID)
		if u.MailboxPurpose != "" {
			want[u.ID] = u.MailboxPurpose
			kinds[u.MailboxPurpose]++
		}
	}
	for _, k := range []string{connector.MailboxUser, connector.MailboxShared, connector.MailboxRoom, connector.MailboxEquipment} {
		if kinds[k] == 0 {
			t.Fatalf("the generated tenant has no %s mailbox (%v): the test proves nothing", k, kinds)
		}
	}
	if len(want) == len(ids) {
		t.Fatal("every generated user has a mailbox: leaving out users without one is not tested")
	}
	sim.ResetCounters()
	log, logs := logBuffer()
	resp, err := New(log).ClassifyMailboxes(context.Background(), &connectorv1.ClassifyMailboxesRequest{Config: cfg, UserIds: ids, JobId: "job-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetUnavailable() != "" {
		t.Fatalf("unavailable: %s", resp.GetUnavailable())
	}
	for id, p := range want {
		if got := resp.GetPurposes()[id]; got != p {
			t.Errorf("user %s: purpose %q, want %q", id, got, p)
		}
	}
	for id, p := range resp.GetPurposes() {
		if _, ok := want[id]; !ok {
			t.Errorf("user %s has no mailbox in graphsim, classified %q", id, p)
		}
	}
	c := sim.Counters()
	batches := c["POST /v1.0/$batch 200"]
	items := c["GET /v1.0/users/{id}/mailboxSettings 200"] + c["GET /v1.0/users/{id}/mailboxSettings 404"]
	throttled := c["GET /v1.0/users/{id}/mailboxSettings 429"]
	if items != int64(len(ids)) {
		t.Errorf("%d mailboxSettings requests answered, want one per user (%d): counters %v", items, len(ids), c)
	}
	if throttled == 0 || resp.GetRetries() != throttled {
		t.Errorf("%d items throttled, %d retries reported: each throttled item must be retried once on its own (counters %v)", throttled, resp.GetRetries(), c)
	}
	if min := (int64(len(ids)) + throttled + 19) / 20; batches < min || batches > min+throttled {
		t.Errorf("%d batches for %d items and %d retries; want about %d (20 to a batch)", batches, len(ids), throttled, min)
	}
	if resp.GetRequests() != batches {
		t.Errorf("requests reported %d, want the %d batches sent", resp.GetRequests(), batches)
	}

	// Whole batches throttled: each POST is sent again, with its body
	// (gzipped by the SDK's middleware at every attempt).
	sim.SetFaults(graphsim.Faults{ThrottleRate: 0.5, RetryAfter: "0.05", Seed: 9})
	sim.ResetCounters()
	again, err := New(log).ClassifyMailboxes(context.Background(), &connectorv1.ClassifyMailboxesRequest{Config: cfg, UserIds: ids[:100]})
	if err != nil {
		t.Fatal(err)
	}
	c = sim.Counters()
	if c["POST /v1.0/$batch 429"] == 0 || c["POST /v1.0/$batch 400"] != 0 || again.GetRetries() < c["POST /v1.0/$batch 429"] {
		t.Errorf("throttled batches: counters %v, retries %d", c, again.GetRetries())
	}
	for _, id := range ids[:100] {
		if again.GetPurposes()[id] != want[id] {
			t.Errorf("user %s after throttled batches: %q, want %q", id, again.GetPurposes()[id], want[id])
		}
	}
	assertNoSecrets(t, "log", logs.String())
}

// Without MailboxSettings.Read the answer says so, names the permission
// and classifies no one; the connection test warns but passes.
func TestClassifyMailboxesWithoutPermission(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 30, Resources: 3, Groups: 2, Seed: 3, Attributes: true})
	cfg := simConfig(t, sim, nil)
	var ids []string
	for _, u := range sim.Tenant().Users {
		ids = append(ids, u.ID)
	}
	log, logs := logBuffer()
	c := New(log)
	resp, err := c.ClassifyMailboxes(context.Background(), &connectorv1.ClassifyMailboxesRequest{Config: cfg, UserIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetPurposes()) != 0 {
		t.Errorf("classified %d users without the permission", len(resp.GetPurposes()))
	}
	for _, part := range []string{"MailboxSettings.Read", "admin consent", "shared, room and equipment"} {
		if !strings.Contains(resp.GetUnavailable(), part) {
			t.Errorf("unavailable %q does not say %q", resp.GetUnavailable(), part)
		}
	}

	tc, err := c.TestConnection(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := tc.GetChecks()[len(tc.GetChecks())-1]
	if !tc.GetOk() || last.GetName() != CheckMailboxes || !last.GetOk() || !last.GetWarning() || last.GetCode() != CodeMissingMailboxSettingsRead {
		t.Fatalf("connection test %v; want it passed with a warning %s on %q", tc, CodeMissingMailboxSettingsRead, CheckMailboxes)
	}
	if !strings.Contains(last.GetRemedy(), "MailboxSettings.Read") {
		t.Errorf("remedy %q does not name the permission", last.GetRemedy())
	}
	assertNoSecrets(t, "answer", resp.String()+tc.String())
	assertNoSecrets(t, "log", logs.String())

	// Granted later (consent given): the same test passes plainly.
	sim.SetRoles(withMailboxRead())
	tc, err = c.TestConnection(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	last = tc.GetChecks()[len(tc.GetChecks())-1]
	if !tc.GetOk() || last.GetWarning() || !strings.Contains(last.GetDetail(), "MailboxSettings.Read granted") {
		t.Errorf("with the permission: %v", last)
	}
}

// A purpose Graph adds later is "others", which the host knows.
func TestPurposeOfUnknownValues(t *testing.T) {
	for in, want := range map[string]string{"shared": "shared", "Room": "room", "unknownFutureValue": "others", "kiosk": "others", "user": "user"} {
		if got := purpose(in); got != want {
			t.Errorf("purpose(%q) = %q, want %q", in, got, want)
		}
	}
}
