package projections

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	stdjson "encoding/json"

	"github.com/segmentio/encoding/json"

	"github.com/dirsync/dirsync/events"
)

// referenceForm is the checkpoint form as json.Encoder writes it, each
// section whole: the form checkpoints have had since they exist, which
// writeCheckpointForm streams.
func referenceForm(t *testing.T, s *State) []byte {
	t.Helper()
	sn := s.snapshot()
	seen := map[string]bool{}
	for c := range sn.Directories {
		seen[c] = true
	}
	for c := range sn.Recipients {
		seen[c] = true
	}
	var connectors []string
	for c := range seen {
		connectors = append(connectors, c)
	}
	slices.Sort(connectors)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if err := enc.Encode(checkpointHeader{Version: sn.Version, Seq: sn.Seq, Malformed: sn.Malformed, Connectors: connectors,
		Claims: sn.Claims, Superseded: sn.Superseded}); err != nil {
		t.Fatal(err)
	}
	for _, v := range sn.sections(connectors) {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// snapshot is s in the checkpoint's decoded shape.
func (s *State) snapshot() snapshot {
	dirs := make(map[string]snapshotDirectory, len(s.Directories))
	lists := func(m map[string]map[string]struct{}) map[string][]string {
		out := make(map[string][]string, len(m))
		for g, set := range m {
			ids := make([]string, 0, len(set))
			for id := range set {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			out[g] = ids
		}
		return out
	}
	for c, d := range s.Directories {
		dirs[c] = snapshotDirectory{Users: d.Users, Groups: d.Groups, Members: lists(d.Members), Nested: lists(d.Nested)}
	}
	sn := snapshot{Version: SchemaVersion, Seq: s.LastSeq, Malformed: s.Malformed, Directories: dirs,
		Recipients: s.Recipients, Jobs: s.Jobs, Status: s.Status, Cursors: s.Cursors,
		FormerEmails: s.FormerEmails, Spans: s.Spans, Superseded: s.Superseded}
	if len(s.Claims) > 0 {
		sn.Claims = s.Claims
	}
	return sn
}

// sections lists what each line of the checkpoint form holds, after the
// header. It only reads sn, whose maps are the live state's.
func (sn *snapshot) sections(connectors []string) []any {
	var out []any
	for _, c := range connectors {
		d := sn.Directories[c]
		out = append(out, d.Users, d.Groups, d.Members, d.Nested, sn.Recipients[c])
	}
	return append(out, sn.Jobs, sn.Status, sn.Cursors, sn.FormerEmails, sn.Spans)
}

// oddState is a state of two connectors (one without a directory) whose
// text holds what JSON escapes: HTML, quotes, U+2028, backslashes.
func oddState() *State {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	odd := "<b>&\"quoted\"\u2028\u00e9\\\xff"
	s := NewState()
	s.LastSeq, s.Malformed = 42, 3
	d := s.Directory("azuread")
	for i := range 3000 {
		id := fmt.Sprintf("%08x-1111-2222-3333-%012x", i, i)
		d.Users[id] = events.User{ID: id, Mail: fmt.Sprintf("u%d@contoso.com", i), DisplayName: odd + id, Department: "R&D", AccountEnabled: i%2 == 0}
		d.Members["g"+strings.Repeat("x", i%7)] = map[string]struct{}{id: {}, "z" + id: {}}
	}
	d.Groups["g<1>"] = events.Group{ID: "g<1>", DisplayName: odd, GroupTypes: []string{"Unified"}}
	s.Directory("empty")
	rs := map[string]events.Recipient{}
	for i := range 2000 {
		id := fmt.Sprintf("%08x-1111-2222-3333-%012x", i, i)
		rs[id] = events.Recipient{ID: "azuread." + id, Connector: "azuread", ObjectID: id, Email: fmt.Sprintf("u%d@contoso.com", i),
			DisplayName: odd, Groups: []string{"A&B"}, Tags: []string{"<t>"}, Status: events.RecipientActive, UpdatedAt: at}
	}
	s.Recipients["azuread"] = rs
	s.Recipients["orphan"] = map[string]events.Recipient{"o1": {ID: "orphan.o1", Connector: "orphan", ObjectID: "o1", Email: "o@x.com", Status: events.RecipientArchived}}
	s.Jobs["j1"] = &Job{ID: "j1", Connector: "azuread", State: events.StateCompleted, Reason: odd, RequestedAt: at, UpdatedAt: at}
	s.Cursors["azuread"] = odd
	s.FormerEmails["old@x.com"] = []string{"azuread.1", "azuread.2"}
	s.Spans["j1"] = ChangeSpan{First: 1, Last: 9, Count: 3, Connectors: []string{"azuread"}}
	s.Claims["azuread"] = events.Claim{Connector: "azuread", Epoch: 12, Replica: odd, Previous: 4}
	s.Superseded = 2
	s.status("azuread")
	return s
}

// The streamed checkpoint form is byte for byte what json.Encoder writes
// for each section, so checkpoints written before and after read alike and
// "checkpoint + tail equals rebuild" keeps comparing the same form: text
// that JSON escapes (HTML, quotes, line separators) in keys and values, a
// connector with recipients and no directory, empty and large maps.
func TestCheckpointFormIsEncoderForm(t *testing.T) {
	s := oddState()
	for _, st := range []*State{NewState(), s} {
		got, err := st.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceForm(t, st); !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("streamed form differs from json.Encoder's at byte %d of %d/%d:\n got  %q\n want %q", i, len(got), len(want),
				got[max(0, i-60):min(len(got), i+60)], want[max(0, i-60):min(len(want), i+60)])
		}
	}
}

// TestEncodeIsMarshal: a read model's KV value is encoding/json's
// json.Marshal of it, byte for byte (the KV entries written before, and
// downstream readers, know that form), for every bucket's values of a
// state with text JSON escapes.
func TestEncodeIsMarshal(t *testing.T) {
	s := oddState()
	keys := s.Keys()
	if len(keys) < 1000 {
		t.Fatalf("%d keys", len(keys))
	}
	for _, k := range keys {
		v := s.Value(k)
		got, err := encode(v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := stdjson.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v:\n got  %s\n want %s", k, got, want)
		}
	}
}
