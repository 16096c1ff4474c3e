package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestJobOptionsValidated(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return out
	}
	cases := []struct {
		name     string
		in       JobOptions
		wantTags []string
		// wantErr are the parts of the message; "" means valid.
		wantErr []string
	}{
		{"no options", JobOptions{}, nil, nil},
		{"plain tags kept in order", JobOptions{Tags: []string{"q4", "vip", "Zoë", "王", "😀", "a b"}}, []string{"q4", "vip", "Zoë", "王", "😀", "a b"}, nil},
		{"surrounding spaces trimmed", JobOptions{Tags: []string{"  q4 "}}, []string{"q4"}, nil},
		{"exact duplicates removed, first kept", JobOptions{Tags: []string{"q4", "vip", "q4", " vip"}}, []string{"q4", "vip"}, nil},
		{"exactly the limits", JobOptions{Tags: append(many(MaxJobTags-1), strings.Repeat("é", MaxTagRunes))}, append(many(MaxJobTags-1), strings.Repeat("é", MaxTagRunes)), nil},
		{"tag modes", JobOptions{TagMode: TagModeReplace}, nil, nil},
		{"append", JobOptions{TagMode: TagModeAppend, Tags: []string{"x"}}, []string{"x"}, nil},

		{"too many tags", JobOptions{Tags: many(MaxJobTags + 1)}, nil, []string{"51 tags", "at most 50"}},
		{"960 tags", JobOptions{Tags: many(960)}, nil, []string{"960 tags", "at most 50"}},
		{"too long", JobOptions{Tags: []string{"ok", strings.Repeat("x", MaxTagRunes+1)}}, nil, []string{"tag 2 of 2", "65 characters", "at most 64"}},
		{"too long counts characters", JobOptions{Tags: []string{strings.Repeat("é", MaxTagRunes+1)}}, nil, []string{"tag 1 of 1", `"éééé`, "65 characters"}},
		{"empty", JobOptions{Tags: []string{""}}, nil, []string{"tag 1 of 1", "is empty"}},
		{"only spaces", JobOptions{Tags: []string{"q4", "   "}}, nil, []string{"tag 2 of 2", "is empty"}},
		{"tab", JobOptions{Tags: []string{"a\tb"}}, nil, []string{"tag 1 of 1", `"a\tb"`, "U+0009", "control"}},
		{"newline", JobOptions{Tags: []string{"q4\nBcc: x"}}, nil, []string{"U+000A"}},
		{"NUL", JobOptions{Tags: []string{"a\x00"}}, nil, []string{"U+0000"}},
		{"C1", JobOptions{Tags: []string{"a\u0085"}}, nil, []string{"U+0085"}},
		{"bidi override", JobOptions{Tags: []string{"q4", "x\u202Egpj.exe"}}, nil, []string{"tag 2 of 2", `"x\u202egpj.exe"`, "U+202E", "bidi"}},
		{"bidi isolate", JobOptions{Tags: []string{"\u2066a"}}, nil, []string{"U+2066"}},
		{"line separator", JobOptions{Tags: []string{"a\u2028b"}}, nil, []string{"U+2028"}},
		{"paragraph separator", JobOptions{Tags: []string{"a\u2029b"}}, nil, []string{"U+2029"}},
		{"zero width space", JobOptions{Tags: []string{"q\u200B4"}}, nil, []string{"U+200B", "zero-width"}},
		{"zero width joiner", JobOptions{Tags: []string{"a\u200Db"}}, nil, []string{"U+200D"}},
		{"right-to-left mark", JobOptions{Tags: []string{"a\u200F"}}, nil, []string{"U+200F"}},
		{"byte order mark", JobOptions{Tags: []string{"\uFEFFq4"}}, nil, []string{"U+FEFF"}},
		{"no-break space", JobOptions{Tags: []string{"q4\u00A0x"}}, nil, []string{"U+00A0"}},
		{"invalid UTF-8", JobOptions{Tags: []string{"a\xffb"}}, nil, []string{"tag 1 of 1", `"a\xffb"`, "UTF-8"}},
		{"case-only duplicate", JobOptions{Tags: []string{"Q4", "vip", "q4"}}, nil, []string{"tag 3 of 3", `"q4"`, `tag 1 ("Q4")`, "only in case"}},
		{"case duplicate after an exact one", JobOptions{Tags: []string{"a", "a", "b", "A"}}, nil, []string{"tag 4 of 4", "tag 1"}},
		{"unknown tag mode", JobOptions{TagMode: "merge"}, nil, []string{"tagMode", `"merge"`, "append or replace"}},
		{"tag mode with a control character", JobOptions{TagMode: "a\u202Eb"}, nil, []string{`"a\u202eb"`}},
		{"a long bad tag is cut in the message", JobOptions{Tags: []string{strings.Repeat("z", 1000) + "\x1b"}}, nil, []string{"U+001B", "…"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.in.Validated()
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("Validated() = %v, want no error", err)
				}
				if !slices.Equal(got.Tags, c.wantTags) || got.TagMode != c.in.TagMode {
					t.Errorf("Validated() tags %q mode %q; want %q %q", got.Tags, got.TagMode, c.wantTags, c.in.TagMode)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validated() accepted %+v", c.in)
			}
			if !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("error %v is not ErrInvalidOptions", err)
			}
			msg := err.Error()
			for _, part := range c.wantErr {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not say %q", msg, part)
				}
			}
			// The message may be shown on a terminal and logged: it never
			// carries a request's characters raw.
			if i := strings.IndexFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
				t.Errorf("error %q carries %U raw", msg, []rune(msg[i:])[0])
			}
			if len(msg) > 300 {
				t.Errorf("error is %d bytes long: %q", len(msg), msg)
			}
		})
	}
}

// The caller's options are not changed: the API and the CLI keep what the
// operator sent for their messages.
func TestJobOptionsValidatedLeavesInputAlone(t *testing.T) {
	in := JobOptions{Tags: []string{" a ", "a", "b"}}
	if _, err := in.Validated(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in.Tags, []string{" a ", "a", "b"}) {
		t.Errorf("Validated changed its input: %q", in.Tags)
	}
}
