package events

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON scanner Decode reads a message with: it checks the syntax as
// encoding/json does and reads strings as the CloudEvents SDK did.

// maxDepth is how deeply JSON values may nest, the envelope counting as
// one: encoding/json's limit, which Decode used to apply.
const maxDepth = 10000

// scanner reads JSON from b at i, checking it as strictly as
// encoding/json's scanner does.
type scanner struct {
	b []byte
	i int
	// dirty records, while value skips data, that it met white space
	// between tokens or a byte json.Marshal escapes (<, >, &, U+2028,
	// U+2029) in a string.
	dirty bool
}

func (s *scanner) errorf(format string, args ...any) error {
	what := "end of input"
	if s.i < len(s.b) {
		what = strconv.QuoteRune(rune(s.b[s.i]))
	}
	return fmt.Errorf("invalid JSON at offset %d (%s): %s", s.i, what, fmt.Sprintf(format, args...))
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// next consumes c if it comes next.
func (s *scanner) next(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) space() {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			s.dirty = s.dirty || s.i > start
			return
		}
	}
	s.dirty = s.dirty || s.i > start
}

// stringField reads a string attribute; null reads as absent, as the
// SDK read it.
func (s *scanner) stringField(name []byte) (field, error) {
	switch s.peek() {
	case 'n':
		return field{}, s.literal()
	case '"':
		b, err := s.string()
		return field{b: b, set: true}, err
	}
	return field{}, fmt.Errorf("%s: want a string: %w", name, s.errorf("not a string"))
}

// string reads a string and returns its content, unescaped.
func (s *scanner) string() ([]byte, error) {
	start := s.i + 1
	content, escaped, err := s.skipString()
	if err != nil || !escaped {
		return content, err
	}
	return unescape(s.b[start : s.i-1]), nil
}

// skipString reads a string, checking its escapes and that it holds no
// control byte, and returns its content as it stands in b.
func (s *scanner) skipString() (content []byte, escaped bool, err error) {
	s.i++ // the opening quote
	start := s.i
	for s.i < len(s.b) {
		// The common bytes first, in a loop of their own on locals,
		// which the compiler keeps in registers.
		b, i := s.b, s.i
		for i < len(b) {
			if c := b[i]; c < ' ' || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == 0xE2 {
				break
			}
			i++
		}
		s.i = i
		if i == len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], escaped, nil
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				s.i = len(s.b)
				return nil, false, s.errorf("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, false, s.errorf(`invalid \u escape`)
				}
				s.i += 6
			default:
				return nil, false, s.errorf("invalid escape")
			}
		case c < ' ':
			return nil, false, s.errorf("control character in string")
		case c == '<' || c == '>' || c == '&':
			s.dirty = true
			s.i++
		case c == 0xE2 && s.i+2 < len(s.b) && s.b[s.i+1] == 0x80 && s.b[s.i+2]&^1 == 0xA8:
			s.dirty = true
			s.i += 3
		default:
			s.i++
		}
	}
	return nil, false, s.errorf("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c <= '9':
			r = r<<4 | rune(c-'0')
		case c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			r = r<<4 | rune(c-'a'+10)
		}
	}
	return r
}

// unescape decodes the escapes of a checked string's content as the
// SDK's reader (jsoniter) did: bytes outside escapes, invalid UTF-8 too,
// are kept as they are; a surrogate pair makes one rune, and a surrogate
// that cannot pair with the \u escape after it makes U+FFFD, and so does
// that escape if it is a surrogate too.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		c = b[i+1]
		i += 2
		switch c {
		case 'u':
			r := hex4(b[i : i+4])
			i += 4
			if utf16.IsSurrogate(r) && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
				r2 := hex4(b[i+2 : i+6])
				i += 6
				if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
					out = utf8.AppendRune(out, pair)
				} else {
					out = utf8.AppendRune(utf8.AppendRune(out, r), r2)
				}
				continue
			}
			out = utf8.AppendRune(out, r)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // ", \ and /
			out = append(out, c)
		}
	}
	return out
}

// value skips one JSON value at nesting depth depth.
func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, _, err := s.skipString()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't' || c == 'f' || c == 'n':
		return s.literal()
	}
	return s.errorf("want a JSON value")
}

func (s *scanner) object(depth int) error {
	if depth > maxDepth {
		return s.errorf("exceeded max depth")
	}
	s.i++
	s.space()
	if s.next('}') {
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.errorf("want an object key")
		}
		if _, _, err := s.skipString(); err != nil {
			return err
		}
		s.space()
		if !s.next(':') {
			return s.errorf("want ':'")
		}
		s.space()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.next(',') {
			s.space()
			continue
		}
		if s.next('}') {
			return nil
		}
		return s.errorf("want ',' or '}'")
	}
}

func (s *scanner) array(depth int) error {
	if depth > maxDepth {
		return s.errorf("exceeded max depth")
	}
	s.i++
	s.space()
	if s.next(']') {
		return nil
	}
	for {
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.space()
		if s.next(',') {
			s.space()
			continue
		}
		if s.next(']') {
			return nil
		}
		return s.errorf("want ',' or ']'")
	}
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	s.next('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return s.errorf("invalid number")
	}
	if s.next('.') {
		if s.digits() == 0 {
			return s.errorf("invalid number")
		}
	}
	if s.next('e') || s.next('E') {
		if !s.next('+') {
			s.next('-')
		}
		if s.digits() == 0 {
			return s.errorf("invalid number")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

// literal skips true, false or null.
func (s *scanner) literal() error {
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return nil
		}
	}
	return s.errorf("invalid literal")
}
