package azuread

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"unicode/utf8"
)

// Limits on what Graph and Entra send, enforced where the bytes arrive:
// a RoundTripper under both the Graph SDK's middleware and azidentity's
// pipeline (limitTransport), before any JSON parser sees a byte.
//
//   - Size. Every response body is read through a limit (max_response_mb,
//     default 16 MiB; a delta page of 999 users is about 1 MiB). A
//     Content-Length above it fails the request at once; a streamed body
//     fails when the limit is crossed. Without it one broken or hostile
//     answer would be buffered whole by the retry middleware.
//   - Nesting. Graph's JSON nests a few levels deep (page > value > user
//     > assignedLicenses > disabledPlans). JSON bodies are scanned as
//     they stream for nesting deeper than maxJSONDepth, so that no parser
//     (encoding/json in the delta reader, kiota's recursive parse node
//     for the SDK's typed requests and error bodies) is handed a body
//     built to exhaust it. encoding/json refuses nesting past 10,000
//     levels, so neither overflows its stack, but 10,000 levels of
//     kiota's recursive tree are what the check spares, and its error
//     names the cause.
//
// The same scan counts the JSON strings that hold bytes that are not
// UTF-8 (stats.invalidUTF8): both decoders replace such bytes with
// U+FFFD without a word, so this is the only place that sees them. A
// response counts once it was read to its end with a 2xx status: an
// attempt cut short and retried, or an error answer, is not data the
// connector passes on.
//
// Both failures are permanent: a retry would read the same answer. They
// are never retried (retryable, shouldRetryAuth and azcore's retry policy
// through NonRetriable) and explain turns them into a Problem saying what
// to do.

// Response limits.
const (
	// DefaultMaxResponseMB is the default of max_response_mb.
	DefaultMaxResponseMB = 16
	// minMaxResponseMB and maxMaxResponseMB bound max_response_mb: below
	// 1 MiB a full page of users does not fit; above 1 GiB one answer
	// would hold the connector's memory hostage.
	minMaxResponseMB = 1
	maxMaxResponseMB = 1024
	// maxJSONDepth is the deepest nesting of arrays and objects accepted
	// in a JSON answer; Graph's own go about 6 deep.
	maxJSONDepth = 64
)

const mib = 1 << 20

// ResponseLimitError is an answer refused because it broke one of the
// connector's limits on what Graph or Entra send: its size
// (max_response_mb) or the nesting depth of its JSON. A retry would get
// the same answer, so none is made.
type ResponseLimitError struct {
	// Request is the method and URL of the request, without the query
	// (where delta and skip tokens are), e.g.
	// "GET https://graph.microsoft.com/v1.0/users/delta".
	Request string
	// MaxBytes is set when the body was larger than this many bytes.
	MaxBytes int64
	// MaxDepth is set when the JSON was nested deeper than this.
	MaxDepth int
}

// Marks of the two failures in an error text, for errors whose chain was
// lost (azidentity keeps only the text).
const (
	limitSizeMark  = "(max_response_mb); the connector stopped reading it"
	limitDepthMark = "levels; the connector refuses it unparsed"
)

// Error names the request and the limit.
func (e *ResponseLimitError) Error() string {
	if e.MaxDepth > 0 {
		return fmt.Sprintf("the answer to %s nests JSON deeper than %d %s", e.Request, e.MaxDepth, limitDepthMark)
	}
	return fmt.Sprintf("the answer to %s is larger than %s %s", e.Request, formatMiB(e.MaxBytes), limitSizeMark)
}

// NonRetriable tells azcore's retry policy (token requests) that a retry
// cannot help.
func (e *ResponseLimitError) NonRetriable() {}

// formatMiB writes a byte count as "16 MiB".
func formatMiB(n int64) string {
	if n%mib == 0 {
		return fmt.Sprintf("%d MiB", n/mib)
	}
	return fmt.Sprintf("%d bytes", n)
}

// limitTransport enforces the response limits on every response of next.
type limitTransport struct {
	next     http.RoundTripper
	maxBytes int64
	maxDepth int
	// invalidUTF8, when set, is added the JSON strings with invalid UTF-8
	// of every 2xx JSON answer read to its end.
	invalidUTF8 *atomic.Int64
}

// RoundTrip implements http.RoundTripper.
func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	request := req.Method + " " + requestURL(req)
	if resp.ContentLength > t.maxBytes {
		// Known too large before a byte is read: close without reading.
		_ = resp.Body.Close()
		return nil, &ResponseLimitError{Request: request, MaxBytes: t.maxBytes}
	}
	lb := &limitedBody{body: resp.Body, left: t.maxBytes, request: request, maxBytes: t.maxBytes}
	if isJSON(resp.Header.Get("Content-Type")) {
		lb.scan = &depthScanner{max: t.maxDepth}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			lb.invalidUTF8 = t.invalidUTF8
		}
	}
	resp.Body = lb
	return resp, nil
}

