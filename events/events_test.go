package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func samples() map[string]Event {
	at := time.Date(2026, 11, 23, 19, 50, 0, 0, time.UTC)
	job := "20261123T195000000-0a1b2c3d"
	uid := "48d31887-5fad-4d73-a9f5-3c356e68a038"
	gid := "02bd9fd6-8f93-4758-87c3-1fb73740a315"
	rec := Recipient{ID: "demo." + uid, Connector: "demo", ObjectID: uid, Email: "Zoe.Muller@contoso.com",
		DisplayName: "Zoë Müller", GivenName: "Zoë", Surname: "Müller", Department: "Marketing", JobTitle: "Manager",
		Groups: []string{"All Company", "Marketing Team"}, Tags: []string{}, Status: RecipientActive, UpdatedAt: at}
	archived := rec
	archived.Status = RecipientArchived
	return map[string]Event{
		"sync_state_completed": New(TypeSyncState, SyncSubject("demo", job), "demo", job, 5, at, SyncState{
			JobID: job, Connector: "demo", State: StateCompleted, RequestedBy: "cli",
			Summary: &Summary{UsersRetrieved: 250, GroupsRetrieved: 11, DirectoryRequests: 9, GraphRequests: 9, Recipients: 230, RecipientsCreated: 230, DurationMS: 1234,
				Skipped: map[string]int{"no_email": 12, "disabled": 8}, RejectedObjects: 3,
				Rejected: map[string]int64{"invalid_id": 1, "id_not_guid": 2}, Sanitized: map[string]int64{"control_characters": 2, "invalid_email": 1}},
		}),
		"user_changed": New(TypeUserChanged, DirectorySubject("demo", "user", uid), "demo", job, 0, at, User{
			ID: uid, UserPrincipalName: "zoe.muller@contoso.onmicrosoft.com", Mail: "Zoe.Muller@contoso.com",
			DisplayName: "Zoë Müller", AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1}),
		"user_changed_guest": New(TypeUserChanged, DirectorySubject("demo", "user", uid), "demo", job, 0, at, User{
			ID: uid, UserPrincipalName: "zoe_fabrikam.com#EXT#@contoso.onmicrosoft.com", Mail: "zoe@fabrikam.com",
			AccountEnabled: true, UserType: "Guest", Guest: true, Licensed: OptFalse}),
		"user_changed_ldap": New(TypeUserChanged, DirectorySubject("demo", "user", uid), "demo", job, 0, at, User{
			ID: uid, UserPrincipalName: "zoe@example.test", Mail: "zoe.muller@example.test", DisplayName: "Zoë Müller"}),
		"user_changed_identity": New(TypeUserChanged, DirectorySubject("demo", "user", uid), "demo", job, 0, at, User{
			ID: uid, UserPrincipalName: "zoe.muller@contoso.onmicrosoft.com", Mail: "Zoe.Muller@contoso.com", DisplayName: "Zoë Müller",
			AccountEnabled: true, UserType: "Member", AssignedLicenseCount: 1, Licensed: OptTrue,
			ProxyAddresses: ListOf("SMTP:Zoe.Muller@contoso.com", "smtp:zm@contoso.com"), MailboxPurpose: "user",
			Attributes: MapOf(map[string]string{"preferredLanguage": "de-DE", "manager": gid, "officeLocation": "Oslo HQ"})}),
		"recipient_updated_identity": New(TypeRecipientUpdated, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: withIdentity(rec, gid), Changed: []string{"language", "managerId", "managerEmail"}, Reason: "user passes the import policy"}),
		"user_removed": New(TypeUserRemoved, DirectorySubject("demo", "user", uid), "demo", job, 0, at, Removed{ID: uid, Reason: "missing"}),
		"group_changed": New(TypeGroupChanged, DirectorySubject("demo", "group", gid), "demo", job, 0, at, Group{
			ID: gid, DisplayName: "Marketing Team", Mail: "marketing@contoso.com", GroupTypes: []string{"Unified"}, MailEnabled: true}),
		"group_changed_kind": New(TypeGroupChanged, DirectorySubject("demo", "group", gid), "demo", job, 0, at, Group{
			ID: gid, DisplayName: "Engineering", GroupTypes: []string{}, Kind: "security"}),
		"group_members_changed": New(TypeGroupMembersChanged, DirectorySubject("demo", "group", gid), "demo", job, 0, at,
			MembersChanged{GroupID: gid, Added: []string{uid}}),
		"recipient_created": New(TypeRecipientCreated, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: rec, Reason: "user has a mail address"}),
		"recipient_updated": New(TypeRecipientUpdated, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: rec, Changed: []string{"department"}, Reason: "user has a mail address"}),
		"recipient_archived": New(TypeRecipientArchived, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: archived, Changed: []string{"status"}, Reason: "user is no longer in the directory"}),
		"recipient_restored": New(TypeRecipientRestored, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: rec, Changed: []string{"status"}, Reason: "user is back in the directory"}),
		"sync_state_pending_with_options": New(TypeSyncState, SyncSubject("demo", job), "demo", job, 0, at, SyncState{
			JobID: job, Connector: "demo", State: StatePending, RequestedBy: "cli",
			Options: &JobOptions{DryRun: true, Tags: []string{"q4-campaign"}, TagMode: "replace"},
		}),
		"connector_claimed": NewClaim(Claim{Connector: "demo", Epoch: 41, Replica: "appliance-b", Previous: 17}, at),
		"recipient_created_fenced": fenced(New(TypeRecipientCreated, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: rec, Reason: "user has a mail address"}), 41),
		"recipient_removed": New(TypeRecipientRemoved, RecipientSubject("demo", uid), "demo", job, 0, at,
			RecipientChange{Recipient: rec, Reason: "user is no longer in the directory"}),
	}
}

