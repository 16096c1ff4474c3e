package graphsim

import (
	"bytes"
	"strings"
)

// Content faults: what the knobs of Faults from OversizeBytes on do to
// successful Graph answers. Unlike the fate faults they hit every
// request, so that a test knows which answer carries them.

// Values served for the users named in Faults.HostileUsers. Each carries
// an attack on what consumes directory data: mail headers, address
// parsing, the display of text.
const (
	// HostileDisplayName ends the header line it is put in (CR LF) and
	// adds a Bcc header.
	HostileDisplayName = "Mallory\r\nBcc: everyone@evil.example"
	// HostileGivenName reverses the text after it (U+202E RIGHT-TO-LEFT
	// OVERRIDE), so "Eve‮gpj.exe" displays as "Eveexe.jpg".
	HostileGivenName = "Eve\u202egpj.exe"
	// HostileSurname wraps text in a left-to-right isolate (U+2066 ...
	// U+2069) and ends with a zero-width space, a BEL and a NUL.
	HostileSurname = "\u2066Doe\u2069\u200b\a\x00"
	// HostileMail is a display name with an address in angle brackets,
	// not an address: a client that parses it as a mailbox list sends to
	// eve@evil.example.
	HostileMail = "Eve <eve@evil.example>"
	// HostileDepartment injects a header with a bare LF.
	HostileDepartment = "Sales\nBcc: sales-all@evil.example"
	// HostileJobTitle injects a header with a bare CR.
	HostileJobTitle = "Boss\rTo: ceo@evil.example"
)

// InvalidUTF8DisplayName is the displayName served for the users named in
// Faults.InvalidUTF8Users: a stray continuation byte, bytes that never
// occur in UTF-8 (0xff, 0xfe), a truncated sequence and an encoded
// surrogate, sent raw.
const InvalidUTF8DisplayName = "Bad \x80 \xff\xfe UTF-8 \xc3( \xed\xa0\x80 name"

// NonGUIDID is the id served for an object named in Faults.NonGUIDIDs: not
// a GUID, and holding what breaks paths, globs and NATS subjects ("/",
// "..", "*", ">").
func NonGUIDID(id string) string { return id + "/../*.>" }

// contentFaults are the content faults of one request, resolved once.
type contentFaults struct {
	oversize int64
	nesting  int
	bodyPath string
	invalid  map[string]bool // lowercase user IDs
	hostile  map[string]bool // lowercase user IDs
	noID     map[string]bool // lowercase group IDs
	// ids holds the quoted JSON strings to replace: an object's id as the
	// tenant stores it, and its NonGUIDID.
	ids [][2][]byte
}

// contentFaults resolves the content faults of f against snap; nil when
// there are none.
func (s *Sim) contentFaults(f *Faults, snap *snapshot) *contentFaults {
	if f.OversizeBytes == 0 && f.NestingDepth == 0 && f.InvalidUTF8Users == "" && f.HostileUsers == "" &&
		f.NonGUIDIDs == "" && f.MembersWithoutID == "" {
		return nil
	}
	cf := &contentFaults{
		oversize: f.OversizeBytes,
		nesting:  f.NestingDepth,
		bodyPath: f.BodyFaultPath,
		invalid:  idSet(f.InvalidUTF8Users),
		hostile:  idSet(f.HostileUsers),
		noID:     idSet(f.MembersWithoutID),
	}
	for id := range idSet(f.NonGUIDIDs) {
		stored := id
		if u := snap.user(id); u != nil {
			stored = u.ID
		} else if g := snap.group(id); g != nil {
			stored = g.ID
		} else if d := snap.deleted[id]; d != nil {
			stored = d.ID
		}
		cf.ids = append(cf.ids, [2][]byte{appendJSONString(nil, stored), appendJSONString(nil, NonGUIDID(stored))})
	}
	return cf
}

// idSet splits a comma-separated list of IDs into a set of lowercase IDs.
func idSet(list string) map[string]bool {
	set := map[string]bool{}
	for _, id := range strings.Split(list, ",") {
		if id = strings.ToLower(strings.TrimSpace(id)); id != "" {
			set[id] = true
		}
	}
	return set
}

// user returns u as it is served: a copy with the hostile or invalid
// values when the faults name it, and whether its strings must be written
// raw (invalid UTF-8 kept). A nil cf serves u as it is.
func (cf *contentFaults) user(u *User) (*User, bool) {
	if cf == nil {
		return u, false
	}
	key := strings.ToLower(u.ID)
	hostile, invalid := cf.hostile[key], cf.invalid[key]
	if !hostile && !invalid {
		return u, false
	}
	c := *u
	if hostile {
		c.DisplayName, c.GivenName, c.Surname = HostileDisplayName, HostileGivenName, HostileSurname
		c.Mail, c.Department, c.JobTitle = HostileMail, HostileDepartment, HostileJobTitle
	}
	if invalid {
		c.DisplayName = InvalidUTF8DisplayName
	}
	return &c, invalid
}

// memberWithoutID reports whether the members@delta of group id carry an
// entry without an id.
func (cf *contentFaults) memberWithoutID(id string) bool {
	return cf != nil && cf.noID[strings.ToLower(id)]
}

// body applies the faults on whole answers to body, a successful answer
// of the endpoint path (as Counters names it). streamed says to send it
// without Content-Length.
func (cf *contentFaults) body(path string, body []byte) (out []byte, streamed bool) {
	if cf == nil {
		return body, false
	}
	for _, r := range cf.ids {
		body = bytes.ReplaceAll(body, r[0], r[1])
	}
	if cf.bodyPath != "" && cf.bodyPath != path || len(body) < 2 || body[0] != '{' {
		return body, false
	}
	if cf.nesting > 0 {
		nested := nestedJSON(cf.nesting)
		b := make([]byte, 0, len(body)+len(nested)+32)
		b = append(b, `{"@graphsim.nested":`...)
		b = append(b, nested...)
		if rest := bytes.TrimLeft(body[1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
			b = append(b, ',')
		}
		body = append(b, body[1:]...)
	}
	if int64(len(body)) < cf.oversize {
		pad := int(cf.oversize) - len(body)
		b := make([]byte, 0, int(cf.oversize))
		b = append(b, '{')
		b = append(b, bytes.Repeat([]byte{' '}, pad)...)
		body = append(b, body[1:]...)
	}
	return body, cf.oversize > 0
}

// nestedJSON returns depth arrays and objects nested in each other,
// alternately: [{"n":[{"n":...null...}]}].
func nestedJSON(depth int) []byte {
	b := make([]byte, 0, depth*4+8)
	for i := range depth {
		if i%2 == 0 {
			b = append(b, '[')
		} else {
			b = append(b, `{"n":`...)
		}
	}
	b = append(b, "null"...)
	for i := depth - 1; i >= 0; i-- {
		if i%2 == 0 {
			b = append(b, ']')
		} else {
			b = append(b, '}')
		}
	}
	return b
}
