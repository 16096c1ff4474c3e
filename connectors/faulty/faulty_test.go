package faulty

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

func cfgJSON(s string) *connectorv1.Config { return &connectorv1.Config{Json: []byte(s)} }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name, json string
		want       Config
		problem    string // "field: message" of the first problem
	}{
		{"defaults", ``, Config{Mode: ModeOK, Users: DefaultUsers, After: DefaultAfter}, ""},
		{"all keys", `{"mode":"hang","users":7,"after":0}`, Config{Mode: ModeHang, Users: 7, After: 0}, ""},
		{"unknown mode", `{"mode":"explode"}`, Config{},
			`mode: unknown mode "explode"; the faulty connector's modes are ok, exit_at_start, crash_mid_stream, hang, after_done, oversized, removed_in_full, bad_fields, test_fail`},
		{"mode not a string", `{"mode":3}`, Config{}, "mode: must be a string"},
		{"negative users", `{"users":-1}`, Config{}, "users: must be a whole number from 0 to 1000000"},
		{"fractional after", `{"after":1.5}`, Config{}, "after: must be a whole number from 0 to 1000000"},
		{"unknown key", `{"speed":1}`, Config{}, "speed: unknown key; the faulty connector accepts mode, users and after"},
		{"not an object", `[1]`, Config{}, ": config is not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := ParseConfig(cfgJSON(tt.json))
			if tt.problem != "" {
				if len(problems) == 0 || !strings.HasPrefix(problems[0].GetField()+": "+problems[0].GetMessage(), tt.problem) {
					t.Fatalf("problems = %v; want %q", problems, tt.problem)
				}
				return
			}
			if problems != nil || *got != tt.want {
				t.Fatalf("ParseConfig = %+v, %v; want %+v", got, problems, tt.want)
			}
		})
	}
}

// run syncs cfg with the process-ending faults recorded instead of done.
func run(t *testing.T, json string) (batches []*connectorv1.SyncBatch, died Mode, err error) {
	t.Helper()
	c := New(nil)
	c.die = func(m Mode) { died = m }
	err = c.Sync(context.Background(), &connectorv1.SyncRequest{Config: cfgJSON(json)}, func(b *connectorv1.SyncBatch) error {
		batches = append(batches, b)
		return nil
	})
	return batches, died, err
}

