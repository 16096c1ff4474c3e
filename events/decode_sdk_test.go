package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// decodeDifferences lists where Decode and the SDK-based Decode it
// replaced disagree on whether a message is malformed, on purpose: the
// SDK accepted events dirsync could not use or encode again, or dropped
// an attribute on a whim of order. Our encoder writes none of these.
var decodeDifferences = []struct{ name, why string }{
	{"specversion 0.3", "the SDK read CloudEvents 0.3 too; dirsync writes and reads 1.0 only"},
	{"empty attribute name", `the SDK's reader stopped at an empty name ("") and ignored the rest of the message; it is no valid attribute name`},
	{"non-JSON media type", `a datacontenttype such as "application/jsonx" passed the old prefix check, and the SDK then read data as a string, not JSON`},
	{"null datacontenttype", "the SDK read a null datacontenttype as absent before specversion and as empty (invalid) after it; Decode reads null as absent, as it does for every optional attribute"},
	{"empty datacontenttype", `the SDK read an empty datacontenttype as absent before specversion and rejected it after; Decode rejects it wherever it stands (an attribute that is present MUST NOT be empty)`},
	{"number beyond float64", "an extension number beyond float64 (1e400) failed the SDK's reader before specversion; after it, the reader's error was overwritten and the event accepted"},
	{"data_base64", "the SDK accepted data_base64 beside data, or holding something other than JSON, which Marshal could not encode again"},
}

// decodeDifference names the entry of decodeDifferences that b falls
// under, or returns "".
func decodeDifference(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	var seenData, seenBase64 bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		var s *string
		_ = json.Unmarshal(v, &s)
		switch {
		case key == "":
			return "empty attribute name"
		case key == "specversion" && s != nil && *s == "0.3":
			return "specversion 0.3"
		case key == "datacontenttype" && s == nil:
			return "null datacontenttype"
		case key == "datacontenttype" && *s == "":
			return "empty datacontenttype"
		case key == "datacontenttype" && strings.HasPrefix(*s, applicationJSON) && mediaTypeOf(*s) != applicationJSON:
			return "non-JSON media type"
		case key == "data":
			seenData = true
		case len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9'):
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				return "number beyond float64"
			}
		case key == "data_base64":
			seenBase64 = true
			if s != nil {
				if raw, err := base64.StdEncoding.DecodeString(*s); err == nil && !json.Valid(raw) {
					return "data_base64"
				}
			}
		}
	}
	if seenData && seenBase64 {
		return "data_base64"
	}
	return ""
}

// mediaTypeOf is the SDK's GetDataMediaType.
func mediaTypeOf(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		return strings.TrimSpace(ct[:i])
	}
	return ct
}

func TestDecodeDifferencesAreKnown(t *testing.T) {
	for _, d := range decodeDifferences {
		if d.why == "" {
			t.Errorf("%s: no reason given", d.name)
		}
	}
}

