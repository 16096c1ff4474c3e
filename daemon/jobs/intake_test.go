package jobs

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/events"
)

func reasonsOf(f fixes) string { return strings.Join(f.reasons(), ",") }

func TestCleanText(t *testing.T) {
	long := strings.Repeat("é", MaxTextRunes+10)
	cases := []struct {
		name, in, want, reasons string
	}{
		{"plain", "Zoe Muller", "Zoe Muller", ""},
		{"unicode letters stay", "Zoë Müller 王秀英", "Zoë Müller 王秀英", ""},
		{"empty", "", "", ""},
		{"literal U+FFFD is valid", "a\uFFFDb", "a\uFFFDb", ""},
		{"invalid UTF-8", "Ann\xff\xfeMarie", "Ann\uFFFD\uFFFDMarie", "invalid_utf8"},
		{"CR LF header injection", "Eve\r\nBcc: all@contoso.com", "EveBcc: all@contoso.com", "control_characters"},
		{"TAB and NUL", "a\tb\x00c", "abc", "control_characters"},
		{"DEL and C1", "a\x7fb\u0085c\u009bd", "abcd", "control_characters"},
		{"line separators", "a\u2028b\u2029c", "abc", "control_characters"},
		{"bidi override", "invoice\u202Egpj.exe", "invoicegpj.exe", "control_characters"},
		{"bidi isolates", "\u2066a\u2067b\u2068c\u2069", "abc", "control_characters"},
		{"all embeddings", "\u202Aa\u202Bb\u202Cc\u202Dd", "abcd", "control_characters"},
		{"zero width joiner stays (emoji, scripts)", "a\u200Db", "a\u200Db", ""},
		{"exactly the limit", strings.Repeat("x", MaxTextRunes), strings.Repeat("x", MaxTextRunes), ""},
		{"too long counts runes, not bytes", long, strings.Repeat("é", MaxTextRunes), "too_long"},
		{"all at once", "\xff\n" + strings.Repeat("y", MaxTextRunes+1), "\uFFFD" + strings.Repeat("y", MaxTextRunes-1), "invalid_utf8,control_characters,too_long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, f := cleanText(c.in, MaxTextRunes)
			if got != c.want || reasonsOf(f) != c.reasons {
				t.Errorf("cleanText(%q) = %q, [%s]; want %q, [%s]", c.in, got, reasonsOf(f), c.want, c.reasons)
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxTextRunes {
				t.Errorf("result %q is not valid UTF-8 within %d runes", got, MaxTextRunes)
			}
		})
	}
}

