package policy_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dirsync/dirsync/daemon/config"
	"github.com/dirsync/dirsync/daemon/jobs"
	"github.com/dirsync/dirsync/daemon/policy"
	"github.com/dirsync/dirsync/events"
	"github.com/dirsync/dirsync/events/store"
)

func tagList(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// Merge holds every recipient within its bounds, whatever it is given:
// append-mode jobs cannot grow a recipient's tags past MaxRecipientTags
// (the oldest are kept, the job's new ones dropped and counted), nor can
// a user in many groups grow its groups past MaxRecipientGroups.
func TestMergeBounds(t *testing.T) {
	const maxTags, maxGroups = events.MaxRecipientTags, events.MaxRecipientGroups
	full := tagList("old", maxTags)
	tests := []struct {
		name     string
		mode     string
		update   bool
		cur      *events.Recipient
		want     events.Recipient
		wantTags []string
		wantCut  policy.Cut
		groups   int
	}{
		{"append to a full recipient: the new tags are dropped", policy.TagModeAppend, true,
			&events.Recipient{Tags: full}, events.Recipient{Tags: []string{"q4", "old3", "q5"}},
			full, policy.Cut{Tags: 2}, 0},
		{"append up to the bound", policy.TagModeAppend, true,
			&events.Recipient{Tags: full[:maxTags-1]}, events.Recipient{Tags: []string{"q4", "q5"}},
			append(slices.Clone(full[:maxTags-1]), "q4"), policy.Cut{Tags: 1}, 0},
		{"an over-full recipient from before the bound is cut", policy.TagModeAppend, true,
			&events.Recipient{Tags: tagList("old", 130)}, events.Recipient{Tags: []string{"q4"}},
			full, policy.Cut{Tags: 31}, 0},
		{"replace sets the tags afresh", policy.TagModeReplace, true,
			&events.Recipient{Tags: full}, events.Recipient{Tags: []string{"q4"}},
			[]string{"q4"}, policy.Cut{}, 0},
		{"a new recipient with the import block's 150 tags", policy.TagModeReplace, true,
			nil, events.Recipient{Tags: tagList("cfg", 150)},
			tagList("cfg", maxTags), policy.Cut{Tags: 50}, 0},
		{"update_existing = false keeps the tags, within the bound", policy.TagModeAppend, false,
			&events.Recipient{Tags: tagList("old", 101)}, events.Recipient{Tags: []string{"q4"}},
			full, policy.Cut{Tags: 1}, 0},
		{"groups past the bound", policy.TagModeAppend, true,
			&events.Recipient{}, events.Recipient{Groups: tagList("g", maxGroups+7)},
			[]string{}, policy.Cut{Groups: 7}, maxGroups},
		{"groups at the bound", policy.TagModeAppend, true,
			nil, events.Recipient{Groups: tagList("g", maxGroups)},
			nil, policy.Cut{}, maxGroups},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.Default()
			p.TagMode, p.UpdateExisting = tt.mode, tt.update
			got, cut := p.Merge(tt.want, tt.cur)
			if !slices.Equal(got.Tags, tt.wantTags) && !(len(got.Tags) == 0 && len(tt.wantTags) == 0) {
				t.Errorf("tags %v\nwant %v", got.Tags, tt.wantTags)
			}
			if cut != tt.wantCut {
				t.Errorf("cut %+v, want %+v", cut, tt.wantCut)
			}
			if len(got.Groups) != tt.groups {
				t.Errorf("%d groups, want %d", len(got.Groups), tt.groups)
			}
			if len(got.Tags) > maxTags || len(got.Groups) > maxGroups {
				t.Errorf("out of bounds: %d tags, %d groups", len(got.Tags), len(got.Groups))
			}
		})
	}
}

// The thirteen append-mode syncs with new tags each: the
// recipient fills up to its bound with the first jobs' tags, and every
// later job's tags are counted as cut instead of growing it.
func TestAppendJobsStopAtTheBound(t *testing.T) {
	p := policy.Default()
	r := events.Recipient{Tags: []string{}}
	var all []string
	for job := range 13 {
		tags := tagList(fmt.Sprintf("job%02d-", job), events.MaxJobTags)
		all = append(all, tags...)
		var cut policy.Cut
		r, cut = p.Merge(events.Recipient{Tags: tags}, &r)
		wantCut := max(0, len(all)-events.MaxRecipientTags) - max(0, len(all)-events.MaxJobTags-events.MaxRecipientTags)
		if cut.Tags != wantCut {
			t.Errorf("job %d: cut %d tags, want %d", job+1, cut.Tags, wantCut)
		}
	}
	if !slices.Equal(r.Tags, all[:events.MaxRecipientTags]) {
		t.Errorf("after 13 jobs the recipient has %d tags, %v…; want the first %d", len(r.Tags), r.Tags[:3], events.MaxRecipientTags)
	}
}

// The bounds the intake, the job options and Merge put on a recipient are
// those of plugins.hcl and of the other packages that check the same
// things.
func TestBoundsAgree(t *testing.T) {
	if config.MaxTagLength != events.MaxTagRunes {
		t.Errorf("plugins.hcl tags have at most %d characters, job tags %d", config.MaxTagLength, events.MaxTagRunes)
	}
	if policy.TagModeAppend != events.TagModeAppend || policy.TagModeReplace != events.TagModeReplace {
		t.Error("the policy's tag modes are not the job options'")
	}
	if events.MaxJobTags > events.MaxRecipientTags {
		t.Error("one job may carry more tags than a recipient keeps")
	}
}

// msgSize is a message's size as nats-server checks it against
// max_payload and JetStream against a stream's MaxMsgSize: headers and
// data.
func msgSize(m *nats.Msg) int {
	h := len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			h += len(k) + len(v) + 4
		}
	}
	return h + len(m.Data)
}

// TestLargestRecipientEventFits builds the largest recipient event a job
// can write and checks that it fits in one stream message with room to
// spare. Every field is at its bound: names of jobs.MaxTextRunes
// characters (the intake cuts longer ones), the longest email (254 bytes,
// RFC 5321), a 63-character connector name (plugins.hcl), a 64-character
// object ID (the intake's check), MaxRecipientTags tags of MaxTagRunes
// characters, and a user in twice MaxRecipientGroups groups of the longest
// names, which Merge cuts; each text made of the character that costs most
// once encoded ('<' and '&' become \u003c and \u0026, 6 bytes; an emoji
// 4). Without Merge's bounds the event is many times the limit.
func TestLargestRecipientEventFits(t *testing.T) {
	limit := int(store.StreamConfig(1).MaxMsgSize)
	if server.MAX_PAYLOAD_SIZE < limit {
		// The embedded server keeps nats-server's default max_payload.
		limit = server.MAX_PAYLOAD_SIZE
	}
	const runes = jobs.MaxTextRunes
	for _, fill := range []string{"<", "&", "\"", "😀", "é", "x"} {
		t.Run(fmt.Sprintf("%q", fill), func(t *testing.T) {
			text := func(prefix string, n int) string {
				return prefix + strings.Repeat(fill, n-len([]rune(prefix)))
			}
			connector := "c" + strings.Repeat("x", 62)
			objectID := strings.Repeat("0", 64)
			email := strings.Repeat("&", 64) + "@" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 57) + ".com"
			if len(email) != 254 {
				t.Fatalf("email of %d bytes", len(email))
			}
			groups := make([]string, 2*events.MaxRecipientGroups)
			for i := range groups {
				groups[i] = text(fmt.Sprintf("%04d", i), runes)
			}
			var oldTags, newTags []string
			for i := range events.MaxRecipientTags {
				oldTags = append(oldTags, text(fmt.Sprintf("o%03d", i), events.MaxTagRunes))
			}
			for i := range events.MaxJobTags {
				newTags = append(newTags, text(fmt.Sprintf("n%03d", i), events.MaxTagRunes))
			}
			want := events.Recipient{
				ID: policy.RecipientID(connector, objectID), Connector: connector, ObjectID: objectID, Email: email,
				DisplayName: text("", runes), GivenName: text("", runes), Surname: text("", runes),
				Department: text("", runes), JobTitle: text("", runes), Groups: groups, Tags: newTags,
				Status: events.RecipientActive,
			}
			cur := want
			cur.Tags, cur.DisplayName = oldTags, "before"
			p := policy.Default()
			r, cut := p.Merge(want, &cur)
			if cut.Tags != events.MaxJobTags || cut.Groups != events.MaxRecipientGroups {
				t.Fatalf("Merge cut %+v", cut)
			}
			r.UpdatedAt = time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC)
			jobID := strings.Repeat("j", 64)
			ev := events.New(events.TypeRecipientRestored, events.RecipientSubject(connector, objectID), connector, jobID, 0, r.UpdatedAt,
				events.RecipientChange{Recipient: r, Reason: strings.Repeat("r", 1024),
					Changed: []string{"email", "displayName", "givenName", "surname", "department", "jobTitle", "groups", "tags", "status"}})
			b, err := ev.Marshal() // what store.Append publishes
			if err != nil {
				t.Fatal(err)
			}
			msg := nats.NewMsg(ev.Subject)
			msg.Data = b
			msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
			msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "18446744073709551615")
			msg.Header.Set(jetstream.ExpectedStreamHeader, store.StreamName)
			size := msgSize(msg)
			t.Logf("largest recipient event with %q: %d bytes, %.0f%% of the %d-byte limit", fill, size, 100*float64(size)/float64(limit), limit)
			// 1/8 of the limit stays free, for fields to come.
			if size > limit-limit/8 {
				t.Errorf("the largest recipient event is %d bytes: more than 7/8 of the %d bytes a message may have", size, limit)
			}
			// The read model in KV is the recipient alone: smaller still.
			kv, _ := json.Marshal(r)
			if len(kv) >= size {
				t.Errorf("the KV value (%d bytes) is not smaller than the event (%d)", len(kv), size)
			}
			// Without the bounds, the same recipient would not fit.
			raw, _ := json.Marshal(events.RecipientChange{Recipient: want})
			if fill == "<" && len(raw) < limit {
				t.Errorf("the unbounded recipient is only %d bytes: the test does not reach the bounds", len(raw))
			}
		})
	}
}
