// Package safetext decides which characters may reach what dirsync
// records (events, log lines, API answers, CSV exports, mail headers
// downstream) from text it does not control: a connector plugin's output
// and an operator's one-time job options. The daemon's intake cleans
// plugin text with Clean; job options are checked with the same rule and
// refused instead (see events.JobOptions.Validated), since an operator can
// fix a request but not a directory.
package safetext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Breaks reports whether r is removed from recorded text: it could break
// a line (a mail header, a log line, a CSV row) or reorder what a reader
// sees. These are C0 (NUL, TAB, LF, CR, ESC…), DEL and C1, the line and
// paragraph separators, and the bidi embeddings, overrides and isolates.
func Breaks(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

// Invisible reports whether r shows as nothing, or as a plain space, while
// being another character: Unicode format characters (zero-width space,
// joiners, word joiner, byte order mark, the bidi marks LRM, RLM and ALM,
// the soft hyphen, the invisible tag characters) and spaces other than
// U+0020. Directory text keeps them (Clean does not remove them: names in
// some scripts and emoji need the joiners), but a short label that is
// compared for equality, such as a tag, must not hold them: two tags that
// look the same would be different tags.
func Invisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) || (unicode.Is(unicode.Zs, r) && r != ' ')
}

// Changes says what Clean changed.
type Changes struct {
	// InvalidUTF8: bytes that are not UTF-8 were replaced by U+FFFD.
	InvalidUTF8 bool
	// Removed: characters for which Breaks is true were removed.
	Removed bool
	// Cut: the text was cut to its maximum length.
	Cut bool
}

// Changed reports whether Clean changed anything.
func (c Changes) Changed() bool { return c.InvalidUTF8 || c.Removed || c.Cut }

// Clean returns s fit to be recorded: invalid UTF-8 replaced by U+FFFD,
// the characters Breaks reports removed, cut to max runes; and what it
// changed.
func Clean(s string, max int) (string, Changes) {
	// Fast path: the usual directory value needs nothing.
	if len(s) <= max && printableASCII(s) {
		return s, Changes{}
	}
	var c Changes
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				c.InvalidUTF8 = true
			}
		} else if Breaks(r) {
			c.Removed = true
			continue
		}
		if n == max {
			c.Cut = true
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String(), c
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// Printable returns s with every character that is not printable
// escaped as strconv.Quote would (\u202e, \x00), for messages that show
// part of a request: no control, bidi or invisible character of a
// request reaches a terminal or a log raw.
func Printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, notPrintable) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case notPrintable(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }
