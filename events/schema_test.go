package events

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func loadSchemas(t *testing.T) *Schemas {
	t.Helper()
	s, err := LoadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every type has a schema file and every schema file is a type.
func TestSchemaPerType(t *testing.T) {
	s := loadSchemas(t)
	want := Types()
	sort.Strings(want)
	if got := s.Types(); !slices.Equal(got, want) {
		t.Errorf("schemas for %v, types %v", got, want)
	}
	for _, typ := range Types() {
		if _, err := os.Stat(filepath.Join("schemas", typ+".json")); err != nil {
			t.Errorf("type %s: %v", typ, err)
		}
	}
}

// Every golden file (an event as stored, byte for byte) matches its schema.
func TestGoldenEventsMatchSchemas(t *testing.T) {
	s := loadSchemas(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("golden files: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if err := Validate(b); err != nil {
			t.Errorf("%s (package Validate): %v", f, err)
		}
	}
}

// Events with every optional field set, of every type, match their schemas.
func TestFullEventsMatchSchemas(t *testing.T) {
	s := loadSchemas(t)
	at := time.Date(2026, 11, 23, 19, 50, 0, 0, time.UTC)
	job := "20261123T195000000-0a1b2c3d"
	uid := "48d31887-5fad-4d73-a9f5-3c356e68a038"
	gid := "02bd9fd6-8f93-4758-87c3-1fb73740a315"
	yes := true
	rec := Recipient{ID: "demo." + uid, Connector: "demo", ObjectID: uid, Email: "a@b.c", DisplayName: "A",
		GivenName: "A", Surname: "B", Department: "D", JobTitle: "J", Groups: []string{"G"}, Tags: []string{"t"},
		Status: RecipientActive, UpdatedAt: at}
	arch := rec
	arch.Status = RecipientArchived
	all := []string{"email", "displayName", "givenName", "surname", "department", "jobTitle", "groups", "tags", "status"}
	evs := []Event{
		New(TypeSyncState, SyncSubject("demo", job), "demo", job, 0, at, SyncState{JobID: job, Connector: "demo",
			State: StateFailed, Full: true, RequestedBy: "schedule", Reason: "r", Cursor: "c",
			Summary: &Summary{UsersRetrieved: 1, FullRead: true, ResyncReason: "expired", Skipped: map[string]int{"guest": 1, "duplicate_email": 2},
				RejectedObjects: 2, Rejected: map[string]int64{"invalid_id": 1, "id_not_guid": 1},
				Sanitized:       map[string]int64{"invalid_utf8": 1, "control_characters": 1, "too_long": 1, "invalid_email": 1, "invalid_value": 1},
				DuplicateEmails: []string{"x"}, Warnings: []string{"w"}, DryRun: true, DurationMS: 5},
			Options: &JobOptions{DryRun: true, AllowMassRemoval: true, Tags: []string{"x"}, TagMode: "append",
				UpdateExisting: &yes, ExcludeUnlicensed: &yes}, Resumes: "20260102T030405000-0a1b2c3d"}),
		New(TypeUserChanged, DirectorySubject("demo", "user", uid), "demo", job, 0, at, User{ID: uid, UserPrincipalName: "u",
			Mail: "m", DisplayName: "d", GivenName: "g", Surname: "s", Department: "dp", JobTitle: "j", UserType: "Guest"}),
		New(TypeUserRemoved, DirectorySubject("demo", "user", uid), "demo", job, 0, at, Removed{ID: uid, Reason: "changed"}),
		New(TypeGroupChanged, DirectorySubject("demo", "group", gid), "demo", job, 0, at, Group{ID: gid, GroupTypes: []string{}}),
		New(TypeGroupRemoved, DirectorySubject("demo", "group", gid), "demo", job, 0, at, Removed{ID: gid, Reason: "deleted"}),
		New(TypeGroupMembersChanged, DirectorySubject("demo", "group", gid), "demo", job, 1, at, MembersChanged{GroupID: gid,
			Added: []string{uid}, Removed: []string{"x"}}),
		New(TypeRecipientCreated, RecipientSubject("demo", uid), "demo", job, 0, at, RecipientChange{Recipient: rec, Reason: "r"}),
		New(TypeRecipientUpdated, RecipientSubject("demo", uid), "demo", job, 0, at, RecipientChange{Recipient: rec, Changed: all, Reason: "r"}),
		New(TypeRecipientRemoved, RecipientSubject("demo", uid), "demo", job, 0, at, RecipientChange{Recipient: rec, Reason: "r"}),
		New(TypeRecipientArchived, RecipientSubject("demo", uid), "demo", job, 0, at, RecipientChange{Recipient: arch, Changed: []string{"status"}, Reason: "r"}),
		New(TypeRecipientRestored, RecipientSubject("demo", uid), "demo", job, 0, at, RecipientChange{Recipient: rec, Changed: []string{"status"}, Reason: "r"}),
	}
	for _, e := range evs {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(b); err != nil {
			t.Errorf("%s: %v", e.Type, err)
		}
	}
}

// Each schema's data properties are exactly the JSON fields of the Go data
// struct, required exactly where the field has no omitempty.
func TestSchemaFieldsMatchStructs(t *testing.T) {
	data := map[string]reflect.Type{
		TypeSyncState:           reflect.TypeFor[SyncState](),
		TypeUserChanged:         reflect.TypeFor[User](),
		TypeUserRemoved:         reflect.TypeFor[Removed](),
		TypeGroupChanged:        reflect.TypeFor[Group](),
		TypeGroupRemoved:        reflect.TypeFor[Removed](),
		TypeGroupMembersChanged: reflect.TypeFor[MembersChanged](),
		TypeRecipientCreated:    reflect.TypeFor[RecipientChange](),
		TypeRecipientUpdated:    reflect.TypeFor[RecipientChange](),
		TypeRecipientRemoved:    reflect.TypeFor[RecipientChange](),
		TypeRecipientArchived:   reflect.TypeFor[RecipientChange](),
		TypeRecipientRestored:   reflect.TypeFor[RecipientChange](),
	}
	nested := map[string]reflect.Type{
		"Summary":    reflect.TypeFor[Summary](),
		"JobOptions": reflect.TypeFor[JobOptions](),
		"Recipient":  reflect.TypeFor[Recipient](),
	}
	type object struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	check := func(where string, o object, rt reflect.Type) {
		var props, req []string
		for f := range rt.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			props = append(props, name)
			if !strings.Contains(opts, "omitempty") {
				req = append(req, name)
			}
		}
		var got []string
		for k := range o.Properties {
			got = append(got, k)
		}
		sort.Strings(props)
		sort.Strings(got)
		sort.Strings(req)
		gotReq := slices.Sorted(slices.Values(o.Required))
		if !slices.Equal(got, props) {
			t.Errorf("%s: schema properties %v, %s fields %v", where, got, rt.Name(), props)
		}
		if !slices.Equal(gotReq, req) {
			t.Errorf("%s: schema requires %v, %s has no omitempty on %v", where, gotReq, rt.Name(), req)
		}
	}
	for typ, rt := range data {
		b, err := os.ReadFile(filepath.Join("schemas", typ+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			Defs map[string]object `json:"$defs"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		check(typ+" data", s.Defs["Data"], rt)
		for name, o := range s.Defs {
			if name == "Data" {
				continue
			}
			nt, ok := nested[name]
			if !ok {
				t.Errorf("%s: unexpected $defs/%s", typ, name)
				continue
			}
			check(typ+" $defs/"+name, o, nt)
		}
	}
}

// Broken events are rejected, and the error names the type and the path.
func TestSchemaRejectsBrokenEvents(t *testing.T) {
	s := loadSchemas(t)
	golden := func(name string) map[string]any {
		b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	data := func(m map[string]any) map[string]any { return m["data"].(map[string]any) }
	cases := []struct {
		name, golden string
		edit         func(m map[string]any)
		want         string // in the error
	}{
		{"missing data field", "user_removed", func(m map[string]any) { delete(data(m), "reason") }, "/data"},
		{"missing summary counter", "sync_state_completed", func(m map[string]any) {
			delete(data(m)["summary"].(map[string]any), "recipients")
		}, "/data/summary"},
		{"missing recipient field", "recipient_created", func(m map[string]any) {
			delete(data(m)["recipient"].(map[string]any), "updatedAt")
		}, "/data/recipient"},
		{"wrong type", "user_changed", func(m map[string]any) { data(m)["accountEnabled"] = "yes" }, "/data/accountEnabled"},
		{"wrong type of count", "sync_state_completed", func(m map[string]any) {
			data(m)["summary"].(map[string]any)["usersRetrieved"] = 1.5
		}, "/data/summary/usersRetrieved"},
		{"null groups", "recipient_created", func(m map[string]any) {
			data(m)["recipient"].(map[string]any)["groups"] = nil
		}, "/data/recipient/groups"},
		{"unknown data field", "group_changed", func(m map[string]any) { data(m)["visibility"] = "Private" }, "/data"},
		{"unknown option", "sync_state_pending_with_options", func(m map[string]any) {
			data(m)["options"].(map[string]any)["force"] = true
		}, "/data/options"},
		{"unknown envelope attribute", "user_removed", func(m map[string]any) { m["traceparent"] = "x" }, "traceparent"},
		{"bad state", "sync_state_completed", func(m map[string]any) { data(m)["state"] = "DONE" }, "/data/state"},
		{"bad recipient status", "recipient_created", func(m map[string]any) {
			data(m)["recipient"].(map[string]any)["status"] = "deleted"
		}, "/data/recipient/status"},
		{"archived with active status", "recipient_archived", func(m map[string]any) {
			data(m)["recipient"].(map[string]any)["status"] = "active"
		}, "/data/recipient/status"},
		{"bad removal reason", "user_removed", func(m map[string]any) { data(m)["reason"] = "gone" }, "/data/reason"},
		{"bad changed field", "recipient_updated", func(m map[string]any) { data(m)["changed"] = []any{"mail"} }, "/data/changed/0"},
		{"bad skip reason", "sync_state_completed", func(m map[string]any) {
			data(m)["summary"].(map[string]any)["skipped"] = map[string]any{"banned": 1}
		}, "/data/summary/skipped"},
		{"bad sanitize reason", "sync_state_completed", func(m map[string]any) {
			data(m)["summary"].(map[string]any)["sanitized"] = map[string]any{"cleaned": 1}
		}, "/data/summary/sanitized"},
		{"rejected reason not a word", "sync_state_completed", func(m map[string]any) {
			data(m)["summary"].(map[string]any)["rejected"] = map[string]any{"Bcc: x": 1}
		}, "/data/summary/rejected"},
		{"bad tag mode", "sync_state_pending_with_options", func(m map[string]any) {
			data(m)["options"].(map[string]any)["tagMode"] = "merge"
		}, "/data/options/tagMode"},
		{"recipient on a user subject", "recipient_created", func(m map[string]any) {
			m["subject"] = "dirsync.directory.demo.user.48d31887-5fad-4d73-a9f5-3c356e68a038"
		}, "/subject"},
		{"upper-case connector in subject", "sync_state_completed", func(m map[string]any) {
			m["subject"] = "dirsync.sync.Demo.20261123T195000000-0a1b2c3d"
		}, "/subject"},
		{"user subject on a group event", "group_changed", func(m map[string]any) {
			m["subject"] = "dirsync.directory.demo.user.02bd9fd6-8f93-4758-87c3-1fb73740a315"
		}, "/subject"},
		{"bad time", "user_changed", func(m map[string]any) { m["time"] = "yesterday" }, "/time"},
		{"bad specversion", "user_changed", func(m map[string]any) { m["specversion"] = "0.3" }, "/specversion"},
		{"bad content type", "user_changed", func(m map[string]any) { m["datacontenttype"] = "text/plain" }, "/datacontenttype"},
		{"missing data", "user_changed", func(m map[string]any) { delete(m, "data") }, "data"},
		{"unknown type", "user_changed", func(m map[string]any) { m["type"] = "io.dirsync.directory.user.changed.v9" }, "no schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := golden(c.golden)
			c.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(b)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), m["type"].(string)) {
				t.Errorf("error %q does not name %q and the type", err, c.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"type": 1}`, `not json`} {
		if err := s.Validate([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
