package graphsim

import (
	"strconv"
	"unicode/utf8"
)

// jsonObj appends one JSON object to a byte slice without reflection, so a
// page of 999 users costs one buffer. Keys are written in call order.
type jsonObj struct {
	b []byte
	n int
	// keepInvalid writes strings' invalid UTF-8 raw instead of as U+FFFD
	// (Faults.InvalidUTF8Users).
	keepInvalid bool
}

func (o *jsonObj) begin() { o.b = append(o.b, '{'); o.n = 0 }
func (o *jsonObj) end()   { o.b = append(o.b, '}') }

func (o *jsonObj) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

// str writes k: "v", or k: null when v is empty.
func (o *jsonObj) str(k, v string) {
	o.key(k)
	if v == "" {
		o.b = append(o.b, "null"...)
		return
	}
	if o.keepInvalid {
		o.b = appendJSONStringRaw(o.b, v)
		return
	}
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObj) null(k string) { o.key(k); o.b = append(o.b, "null"...) }

func (o *jsonObj) boolean(k string, v bool) { o.key(k); o.b = strconv.AppendBool(o.b, v) }

// raw writes k: v where v is already JSON.
func (o *jsonObj) raw(k, v string) { o.key(k); o.b = append(o.b, v...) }

func (o *jsonObj) strs(k string, vs []string) {
	o.key(k)
	o.b = append(o.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, v)
	}
	o.b = append(o.b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Unlike encoding/json it does
// not escape <, > and &, like Graph; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte { return appendJSONStr(b, s, false) }

// appendJSONStringRaw is appendJSONString that keeps invalid UTF-8 as it
// is: what a broken server sends.
func appendJSONStringRaw(b []byte, s string) []byte { return appendJSONStr(b, s, true) }

func appendJSONStr(b []byte, s string, keepInvalid bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 && !keepInvalid {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