// withIdentity is r with aliases, a language, a manager and attributes.
func withIdentity(r Recipient, manager string) Recipient {
	r.Aliases = []string{"zm@contoso.com"}
	r.Language = "de-DE"
	r.ManagerID, r.ManagerEmail = manager, "max.mustermann@contoso.com"
	r.Attributes = map[string]string{"site": "Oslo HQ"}
	return r
}

// fenced is e appended under a claim of epoch.
func fenced(e Event, epoch uint64) Event {
	e.Epoch = epoch
	return e
}

// The wire format is the contract downstream services rely on: any change
// to it shows up here as a golden file diff.
func TestWireFormatGolden(t *testing.T) {
	for name, e := range samples() {
		t.Run(name, func(t *testing.T) {
			b, err := e.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./events -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("wire format changed for %s:\n got: %s\nwant: %s", name, pretty.Bytes(), want)
			}
		})
	}
}

func TestEnvelopeIsCloudEvents(t *testing.T) {
	e := samples()["user_changed"]
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"specversion": "1.0", "id": e.ID, "source": "urn:dirsync:connector:demo",
		"type": TypeUserChanged, "subject": e.Subject, "datacontenttype": "application/json", JobExtension: e.JobID} {
		if m[k] != want {
			t.Errorf("%s = %v, want %q", k, m[k], want)
		}
	}
	if _, ok := m["data"].(map[string]any); !ok {
		t.Errorf("data is %T, want a JSON object", m["data"])
	}
	if !strings.HasSuffix(e.Type, ".v1") {
		t.Errorf("type %q carries no version", e.Type)
	}
}

func TestRoundTrip(t *testing.T) {
	for name, e := range samples() {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != e.ID || got.Type != e.Type || got.Subject != e.Subject || !got.Time.Equal(e.Time) || got.JobID != e.JobID {
			t.Errorf("%s: envelope changed in round trip: %+v", name, got)
		}
		b2, err := got.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Errorf("%s: re-encoding differs:\n%s\n%s", name, b, b2)
		}
	}
}

func TestDeterministicID(t *testing.T) {
	a := DeterministicID("job1", TypeUserChanged, "dirsync.directory.demo.user.x", 0)
	tests := []struct {
		name        string
		job, typ, s string
		part        int
		same        bool
	}{
		{"same inputs", "job1", TypeUserChanged, "dirsync.directory.demo.user.x", 0, true},
		{"other job", "job2", TypeUserChanged, "dirsync.directory.demo.user.x", 0, false},
		{"other type", "job1", TypeUserRemoved, "dirsync.directory.demo.user.x", 0, false},
		{"other subject", "job1", TypeUserChanged, "dirsync.directory.demo.user.y", 0, false},
		{"other part", "job1", TypeUserChanged, "dirsync.directory.demo.user.x", 1, false},
	}
	for _, tt := range tests {
		if got := DeterministicID(tt.job, tt.typ, tt.s, tt.part); (got == a) != tt.same {
			t.Errorf("%s: id %s vs %s, same=%v", tt.name, got, a, tt.same)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       `{`,
		"no specversion": `{"id":"1","source":"s","type":"t"}`,
		"no id":          `{"specversion":"1.0","source":"s","type":"t"}`,
		"xml data":       `{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/xml","data":"<a/>"}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}