// requestURL is the URL of req without its query, user info and fragment.
func requestURL(req *http.Request) string {
	if req.URL == nil {
		return ""
	}
	return req.URL.Scheme + "://" + req.URL.Host + req.URL.EscapedPath()
}

// limitedBody is a response body that fails once more than its limit is
// read or its JSON nests too deep. The failure sticks: every later Read
// returns it.
type limitedBody struct {
	body     io.ReadCloser
	left     int64 // bytes still allowed
	request  string
	maxBytes int64
	scan     *depthScanner // nil: not JSON
	// invalidUTF8 is added scan's count at the end of the body (nil:
	// not counted).
	invalidUTF8 *atomic.Int64
	err         error
}

// Read implements io.Reader.
func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One byte past the limit tells a body of exactly the limit from a
	// larger one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.err = &ResponseLimitError{Request: b.request, MaxBytes: b.maxBytes}
	}
	b.left -= int64(n)
	if b.scan != nil && !b.scan.feed(p[:n]) {
		b.err = &ResponseLimitError{Request: b.request, MaxDepth: b.scan.max}
	}
	if b.err != nil {
		return n, b.err
	}
	if errors.Is(err, io.EOF) && b.invalidUTF8 != nil {
		// Once: a reader may ask again after the end.
		b.invalidUTF8.Add(b.scan.invalidUTF8)
		b.invalidUTF8 = nil
	}
	return n, err
}

// Close implements io.Closer.
func (b *limitedBody) Close() error { return b.body.Close() }

// depthScanner follows the nesting of a JSON text fed to it in pieces and
// counts its strings that hold invalid UTF-8. It does not validate the
// JSON (the parser does); it only counts brackets outside strings and
// checks the bytes inside them.
type depthScanner struct {
	max      int
	depth    int
	inString bool
	escaped  bool
	// invalidUTF8 counts the strings (values and names) that held bytes
	// that are not UTF-8, as utf8.Valid defines it: what encoding/json
	// and kiota replace with U+FFFD.
	invalidUTF8 int64
	// State of the UTF-8 check of the current string: bad once it was
	// counted; need continuation bytes still expected, each in [lo, hi].
	bad    bool
	need   int
	lo, hi byte
}

// feed scans the next piece of the text; false means the nesting went
// deeper than max.
func (s *depthScanner) feed(p []byte) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if s.inString {
			switch {
			case s.escaped:
				// An escape is ASCII in valid JSON; the parser refuses
				// anything else.
				s.escaped = false
			case c == '\\' || c == '"':
				if s.need > 0 {
					s.invalid() // a sequence cut short
				}
				s.escaped = c == '\\'
				s.inString = c != '"'
			default:
				// Up to the next quote or backslash at once: strings are
				// most of a page.
				end := len(p)
				if j := bytes.IndexAny(p[i:], "\"\\"); j >= 0 {
					end = i + j
				}
				s.checkUTF8(p[i:end])
				i = end - 1
			}
			continue
		}
		switch c {
		case '"':
			s.inString, s.bad, s.need = true, false, 0
		case '[', '{':
			s.depth++
			if s.depth > s.max {
				return false
			}
		case ']', '}':
			if s.depth > 0 {
				s.depth--
			}
		}
	}
	return true
}

// invalid counts the current string once.
func (s *depthScanner) invalid() {
	if !s.bad {
		s.bad = true
		s.invalidUTF8++
	}
	s.need = 0
}

// checkUTF8 checks a run of string bytes without quote or backslash. A
// sequence may straddle two pieces: need carries it over.
func (s *depthScanner) checkUTF8(run []byte) {
	if s.bad || s.need == 0 && utf8.Valid(run) {
		return
	}
	for _, c := range run {
		if !s.utf8Byte(c) {
			s.invalid()
			return
		}
	}
}

// utf8Byte advances the UTF-8 check by one byte; false means the byte
// cannot come here in UTF-8 (the ranges of RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF).
func (s *depthScanner) utf8Byte(c byte) bool {
	if s.need > 0 {
		if c < s.lo || c > s.hi {
			return false
		}
		s.need--
		s.lo, s.hi = 0x80, 0xbf
		return true
	}
	s.lo, s.hi = 0x80, 0xbf
	switch {
	case c < 0x80:
	case c < 0xc2: // a continuation byte, or an overlong 2-byte lead
		return false
	case c < 0xe0:
		s.need = 1
	case c == 0xe0:
		s.need, s.lo = 2, 0xa0
	case c == 0xed: // U+D800-U+DFFF are surrogates
		s.need, s.hi = 2, 0x9f
	case c < 0xf0:
		s.need = 2
	case c == 0xf0:
		s.need, s.lo = 3, 0x90
	case c < 0xf4:
		s.need = 3
	case c == 0xf4:
		s.need, s.hi = 3, 0x8f
	default:
		return false
	}
	return true
}
