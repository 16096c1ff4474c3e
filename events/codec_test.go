package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// oddPieces are what generated strings are made of: the bytes and runes
// JSON encoders treat differently (quotes, control bytes, HTML
// characters, U+2028, invalid UTF-8) and those URL parsing does.
var oddPieces = []string{
	"a", "Z", "0", "-", ".", " ", "<", ">", "&", `"`, `\`, "/", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f",
	"\u2028", "\u2029", "é", "ü", "😀", "\ufeff", "\u00a0", "\xff", "\xe2\x80", "\xe2\x80\xa8", "\xed\xa0\x80",
	"#", "?", "%", "%zz", "%41", ":", "urn:", "//", "@", "[", "]", "+",
}

func oddString(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(oddPieces[r.IntN(len(oddPieces))])
	}
	return b.String()
}

// pick returns one of choices, or an odd string one time in three.
func pick(r *rand.Rand, choices ...string) string {
	if r.IntN(3) == 0 {
		return oddString(r)
	}
	return choices[r.IntN(len(choices))]
}

// genEvent builds an event with odd attributes and data now and then.
func genEvent(r *rand.Rand) Event {
	sample := samples()
	names := []string{"user_changed", "recipient_created", "sync_state_completed", "group_members_changed"}
	e := sample[names[r.IntN(len(names))]]
	e.ID = pick(r, e.ID, " "+e.ID+" ", "")
	e.Type = pick(r, e.Type, TypeRecipientUpdated, " "+e.Type, "")
	e.Subject = pick(r, e.Subject, "", "  ", "dirsync.recipients.demo.<x>")
	e.Source = pick(r, e.Source, Source(oddString(r)), "URN:Dirsync:x", "https://example.com/a b?q=1#f r", "mailto:a@b", "urn:x?",
		"/relative/path", "a:b", " urn:x", "urn:", "", "*", ":x", "1urn:x", "urn:x#%zz", "http://[::1]:80/", "http://a b/")
	e.JobID = pick(r, e.JobID, "", "  ")
	switch r.IntN(5) {
	case 0:
		e.Time = time.Time{}
	case 1:
		e.Time = time.Unix(r.Int64N(1<<34)-1<<33, r.Int64N(1e9)).In(time.FixedZone("x", r.IntN(50000)-25000))
	case 2:
		e.Time = time.Date(r.IntN(12000)-1000, time.Month(1+r.IntN(12)), 1+r.IntN(31), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(3)*r.IntN(1e9), time.UTC)
	}
	switch r.IntN(6) {
	case 0:
		e.Data = User{ID: oddString(r), Mail: oddString(r), DisplayName: oddString(r), AccountEnabled: true}
	case 1:
		e.Data = map[string]any{oddString(r): oddString(r), "n": r.Float64(), "list": []string{oddString(r)}}
	case 2:
		e.Data = nil
	case 3:
		e.Data = json.RawMessage(`{ "a" : "<b>&` + "\u2028" + `", "c": [1, 2.5e3, null, true] }`)
	}
	return e
}

// TestMarshalMatchesSDK: Marshal writes byte for byte what the
// CloudEvents SDK wrote, and fails where it failed.
func TestMarshalMatchesSDK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		e := genEvent(r)
		want, wantErr := sdkMarshal(e)
		got, err := e.Marshal()
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("event %d %#v:\n got %q, %v\nwant %q, %v", i, e, got, err, want, wantErr)
		}
		if err != nil {
			continue
		}
		prefix := []byte("prefix")
		appended, err := e.AppendMarshal(prefix)
		if err != nil || !bytes.Equal(appended, append(prefix, want...)) {
			t.Fatalf("event %d: AppendMarshal gives %q, %v", i, appended, err)
		}
		checkDecodeMatchesSDK(t, want)
	}
}

func TestMarshalFailsLikeSDK(t *testing.T) {
	good := samples()["user_changed"]
	tests := []struct {
		name   string
		modify func(*Event)
		want   string
	}{
		{"no id", func(e *Event) { e.ID = " " }, "id: MUST be a non-empty string"},
		{"no type", func(e *Event) { e.Type = "" }, "type: MUST be a non-empty string"},
		{"no source", func(e *Event) { e.Source = "" }, "source: REQUIRED"},
		{"source not a URL", func(e *Event) { e.Source = "urn:x\x00" }, "source: parse"},
		{"data not JSON", func(e *Event) { e.Data = make(chan int) }, "encoding data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			tt.modify(&e)
			if _, err := sdkMarshal(e); err == nil {
				t.Fatal("the SDK accepts it")
			}
			dst := []byte("kept")
			got, err := e.AppendMarshal(dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
			if string(got) != "kept" {
				t.Errorf("AppendMarshal changed dst to %q", got)
			}
		})
	}
}

// TestDecodeMatchesSDK: Decode accepts what the SDK-based Decode
// accepted and reads the same event from it, on every golden file and
// on messages another producer could write (attributes in any order,
// white space, extensions, nulls) or that are broken.
func TestDecodeMatchesSDK(t *testing.T) {
	for _, b := range decodeSeeds(t) {
		checkDecodeMatchesSDK(t, b)
	}
}

// FuzzDecodeMatchesSDK is TestDecodeMatchesSDK on any input.
func FuzzDecodeMatchesSDK(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeMatchesSDK(t, b) })
}

// FuzzMarshalMatchesSDK is TestMarshalMatchesSDK on any attributes.
func FuzzMarshalMatchesSDK(f *testing.F) {
	f.Add("id", "urn:dirsync:connector:demo", TypeUserChanged, "dirsync.x", "job", "<x>\u2028", int64(0))
	f.Fuzz(func(t *testing.T, id, source, typ, subject, job, text string, nsec int64) {
		e := Event{ID: id, Source: source, Type: typ, Subject: subject, JobID: job, Data: map[string]string{text: text}}
		if nsec != 0 {
			e.Time = time.Unix(0, nsec)
		}
		want, wantErr := sdkMarshal(e)
		got, err := e.Marshal()
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %q, %v\nwant %q, %v", e, got, err, want, wantErr)
		}
		if err == nil {
			checkDecodeMatchesSDK(t, want)
		}
	})
}

// checkDecodeMatchesSDK decodes b with both decoders: they must agree on
// whether it is malformed (but for decodeDifferences), read the same
// event, and Marshal must encode it as the SDK did.
func checkDecodeMatchesSDK(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := sdkDecode(b)
	got, err := Decode(b)
	if err != nil && !errors.Is(err, ErrMalformed) {
		t.Fatalf("%q: error %v does not wrap ErrMalformed", b, err)
	}
	if (err != nil) != (wantErr != nil) {
		if why := decodeDifference(b); why != "" {
			return
		}
		t.Fatalf("%q:\n got err %v\nwant err %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if got.ID != want.ID || got.Type != want.Type || got.Subject != want.Subject || got.Source != want.Source ||
		got.JobID != want.JobID || got.Time != want.Time || !bytes.Equal(got.raw, bytes.TrimSpace(want.raw)) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
	}
	gotB, err := got.Marshal()
	wantB, wantErr := sdkMarshal(want)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(gotB, wantB) {
		t.Fatalf("%q: re-encoded:\n got %q, %v\nwant %q, %v", b, gotB, err, wantB, wantErr)
	}
}

// Every type decodes to its constant, and the list of them is complete.
func TestInternType(t *testing.T) {
	for _, typ := range Types() {
		b := []byte(typ)
		if got := internType(b); got != typ || testing.AllocsPerRun(10, func() { internType(b) }) != 0 {
			t.Errorf("%s is not interned", typ)
		}
	}
}

// TestDecodeChecks lists the checks Decode makes on a message, and what
// it reads from the attributes it keeps.
func TestDecodeChecks(t *testing.T) {
	const head = `"specversion":"1.0","id":"1","source":"urn:x","type":"t"`
	tests := []struct {
		name, in string
		wantErr  string // "" when the message is fine
		want     Event  // compared on ID, Source, Subject, JobID and Time
	}{
		{"minimal", `{` + head + `}`, "", Event{ID: "1", Source: "urn:x"}},
		{"not JSON", `{`, "invalid JSON", Event{}},
		{"more after the object", `{` + head + `}{}`, "more after the event", Event{}},
		{"not an object", `["x"]`, "want a JSON object", Event{}},
		{"trailing comma", `{` + head + `,}`, "invalid JSON", Event{}},
		{"bad data", `{` + head + `,"data":{"a":01}}`, "invalid JSON", Event{}},
		{"no specversion", `{"id":"1","source":"urn:x","type":"t"}`, "no specversion", Event{}},
		{"specversion 0.3", `{"specversion":"0.3","id":"1","source":"urn:x","type":"t"}`, "want 1.0", Event{}},
		{"specversion twice", `{` + head + `,"specversion":"1.0"}`, "already provided", Event{}},
		{"specversion a number", `{"specversion":1.0,"id":"1","source":"urn:x","type":"t"}`, "want a string", Event{}},
		{"blank id", `{"specversion":"1.0","id":" ","source":"urn:x","type":"t"}`, "id: MUST", Event{}},
		{"no source", `{"specversion":"1.0","id":"1","type":"t"}`, "source: REQUIRED", Event{}},
		{"source not a URI-reference", `{"specversion":"1.0","id":"1","source":":x","type":"t"}`, "source: parse", Event{}},
		{"source printed as a URL", `{"specversion":"1.0","id":"1","source":"URN:x y","type":"t"}`, "", Event{ID: "1", Source: "urn:x y"}},
		{"no type", `{"specversion":"1.0","id":"1","source":"urn:x"}`, "type: MUST", Event{}},
		{"blank subject", `{` + head + `,"subject":" "}`, "subject: if present", Event{}},
		{"empty subject", `{` + head + `,"subject":""}`, "", Event{ID: "1", Source: "urn:x"}},
		{"subject", `{` + head + `,"subject":"dirsync.x"}`, "", Event{ID: "1", Source: "urn:x", Subject: "dirsync.x"}},
		{"time", `{` + head + `,"time":"2026-11-23T20:50:00.5+01:00"}`, "", Event{ID: "1", Source: "urn:x", Time: time.Date(2026, 11, 23, 19, 50, 0, 5e8, time.UTC)}},
		{"time not RFC 3339", `{` + head + `,"time":"23 Nov 2026"}`, "time: parsing", Event{}},
		{"31 April", `{` + head + `,"time":"2026-04-31T00:00:00Z"}`, "time: parsing", Event{}},
		{"xml data", `{` + head + `,"datacontenttype":"application/xml","data":"<a/>"}`, "want application/json", Event{}},
		{"empty datacontenttype", `{` + head + `,"datacontenttype":""}`, "datacontenttype", Event{}},
		{"datacontenttype not JSON", `{` + head + `,"datacontenttype":"application/jsonx","data":"x"}`, "want application/json", Event{}},
		{"datacontenttype twice", `{` + head + `,"datacontenttype":"application/json","datacontenttype":"application/json"}`, "already provided", Event{}},
		{"datacontenttype with charset", `{` + head + `,"datacontenttype":"application/json; charset=utf-8","data":{}}`, "", Event{ID: "1", Source: "urn:x"}},
		{"relative dataschema", `{` + head + `,"dataschema":"s.json"}`, "dataschema", Event{}},
		{"data_base64", `{` + head + `,"data_base64":"eyJhIjoxfQ=="}`, "", Event{ID: "1", Source: "urn:x"}},
		{"data_base64 not JSON", `{` + head + `,"data_base64":"eA=="}`, "does not hold JSON", Event{}},
		{"data and data_base64", `{` + head + `,"data":{},"data_base64":"e30="}`, "both data and data_base64", Event{}},
		{"syncid", `{` + head + `,"syncid":"job"}`, "", Event{ID: "1", Source: "urn:x", JobID: "job"}},
		{"syncid in capitals", `{` + head + `,"SyncID":"job"}`, "", Event{ID: "1", Source: "urn:x", JobID: "job"}},
		{"syncid a number", `{` + head + `,"syncid":5}`, "", Event{ID: "1", Source: "urn:x"}},
		{"other extensions ignored", `{` + head + `,"other":"x","n":-5,"b":true,"z":null}`, "", Event{ID: "1", Source: "urn:x"}},
		{"extension name not alphanumeric", `{` + head + `,"my_ext":"x"}`, "ASCII letters and digits", Event{}},
		{"extension named as an attribute", `{` + head + `,"ID":"x"}`, "MUST NOT be overwritten", Event{}},
		{"extension an object", `{` + head + `,"o":{}}`, "invalid CloudEvents value", Event{}},
		{"extension beyond int32", `{` + head + `,"n":2147483648}`, "out of the range", Event{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if tt.wantErr != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want ErrMalformed saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tt.want.ID || got.Source != tt.want.Source || got.Subject != tt.want.Subject || got.JobID != tt.want.JobID || got.Time != tt.want.Time {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// A decoded event's data is kept as it came when json.Marshal would write
// it so, and compacted and escaped when Marshal writes it otherwise.
func TestMarshalDecodedData(t *testing.T) {
	const head = `{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":`
	tests := []struct{ data, want string }{
		{`{"a":"b c"}`, `{"a":"b c"}`},
		{`{ "a" : [1, 2] }`, `{"a":[1,2]}`},
		{`"<&>` + "\u2028" + `"`, `"\u003c\u0026\u003e\u2028"`},
		{`null`, `null`},
	}
	for _, tt := range tests {
		e, err := Decode([]byte(head + tt.data + `}`))
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if want := `,"data":` + tt.want + `}`; !strings.HasSuffix(string(b), want) {
			t.Errorf("%s: encoded %s, want it to end in %s", tt.data, b, want)
		}
	}
}

// TestEncodeDataIsMarshal: an event's data is encoded to json.Marshal's
// bytes for every data type, with odd strings (invalid UTF-8, U+2028,
// HTML and control characters) in every text field, map and list, nil
// and empty lists and maps, and times of every precision.
func TestEncodeDataIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	odds := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		return []string{oddString(r), oddString(r)}
	}
	counts := func() map[string]int64 {
		if r.IntN(2) == 0 {
			return nil
		}
		return map[string]int64{oddString(r): r.Int64N(1 << 40), oddString(r): -1, "b": 2, "a": 1}
	}
	yes := r.IntN(2) == 0
	for i := range 3000 {
		at := time.Unix(r.Int64N(1<<34), r.Int64N(1e9)*int64(r.IntN(2))).In(time.FixedZone("z", r.IntN(50000)-25000))
		var data any
		switch i % 6 {
		case 0:
			data = User{ID: oddString(r), UserPrincipalName: oddString(r), Mail: oddString(r), DisplayName: oddString(r), GivenName: oddString(r),
				Surname: oddString(r), Department: oddString(r), JobTitle: oddString(r), AccountEnabled: r.IntN(2) == 0, UserType: oddString(r),
				AssignedLicenseCount: r.IntN(5)}
		case 1:
			data = Group{ID: oddString(r), DisplayName: oddString(r), Mail: oddString(r), GroupTypes: odds(), MailEnabled: true}
		case 2:
			data = Removed{ID: oddString(r), Reason: oddString(r)}
		case 3:
			data = MembersChanged{GroupID: oddString(r), Added: odds(), Removed: odds()}
		case 4:
			data = RecipientChange{Recipient: Recipient{ID: oddString(r), Connector: oddString(r), ObjectID: oddString(r), Email: oddString(r),
				DisplayName: oddString(r), Department: oddString(r), Groups: odds(), Tags: odds(), Status: oddString(r), UpdatedAt: at},
				Changed: odds(), Reason: oddString(r)}
		case 5:
			data = SyncState{JobID: oddString(r), Connector: oddString(r), State: StateCompleted, Reason: oddString(r), Cursor: oddString(r),
				Summary: &Summary{Rejected: counts(), Sanitized: counts(), Skipped: map[string]int{oddString(r): 3}, DuplicateEmails: odds(),
					ResyncReason: oddString(r), ThrottleWaitMS: r.Int64N(1e6)},
				Options: &JobOptions{Tags: odds(), TagMode: oddString(r), UpdateExisting: &yes}}
		}
		want, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Event{Data: data}.appendData([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("%T:\n got  %q\n want %q", data, got[len("prefix"):], want)
		}
	}
}