// decodeSeeds are the golden files and messages another producer could
// write, or a broken one.
func decodeSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, e := range samples() {
		b, err := e.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	const head = `"specversion":"1.0","id":"1","source":"urn:x","type":"t"`
	for _, s := range []string{
		`{` + head + `}`,
		`{"type":"t","id":"1","source":"urn:x","specversion":"1.0"}`,
		` { "specversion" : "1.0" , "id" : "1" , "source" : "urn:x" , "type" : "t" , "data" : { "a" : [ 1 , 2 ] } } `,
		`{"id":"1","data":{"a":"<&>"},"source":"urn:x","type":"t","datacontenttype":"application/json","specversion":"1.0"}`,
		`{` + head + `,"data":"\u003c\u2028"}`,
		`{` + head + `,"data":"<` + "\u2028" + `"}`,
		`{` + head + `,"data":null}`,
		`{` + head + `,"epoch":"7","syncid":"j"}`,
		`{` + head + `,"EPOCH":"7"}`,
		`{` + head + `,"epoch":"0"}`,
		`{` + head + `,"epoch":"-3"}`,
		`{` + head + `,"epoch":"x"}`,
		`{` + head + `,"epoch":"18446744073709551616"}`,
		`{` + head + `,"epoch":7}`,
		`{` + head + `,"epoch":null}`,
		`{` + head + `,"data":[]}`,
		`{` + head + `,"data":-0.5e+3}`,
		`{` + head + `,"datacontenttype":"application/json; charset=utf-8","data":{}}`,
		`{` + head + `,"datacontenttype":"application/json;","data":{}}`,
		`{` + head + `,"datacontenttype":"application/json ","data":{}}`,
		`{` + head + `,"datacontenttype":"application/jsonx","data":"x"}`,
		`{` + head + `,"datacontenttype":"application/xml","data":"<a/>"}`,
		`{` + head + `,"datacontenttype":"text/json","data":{}}`,
		`{` + head + `,"datacontenttype":"","data":{}}`,
		`{` + head + `,"datacontenttype":null,"data":{}}`,
		`{"datacontenttype":null,` + head + `,"data":{}}`,
		`{"datacontenttype":"",` + head + `,"data":{}}`,
		`{` + head + `,"datacontenttype":"application/json","datacontenttype":"application/json"}`,
		`{` + head + `,"specversion":"1.0"}`,
		`{` + head + `,"data_base64":"eyJhIjoxfQ=="}`,
		`{` + head + `,"data_base64":"eA=="}`,
		`{` + head + `,"data_base64":"!!"}`,
		`{` + head + `,"data_base64":"eyJhIjoxfQ==","data":{}}`,
		`{` + head + `,"time":"2026-11-23T19:50:00.123456789Z"}`,
		`{` + head + `,"time":"2026-11-23T19:50:00.1234567891Z"}`,
		`{` + head + `,"time":"2026-11-23T19:50:00,5Z"}`,
		`{` + head + `,"time":"2026-11-23T19:50:00+02:00"}`,
		`{` + head + `,"time":"2026-11-23t19:50:00z"}`,
		`{` + head + `,"time":"2026-02-29T19:50:00Z"}`,
		`{` + head + `,"time":"2024-02-29T19:50:00Z"}`,
		`{` + head + `,"time":"2026-11-23T24:00:00Z"}`,
		`{` + head + `,"time":"0000-01-01T00:00:00Z"}`,
		`{` + head + `,"time":""}`,
		`{` + head + `,"time":null}`,
		`{` + head + `,"time":5}`,
		`{` + head + `,"subject":""}`,
		`{` + head + `,"subject":"  "}`,
		`{` + head + `,"subject":null}`,
		`{` + head + `,"subject":" x "}`,
		`{` + head + `,"syncid":"job"}`,
		`{` + head + `,"SyncID":"job"}`,
		`{` + head + `,"syncid":5}`,
		`{` + head + `,"syncid":true}`,
		`{` + head + `,"syncid":null}`,
		`{"syncid":"job",` + head + `,"syncid":null}`,
		`{` + head + `,"syncid":"sync\u0069d\ud83d\ude00\ud800\ud800\\"}`,
		`{` + head + `,"sync\u0069d":"job"}`,
		`{` + head + `,"other":"x","n":2147483647,"m":-2147483648,"b":false}`,
		`{` + head + `,"n":2147483648}`,
		`{` + head + `,"n":1e400}`,
		`{` + head + `,"o":{}}`,
		`{` + head + `,"a":[]}`,
		`{` + head + `,"my_ext":"x"}`,
		`{` + head + `,"ID":"x"}`,
		`{` + head + `,"Data":"x"}`,
		`{` + head + `,"":"x"}`,
		`{` + head + `,"dataschema":"https://example.com/s.json"}`,
		`{` + head + `,"dataschema":"s.json"}`,
		`{` + head + `,"dataschema":"%zz"}`,
		`{` + head + `,"schemaurl":"x","datacontentencoding":"base64"}`,
		`{"specversion":"0.3","id":"1","source":"urn:x","type":"t"}`,
		`{"specversion":"2.0","id":"1","source":"urn:x","type":"t"}`,
		`{"specversion":null,"id":"1","source":"urn:x","type":"t"}`,
		`{"specversion":1.0,"id":"1","source":"urn:x","type":"t"}`,
		`{"specversion":"1.0","id":" ","source":"urn:x","type":"t"}`,
		`{"specversion":"1.0","id":null,"source":"urn:x","type":"t"}`,
		`{"specversion":"1.0","id":1,"source":"urn:x","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":" ","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"URN:X#a b","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":":x","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":" "}`,
		`{"specversion":"1.0","id":"1","source":"urn:x"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t"} x`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t",}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":01}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":"\x"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":"` + "\x01" + `"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":tru}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[1,]}`,
		`{"specversion":"1.0","id":"1` + "\xff" + `","source":"urn:x","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":"\u12G4"}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":{"a" 1}}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":{"a":1 "b":2}}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":{1:2}}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[1 2]}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[-]}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[1.]}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[1e]}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":[1E+5,0.0e-0,-0]}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":"\`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t" "data":1}`,
		`{"specversion" "1.0"}`,
		`{"spec\u0076ersion":"1.0","id":"\u0031\t","source":"urn:x","type":"t"}`,
		`[]`, `null`, `{}`, ``, `{`, `"x"`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}
