package safetext

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     string
		changes  Changes
	}{
		{"plain", "Zoe Muller", 64, "Zoe Muller", Changes{}},
		{"unicode letters stay", "Zoë 王秀英", 64, "Zoë 王秀英", Changes{}},
		{"invalid UTF-8", "a\xffb", 64, "a\uFFFDb", Changes{InvalidUTF8: true}},
		{"CR LF", "a\r\nb", 64, "ab", Changes{Removed: true}},
		{"bidi override", "invoice\u202Egpj.exe", 64, "invoicegpj.exe", Changes{Removed: true}},
		{"line separator", "a\u2028b", 64, "ab", Changes{Removed: true}},
		{"zero width stays (Invisible, not Breaks)", "a\u200Bb", 64, "a\u200Bb", Changes{}},
		{"exactly the limit", "éé", 2, "éé", Changes{}},
		{"cut in runes, not bytes", strings.Repeat("é", 5), 2, "éé", Changes{Cut: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ch := Clean(c.in, c.max)
			if got != c.want || ch != c.changes {
				t.Errorf("Clean(%q) = %q, %+v; want %q, %+v", c.in, got, ch, c.want, c.changes)
			}
			if ch.Changed() != (c.changes != Changes{}) {
				t.Errorf("Changed() = %v for %+v", ch.Changed(), ch)
			}
		})
	}
}

func TestInvisible(t *testing.T) {
	cases := []struct {
		r    rune
		want bool
	}{
		{'a', false}, {' ', false}, {'é', false}, {'王', false}, {'😀', false},
		{'\u200B', true},     // zero width space
		{'\u200C', true},     // zero width non-joiner
		{'\u200D', true},     // zero width joiner
		{'\u2060', true},     // word joiner
		{'\uFEFF', true},     // byte order mark
		{'\u200E', true},     // left-to-right mark
		{'\u200F', true},     // right-to-left mark
		{'\u061C', true},     // arabic letter mark
		{'\u00AD', true},     // soft hyphen
		{'\U000E0041', true}, // tag latin capital a
		{'\u00A0', true},     // no-break space
		{'\u3000', true},     // ideographic space
		{'\u2009', true},     // thin space
	}
	for _, c := range cases {
		if got := Invisible(c.r); got != c.want {
			t.Errorf("Invisible(%U) = %v, want %v", c.r, got, c.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	cases := []struct{ in, want string }{
		{`json: unknown field "tags"`, `json: unknown field "tags"`},
		{"Zoë 王 😀 \uFFFD", "Zoë 王 😀 \uFFFD"},
		{"x\u202Ey", `x\u202ey`},
		{"a\u200Bb\u2028c", `a\u200bb\u2028c`},
		{"a\tb\x00c\x1b", `a\tb\x00c\x1b`},
		{"bad \xff byte", `bad \xff byte`},
	}
	for _, c := range cases {
		if got := Printable(c.in); got != c.want {
			t.Errorf("Printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