func TestSync(t *testing.T) {
	tests := []struct {
		name, json string
		batches    int  // sent
		died       Mode // the fault that would end the process
		check      func(t *testing.T, bs []*connectorv1.SyncBatch)
	}{
		{name: "ok", json: `{"users":25}`, batches: 4, check: func(t *testing.T, bs []*connectorv1.SyncBatch) {
			var ids []string
			for i, b := range bs {
				if len(b.GetUsers()) > BatchSize || b.GetDone() != (i == len(bs)-1) {
					t.Errorf("batch %d: %d users, done %v", i, len(b.GetUsers()), b.GetDone())
				}
				for _, u := range b.GetUsers() {
					ids = append(ids, u.GetId())
				}
			}
			last := bs[len(bs)-1]
			if !last.GetComplete() || last.GetCursor() == "" {
				t.Errorf("final batch complete %v cursor %q", last.GetComplete(), last.GetCursor())
			}
			if len(ids) != 25 || ids[0] != "000fa017-0000-4000-8000-000000000001" || ids[24] != UserID(25) {
				t.Errorf("ids %v", ids)
			}
			u := bs[0].GetUsers()[0]
			if u.GetMail() != "user1@faulty.example" || !u.GetEnabled() || u.Guest == nil || u.GetGuest() || u.GetDisplayName() == "" {
				t.Errorf("user 1 = %v", u)
			}
		}},
		{name: "exit_at_start sends nothing", json: `{"mode":"exit_at_start"}`, batches: 0, died: ModeExitAtStart},
		{name: "crash_mid_stream after 2", json: `{"mode":"crash_mid_stream","after":2}`, batches: 2, died: ModeCrashMidStream},
		{name: "hang after 0", json: `{"mode":"hang","after":0}`, batches: 0, died: ModeHang},
		{name: "hang never reaches the final batch", json: `{"mode":"hang","users":10,"after":99}`, batches: 1, died: ModeHang},
		{name: "after_done", json: `{"mode":"after_done","users":10}`, batches: 3, check: func(t *testing.T, bs []*connectorv1.SyncBatch) {
			if !bs[1].GetDone() || len(bs[2].GetUsers()) != 1 || bs[2].GetDone() {
				t.Errorf("want a user batch after the final one: %v", bs)
			}
		}},
		{name: "oversized", json: `{"mode":"oversized"}`, batches: 2, check: func(t *testing.T, bs []*connectorv1.SyncBatch) {
			if len(bs[0].GetUsers()) != OversizedUsers || !bs[1].GetDone() {
				t.Errorf("first batch has %d users", len(bs[0].GetUsers()))
			}
		}},
		{name: "removed_in_full", json: `{"mode":"removed_in_full","users":3}`, batches: 2, check: func(t *testing.T, bs []*connectorv1.SyncBatch) {
			if bs[0].GetUsers()[0].GetRemoved().GetReason() != "deleted" || bs[0].GetUsers()[1].GetRemoved() != nil || !bs[1].GetComplete() {
				t.Errorf("want user 1 removed in a complete read: %v", bs)
			}
		}},
		{name: "bad_fields", json: `{"mode":"bad_fields","users":2}`, batches: 3, check: func(t *testing.T, bs []*connectorv1.SyncBatch) {
			var ids, names, mails []string
			for _, b := range bs {
				for _, u := range b.GetUsers() {
					ids, names, mails = append(ids, u.GetId()), append(names, u.GetDisplayName()), append(mails, u.GetMail())
				}
			}
			all := strings.Join(ids, "|") + strings.Join(names, "|") + strings.Join(mails, "|")
			for _, want := range []string{"not-a-guid", ".", "*", ">", "000fa017 0000", "\x07", "\r\n", "\u202E",
				"a@b.example\r\nBcc: x@evil.example", "not-an-address", "Eve <eve@evil.example>", UserID(1), UserID(2)} {
				if !strings.Contains(all, want) {
					t.Errorf("no user has %q", want)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, died, err := run(t, tt.json)
			if died != tt.died {
				t.Errorf("died %q; want %q", died, tt.died)
			}
			if (tt.died != "") != (err != nil) {
				t.Errorf("err = %v", err)
			}
			if len(bs) != tt.batches {
				t.Fatalf("%d batches sent; want %d", len(bs), tt.batches)
			}
			for _, b := range bs {
				if tt.died != "" && b.GetDone() {
					t.Error("a failing mode sent the final batch")
				}
			}
			if tt.check != nil {
				tt.check(t, bs)
			}
		})
	}
}

func TestSyncStopsWhenSendFails(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	err := New(nil).Sync(context.Background(), &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error {
		n++
		return boom
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("err = %v after %d sends", err, n)
	}
}

// TestBadUsersCrossTheWire checks every hostile user survives protobuf
// encoding (so it reaches the daemon), and why invalid UTF-8 is not among
// them: protobuf refuses it.
func TestBadUsersCrossTheWire(t *testing.T) {
	for _, u := range BadUsers() {
		if _, err := proto.Marshal(u); err != nil {
			t.Errorf("user %q cannot be sent: %v", u.GetId(), err)
		}
	}
	u := NewUser(1)
	u.DisplayName = ptr("bad \xff\xfe")
	if _, err := proto.Marshal(u); err == nil {
		t.Error("protobuf marshalled invalid UTF-8; add it to BadUsers")
	}
}

func TestTestConnection(t *testing.T) {
	for _, tt := range []struct {
		json string
		ok   bool
		code string
	}{
		{`{}`, true, ""},
		{`{"mode":"test_fail"}`, false, "test_fail"},
		{`{"mode":"nope"}`, false, "invalid_config"},
	} {
		resp, err := New(nil).TestConnection(context.Background(), cfgJSON(tt.json))
		if err != nil || resp.GetOk() != tt.ok || len(resp.GetChecks()) != 1 || resp.GetChecks()[0].GetCode() != tt.code {
			t.Errorf("%s: %v, %v; want ok %v code %q", tt.json, resp, err, tt.ok, tt.code)
		}
	}
}

func TestDescribe(t *testing.T) {
	d, err := New(nil).Describe(context.Background())
	if err != nil || d.GetName() != Name {
		t.Fatal(d, err)
	}
	types := map[string]connectorv1.ConfigField_Type{}
	for _, f := range d.GetConfigFields() {
		types[f.GetName()] = f.GetType()
	}
	want := map[string]connectorv1.ConfigField_Type{KeyMode: connectorv1.ConfigField_TYPE_STRING,
		KeyUsers: connectorv1.ConfigField_TYPE_NUMBER, KeyAfter: connectorv1.ConfigField_TYPE_NUMBER}
	if len(types) != len(want) {
		t.Errorf("fields %v", types)
	}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("field %s has type %v; want %v", k, types[k], v)
		}
	}
}
