package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dirsync/dirsync/internal/safetext"
)

// Bounds of a job's one-time options (JobOptions), checked by Validated
// where a request comes in (the API) and where it is typed (the CLI).
const (
	// MaxJobTags bounds the tags of one sync request. A request's tags go
	// onto every recipient the job touches; 50 is far more than a
	// campaign needs, and half of MaxRecipientTags, so one request can
	// never fill a recipient on its own.
	MaxJobTags = 50
	// MaxTagRunes bounds a tag, in characters: the limit plugins.hcl's
	// import block already sets on its tags (config.MaxTagLength), so a
	// one-time tag can always be written there and the other way round.
	MaxTagRunes = 64
)

// Values of JobOptions.TagMode; the import block's tag_mode takes the same.
const (
	TagModeAppend  = "append"
	TagModeReplace = "replace"
)

// ErrInvalidOptions wraps every error of Validated: the request is wrong,
// not the daemon (the API answers 400).
var ErrInvalidOptions = errors.New("invalid job options")

// optionsError is a Validated error: its text is the message for the
// operator, and it is ErrInvalidOptions.
type optionsError struct{ msg string }

func (e *optionsError) Error() string        { return e.msg }
func (e *optionsError) Is(target error) bool { return target == ErrInvalidOptions }

func invalid(format string, args ...any) error {
	return &optionsError{msg: fmt.Sprintf(format, args...)}
}

// Validated returns the options as a job takes them, or an error naming
// the first thing wrong and the rule it breaks, in words that are the
// same at the API (400) and the CLI.
//
// Tags: at most MaxJobTags; each has its surrounding spaces trimmed (as
// plugins.hcl does) and then must be 1 to MaxTagRunes characters of valid
// UTF-8 without a character the intake removes from directory text
// (safetext.Breaks: control characters, line and paragraph separators,
// bidi controls) or one that is invisible (safetext.Invisible: zero-width
// and other format characters, spaces other than U+0020). Such a tag is
// refused, not cleaned: the operator can fix it, and a cleaned tag would
// not be the tag they asked for. Exact duplicates are removed, keeping
// the first; two tags that differ only in case are refused, because
// filters and downstream campaign tools would take them for one tag or
// two depending on who compares them. TagMode is "", TagModeAppend or
// TagModeReplace.
func (o JobOptions) Validated() (JobOptions, error) {
	switch o.TagMode {
	case "", TagModeAppend, TagModeReplace:
	default:
		return o, invalid("tagMode %s: use %s or %s", quote(o.TagMode), TagModeAppend, TagModeReplace)
	}
	if len(o.Tags) > MaxJobTags {
		return o, invalid("%d tags: a sync request may carry at most %d", len(o.Tags), MaxJobTags)
	}
	if o.Tags == nil {
		return o, nil
	}
	type kept struct {
		tag string
		pos int // in the request, from 1
	}
	tags := make([]string, 0, len(o.Tags))
	first := map[string]kept{} // by lower-cased tag
	for i, raw := range o.Tags {
		t, err := CheckTag(raw)
		if err != nil {
			return o, invalid("tag %d of %d (%s): %v", i+1, len(o.Tags), quote(raw), err)
		}
		fold := strings.ToLower(t)
		if k, seen := first[fold]; seen {
			if k.tag == t {
				continue // an exact duplicate: the same tag, asked twice
			}
			return o, invalid("tag %d of %d (%s) differs from tag %d (%s) only in case: give one of them",
				i+1, len(o.Tags), quote(raw), k.pos, quote(k.tag))
		}
		tags = append(tags, t)
		first[fold] = kept{t, i + 1}
	}
	o.Tags = tags
	return o, nil
}

// CheckTag returns the tag with its surrounding spaces trimmed, or why it
// is refused (the rule Validated applies to each tag, and plugins.hcl to
// the import block's tags).
func CheckTag(raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", errors.New("is not valid UTF-8")
	}
	for _, r := range raw {
		switch {
		case r == utf8.RuneError:
			// JSON decoding turns invalid UTF-8 into U+FFFD: either way,
			// not what the operator meant to type.
			return "", errors.New("contains U+FFFD, the replacement character (the request had invalid UTF-8 there)")
		case safetext.Breaks(r):
			return "", fmt.Errorf("contains %U, a control, line-break or bidi character; a tag may hold none", r)
		case safetext.Invisible(r):
			return "", fmt.Errorf("contains %U, an invisible or zero-width character or a space other than U+0020; a tag may hold none", r)
		}
	}
	t := strings.Trim(raw, " ")
	if t == "" {
		return "", fmt.Errorf("is empty; a tag has 1 to %d characters", MaxTagRunes)
	}
	if n := utf8.RuneCountInString(t); n > MaxTagRunes {
		return "", fmt.Errorf("is %d characters long; a tag has at most %d", n, MaxTagRunes)
	}
	return t, nil
}

// quote shows a value from a request in an error: quoted, with every
// character that is not printable escaped (strconv.Quote: control, bidi,
// zero-width and other invisible characters, spaces other than U+0020,
// invalid UTF-8), so none reaches a terminal or a log raw; letters of any
// script stay readable. It is cut to 40 characters.
func quote(s string) string {
	const show = 40
	if utf8.RuneCountInString(s) <= show {
		return strconv.Quote(s)
	}
	i := 0
	for n := 0; n < show; n++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strconv.Quote(s[:i]) + "…"
}