func TestCleanMessage(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "Graph answered 503", "Graph answered 503"},
		{"line breaks become spaces", "first\nsecond\r\nthird\tfourth", "first second  third fourth"},
		{"escape sequences go", "red \x1b[31malert\x1b[0m", "red [31malert[0m"},
		{"invalid UTF-8", "x\xffy", "x\uFFFDy"},
		{"cut with a mark", strings.Repeat("a", maxMessageRunes+5), strings.Repeat("a", maxMessageRunes) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := cleanMessage(c.in); got != c.want {
				t.Errorf("cleanMessage(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestCleanEmail(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	label63 := strings.Repeat("b", 63)
	cases := []struct {
		in, want string
		invalid  bool
	}{
		{"ann@contoso.com", "ann@contoso.com", false},
		{"Zoe.Muller@Contoso.COM", "Zoe.Muller@Contoso.COM", false},
		{"'contoso1@gmail.com", "'contoso1@gmail.com", false},                                                             // in Microsoft's own samples
		{"contoso1_gmail.com#EXT#@microsoft.onmicrosoft.com", "contoso1_gmail.com#EXT#@microsoft.onmicrosoft.com", false}, // a guest UPN
		{"a+tag@sub.xn--mnchen-3ya.de", "a+tag@sub.xn--mnchen-3ya.de", false},
		{" ann@contoso.com ", "ann@contoso.com", false},
		{local64 + "@contoso.com", local64 + "@contoso.com", false},
		{"", "", false}, // no address is not an invalid one
		{"a" + local64 + "@contoso.com", "", true},
		{"a@" + strings.Repeat(label63+".", 4) + "com", "", true}, // over 254 bytes
		{"a@" + label63 + "b.com", "", true},                      // a label over 63
		{"Eve <eve@evil.com>", "", true},
		{"<eve@evil.com>", "", true},
		{"eve@evil.com\r\nBcc: all@contoso.com", "", true},
		{"eve@evil.com\nBcc:all@contoso.com", "", true},
		{"eve@evil.com,all@contoso.com", "", true},
		{"eve@evil.com;all@contoso.com", "", true},
		{"a@b@contoso.com", "", true},
		{"\"eve\"@evil.com", "", true},
		{"eve smith@evil.com", "", true},
		{"eve@evil .com", "", true},
		{"eve\x00@evil.com", "", true},
		{"eve@evil.com\u202E", "", true},
		{"eve@müller.de", "", true},
		{"zoë@contoso.com", "", true},
		{"eve\xff@evil.com", "", true},
		{"noat", "", true},
		{"@contoso.com", "", true},
		{"eve@", "", true},
		{"eve@localhost", "", true},
		{".eve@contoso.com", "", true},
		{"eve.@contoso.com", "", true},
		{"e..ve@contoso.com", "", true},
		{"eve@-contoso.com", "", true},
		{"eve@contoso-.com", "", true},
		{"eve@.contoso.com", "", true},
		{"eve@contoso.com.", "", true},
		{"eve@contoso..com", "", true},
		{"eve@[192.0.2.1]", "", true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.in), func(t *testing.T) {
			got, f := cleanEmail(c.in)
			if got != c.want || (f == fixInvalidEmail) != c.invalid || (f != 0 && f != fixInvalidEmail) {
				t.Errorf("cleanEmail(%q) = %q, [%s]; want %q, invalid %v", c.in, got, reasonsOf(f), c.want, c.invalid)
			}
		})
	}
}

func TestCleanUser(t *testing.T) {
	in := &connectorv1.User{Id: "u1", UserPrincipalName: proto.String("Eve <eve@contoso.com>"), Mail: proto.String("eve@contoso.com"),
		DisplayName: proto.String("Eve\r\nBcc: x"), GivenName: proto.String("E\xffve"), Surname: proto.String(strings.Repeat("s", 300)),
		Department: proto.String("IT"), AssignedLicenseCount: proto.Int32(-3), AccountEnabled: proto.Bool(true)}
	before := proto.Clone(in)
	got, fx := cleanUser(in)
	if !proto.Equal(in, before) {
		t.Error("cleanUser modified its argument: it may be shared with the plugin client")
	}
	want := &connectorv1.User{Id: "u1", UserPrincipalName: proto.String(""), Mail: proto.String("eve@contoso.com"),
		DisplayName: proto.String("EveBcc: x"), GivenName: proto.String("E\uFFFDve"), Surname: proto.String(strings.Repeat("s", MaxTextRunes)),
		Department: proto.String("IT"), AssignedLicenseCount: proto.Int32(0), AccountEnabled: proto.Bool(true)}
	if !proto.Equal(got, want) {
		t.Errorf("cleanUser = %v\nwant %v", got, want)
	}
	counts := tally{}
	for _, f := range fx {
		counts.add(f)
	}
	if w := (tally{"invalid_email": 1, "control_characters": 1, "invalid_utf8": 1, "too_long": 1, "invalid_value": 1}); !maps.Equal(counts, w) {
		t.Errorf("fixes %v, want %v", counts, w)
	}

	// Absent fields stay absent: an incremental change carries only what
	// changed. An invalid address is present and empty: the user lost it.
	partial, fx := cleanUser(&connectorv1.User{Id: "u2", Mail: proto.String("bad address")})
	if partial.DisplayName != nil || partial.UserPrincipalName != nil || partial.GetMail() != "" || partial.Mail == nil || len(fx) != 1 {
		t.Errorf("partial user: %v, fixes %v", partial, fx)
	}
	removed, fx := cleanUser(&connectorv1.User{Id: "u3", Removed: &connectorv1.Removal{Reason: "gone\n"}})
	if removed.GetRemoved().GetReason() != "deleted" || len(fx) != 1 || fx[0] != fixInvalidValue {
		t.Errorf("unknown removal reason: %v, fixes %v", removed, fx)
	}
}

// A user's proxy addresses keep their SMTP ones, valid, once each, the
// first "SMTP:" as the primary; a mailbox purpose or an attribute that
// connector.v1 does not name is dropped; attribute values are cleaned.
func TestCleanUserIdentity(t *testing.T) {
	many := []string{}
	for i := range maxProxyAddresses + 5 {
		many = append(many, fmt.Sprintf("smtp:a%d@contoso.com", i))
	}
	tests := []struct {
		name  string
		in    *connectorv1.User
		want  *connectorv1.User
		fixes tally
	}{
		{"proxy addresses",
			&connectorv1.User{Id: "u", ProxyAddressesKnown: true, ProxyAddresses: []string{"SIP:ann@contoso.com", "SMTP:Ann@contoso.com", "smtp:ann@CONTOSO.com",
				"X500:/o=ExchangeLabs/cn=Recipients", "SMTP:second@contoso.com", "smtp:Eve <eve@contoso.com>", "smtp:", "Smtp:al@contoso.com"}},
			&connectorv1.User{Id: "u", ProxyAddressesKnown: true, ProxyAddresses: []string{"SMTP:Ann@contoso.com", "smtp:second@contoso.com", "smtp:al@contoso.com"}},
			tally{"invalid_email": 1}},
		{"too many proxy addresses", &connectorv1.User{Id: "u", ProxyAddressesKnown: true, ProxyAddresses: many},
			&connectorv1.User{Id: "u", ProxyAddressesKnown: true, ProxyAddresses: many[:maxProxyAddresses]}, tally{"too_long": 1}},
		{"proxy addresses not known are not read", &connectorv1.User{Id: "u", ProxyAddresses: []string{"SMTP:a@contoso.com"}},
			&connectorv1.User{Id: "u"}, tally{}},
		{"mailbox purpose", &connectorv1.User{Id: "u", MailboxPurpose: proto.String("room")},
			&connectorv1.User{Id: "u", MailboxPurpose: proto.String("room")}, tally{}},
		{"unknown mailbox purpose", &connectorv1.User{Id: "u", MailboxPurpose: proto.String("Room\n")},
			&connectorv1.User{Id: "u"}, tally{"invalid_value": 1}},
		{"attributes", &connectorv1.User{Id: "u", Attributes: map[string]string{"preferredLanguage": "de-DE\u202e", "manager": "", "password": "x"}},
			&connectorv1.User{Id: "u", Attributes: map[string]string{"preferredLanguage": "de-DE", "manager": ""}},
			tally{"invalid_value": 1, "control_characters": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fx := cleanUser(tt.in)
			if !proto.Equal(got, tt.want) {
				t.Errorf("cleanUser = %v\nwant %v", got, tt.want)
			}
			counts := tally{}
			for _, f := range fx {
				counts.add(f)
			}
			if !maps.Equal(counts, tt.fixes) {
				t.Errorf("fixes %v, want %v", counts, tt.fixes)
			}
		})
	}
}

func TestCleanGroup(t *testing.T) {
	types := []string{"Unified", "Dynamic\nMembership"}
	for range maxGroupTypes {
		types = append(types, "x")
	}
	got, fx := cleanGroup(&connectorv1.Group{Id: "g1", DisplayName: proto.String("Sales\u202Egpj"), Mail: proto.String("sales@contoso.com>"),
		GroupTypes: types, GroupTypesKnown: true, MailEnabled: proto.Bool(true)})
	if got.GetDisplayName() != "Salesgpj" || got.GetMail() != "" || len(got.GetGroupTypes()) != maxGroupTypes ||
		got.GetGroupTypes()[1] != "DynamicMembership" || !got.GetGroupTypesKnown() || !got.GetMailEnabled() {
		t.Errorf("cleanGroup = %v", got)
	}
	counts := tally{}
	for _, f := range fx {
		counts.add(f)
	}
	if w := (tally{"control_characters": 2, "invalid_email": 1, "too_long": 1}); !maps.Equal(counts, w) {
		t.Errorf("fixes %v, want %v", counts, w)
	}
	clean := &connectorv1.Group{Id: "g2", DisplayName: proto.String("All Company"), GroupTypes: []string{"Unified"}}
	if got, fx := cleanGroup(clean); !proto.Equal(got, clean) || len(fx) != 0 {
		t.Errorf("a clean group changed: %v, %v", got, fx)
	}
}

func TestCheckBatch(t *testing.T) {
	ids := func(n int) []string { return slices.Repeat([]string{"u"}, n) }
	removedUser := &connectorv1.User{Id: "u1", Removed: &connectorv1.Removal{Reason: "deleted"}}
	removedGroup := &connectorv1.Group{Id: "g1", Removed: &connectorv1.Removal{Reason: "changed"}}
	cases := []struct {
		name       string
		b          *connectorv1.SyncBatch
		done, full bool
		want       string // in the error; "" for none
	}{
		{"ordinary batch", &connectorv1.SyncBatch{Users: []*connectorv1.User{{Id: "u1"}}}, false, true, ""},
		{"final batch", &connectorv1.SyncBatch{Done: true, Cursor: `{"v":1,"users":"https://graph/x?$deltatoken=a"}`}, false, false, ""},
		{"final batch of a full read", &connectorv1.SyncBatch{Done: true, Complete: true}, false, true, ""},
		{"full read answered incomplete", &connectorv1.SyncBatch{Done: true}, false, true, "it answered a full read with an incomplete one"},
		{"batch after the final one", &connectorv1.SyncBatch{}, true, false, "it sent a batch after its final one"},
		{"second final batch", &connectorv1.SyncBatch{Done: true}, true, false, "it sent a second final batch"},
		{"restart after the final batch", &connectorv1.SyncBatch{Restart: true}, true, false, "restarted the read after its final batch"},
		{"restart in a full read", &connectorv1.SyncBatch{Restart: true}, false, true, ""},
		{"removed user in an incremental read", &connectorv1.SyncBatch{Users: []*connectorv1.User{removedUser}}, false, false, ""},
		{"removed user in a full read", &connectorv1.SyncBatch{Users: []*connectorv1.User{removedUser}}, false, true, "marked user u1 removed in a full read"},
		{"removed group in a full read", &connectorv1.SyncBatch{Groups: []*connectorv1.Group{removedGroup}}, false, true, "marked group g1 removed"},
		{"a hostile ID is not shown", &connectorv1.SyncBatch{Users: []*connectorv1.User{{Id: "x\r\ny", Removed: &connectorv1.Removal{}}}}, false, true, "marked a user removed"},
		{"exactly the batch limit", &connectorv1.SyncBatch{Memberships: []*connectorv1.Membership{{GroupId: "g", AddedUserIds: ids(MaxBatchObjects - 1)}}, Users: []*connectorv1.User{{Id: "u"}}}, false, false, ""},
		{"over the batch limit", &connectorv1.SyncBatch{Memberships: []*connectorv1.Membership{{GroupId: "g", AddedUserIds: ids(MaxBatchObjects), RemovedUserIds: ids(1)}}}, false, false, "a batch of 10001 objects, more than the 10000"},
		{"empty memberships count", &connectorv1.SyncBatch{Memberships: slices.Repeat([]*connectorv1.Membership{{GroupId: "g"}}, MaxBatchObjects+1)}, false, false, "a batch of 10001 objects"},
		{"cursor too large", &connectorv1.SyncBatch{Done: true, Cursor: strings.Repeat("c", MaxCursorBytes+1)}, false, false, "a cursor of 65537 bytes"},
		{"cursor with a line break", &connectorv1.SyncBatch{Done: true, Cursor: "c\nX-Injected: 1"}, false, false, "a cursor that is not printable text"},
		{"cursor not UTF-8", &connectorv1.SyncBatch{Done: true, Cursor: "c\xff"}, false, false, "a cursor that is not printable text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkBatch(c.b, c.done, c.full)
			if c.want == "" {
				if err != nil {
					t.Fatalf("checkBatch: %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("checkBatch: %v; want ErrProtocol with %q", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error carries a line break: %q", err)
			}
		})
	}
}

func TestPluginCounts(t *testing.T) {
	many := map[string]int64{}
	for i := range maxPluginReasons + 3 {
		many[fmt.Sprintf("r%02d", i)] = 1
	}
	cases := []struct {
		name string
		in   map[string]int64
		want tally
	}{
		{"nil", nil, tally{}},
		{"plugin reasons kept", map[string]int64{"id_not_guid": 3, "no_id": 1}, tally{"id_not_guid": 3, "no_id": 1}},
		{"hostile keys are other", map[string]int64{"Bcc: x\r\n": 2, "<script>": 1, "ok": 1}, tally{"other": 3, "ok": 1}},
		{"counts below one dropped", map[string]int64{"a": 0, "b": -5, "c": 2}, tally{"c": 2}},
		{"too many reasons", many, func() tally {
			w := tally{"other": 3}
			for i := range maxPluginReasons {
				w[fmt.Sprintf("r%02d", i)] = 1
			}
			return w
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pluginCounts(c.in); !maps.Equal(got, c.want) {
				t.Errorf("pluginCounts(%v) = %v, want %v", c.in, got, c.want)
			}
		})
	}
}

// A protocol failure names the connector and the plugin, and says what to do.
func TestProtocolFailureReason(t *testing.T) {
	err := protocolFailure("demo", "azuread", &connector.ProtocolError{What: "it sent a batch after its final one"})
	want := `connector demo: plugin "azuread" broke the sync protocol: it sent a batch after its final one; ` +
		`the plugin is faulty or does not match this dirsyncd version: update it, or report it to its author`
	if err.Error() != want || !errors.Is(err, ErrProtocol) {
		t.Errorf("got %q (ErrProtocol %v)\nwant %q", err, errors.Is(err, ErrProtocol), want)
	}
}

// The plugin's Progress.rejected and Progress.sanitized reach the summary
// merged with the daemon's own counts: the plugin's are cumulative, so
// its latest wins (also across a restart, which clears only the daemon's
// counts), and its reason names pass the same checks.
func TestSnapshotMergesPluginCounts(t *testing.T) {
	badName := &connectorv1.User{Id: "u1", DisplayName: proto.String("Ann\xffMarie")}
	progress := func(rejected, sanitized map[string]int64) *connectorv1.Progress {
		return &connectorv1.Progress{Rejected: rejected, Sanitized: sanitized}
	}
	cases := []struct {
		name          string
		batches       []*connectorv1.SyncBatch
		wantRejected  map[string]int64
		wantObjects   int64
		wantSanitized map[string]int64
	}{
		{"none", []*connectorv1.SyncBatch{{Users: []*connectorv1.User{{Id: "u1"}}}}, nil, 0, nil},
		{"plugin only", []*connectorv1.SyncBatch{{Progress: progress(nil, map[string]int64{"invalid_utf8": 2})}},
			nil, 0, map[string]int64{"invalid_utf8": 2}},
		{"same reason adds up with the daemon's", []*connectorv1.SyncBatch{
			{Users: []*connectorv1.User{badName}, Progress: progress(map[string]int64{"id_not_guid": 1}, map[string]int64{"invalid_utf8": 2})}},
			map[string]int64{"id_not_guid": 1}, 1, map[string]int64{"invalid_utf8": 3}},
		{"the latest progress wins", []*connectorv1.SyncBatch{
			{Progress: progress(nil, map[string]int64{"invalid_utf8": 1})},
			{Progress: progress(nil, map[string]int64{"invalid_utf8": 4})},
			{Done: true, Complete: true}},
			nil, 0, map[string]int64{"invalid_utf8": 4}},
		{"a restart keeps the plugin's counts", []*connectorv1.SyncBatch{
			{Users: []*connectorv1.User{badName}, Progress: progress(nil, map[string]int64{"invalid_utf8": 1})},
			{Restart: true}},
			nil, 0, map[string]int64{"invalid_utf8": 1}},
		{"hostile and empty reasons", []*connectorv1.SyncBatch{
			{Progress: progress(map[string]int64{"x\r\nBcc: y": 2}, map[string]int64{"Bcc: x\r\n": 1, "<b>": 2, "trimmed": 0, "negative": -3})}},
			map[string]int64{"other": 2}, 2, map[string]int64{"other": 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSnapshot()
			s.full = true
			var sum events.Summary
			for i, b := range c.batches {
				if err := s.add(b, &sum); err != nil {
					t.Fatalf("batch %d: %v", i, err)
				}
			}
			s.report(&sum)
			if !maps.Equal(sum.Rejected, c.wantRejected) || sum.RejectedObjects != c.wantObjects {
				t.Errorf("rejected %v (total %d), want %v (total %d)", sum.Rejected, sum.RejectedObjects, c.wantRejected, c.wantObjects)
			}
			if !maps.Equal(sum.Sanitized, c.wantSanitized) {
				t.Errorf("sanitized %v, want %v", sum.Sanitized, c.wantSanitized)
			}
		})
	}
}
