package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Decode reads every stored event, so it parses the message in one pass
// of its own instead of validating it with encoding/json and parsing it
// again with the CloudEvents SDK (twice the work, and most of a replay's
// CPU). It accepts what the SDK accepted and makes the same checks
// (TestDecodeMatchesSDK holds them together), except where the SDK let
// through what dirsync cannot use: see decodeDifferences in
// decode_sdk_test.go.

// Decode parses a CloudEvents 1.0 JSON structured message, as Marshal or
// any other producer writes it. The decoded event's data refers to b
// (DecodeData reads it from there): b must not change afterwards.
// Extension attributes other than JobExtension are checked as the
// CloudEvents SDK checked them (name and value type) and dropped.
// Every error wraps ErrMalformed.
func Decode(b []byte) (Event, error) {
	var env envelope
	if err := env.parse(b); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	e, err := env.event()
	if err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return e, nil
}

// field is a string attribute as read: its bytes (in the message, or
// unescaped) and whether it was there and not null.
type field struct {
	b   []byte
	set bool
}

// envelope holds a message's attributes between parsing and checking.
type envelope struct {
	specVersion, id, source, typ, subject, time, contentType, dataSchema, dataBase64, syncID, epoch field

	seenSpecVersion, seenContentType, seenData bool
	data                                       []byte
	// dataCanonical: data is compact and holds nothing json.Marshal
	// escapes, so Marshal can copy it as it is.
	dataCanonical bool
}

// event checks the attributes and builds the event.
func (env *envelope) event() (Event, error) {
	if !env.seenSpecVersion {
		return Event{}, errors.New("no specversion")
	}
	if string(env.specVersion.b) != specVersion {
		return Event{}, fmt.Errorf("specversion %q, want %s", env.specVersion.b, specVersion)
	}
	if len(bytes.TrimSpace(env.id.b)) == 0 {
		return Event{}, errors.New("id: MUST be a non-empty string")
	}
	if len(env.source.b) == 0 {
		return Event{}, errors.New("source: REQUIRED")
	}
	if len(bytes.TrimSpace(env.typ.b)) == 0 {
		return Event{}, errors.New("type: MUST be a non-empty string")
	}
	if len(env.subject.b) > 0 && len(bytes.TrimSpace(env.subject.b)) == 0 {
		return Event{}, errors.New("subject: if present, MUST be a non-empty string")
	}
	// Compared before converting: the conversion would allocate.
	if env.contentType.set && string(env.contentType.b) != applicationJSON {
		if err := checkContentType(string(env.contentType.b)); err != nil {
			return Event{}, err
		}
	}
	if err := checkDataSchema(env.dataSchema); err != nil {
		return Event{}, err
	}
	e := Event{Type: internType(env.typ.b), raw: env.data, rawCanonical: env.dataCanonical}
	if len(env.time.b) > 0 {
		t, err := parseTime(env.time.b)
		if err != nil {
			return Event{}, fmt.Errorf("time: %w", err)
		}
		e.Time = t
	}
	if env.dataBase64.set {
		if env.seenData {
			return Event{}, errors.New("both data and data_base64")
		}
		raw, err := base64.StdEncoding.DecodeString(string(env.dataBase64.b))
		if err != nil {
			return Event{}, fmt.Errorf("data_base64: %w", err)
		}
		if !json.Valid(raw) {
			return Event{}, errors.New("data_base64 does not hold JSON")
		}
		e.raw, e.rawCanonical = raw, false
	}
	// One allocation for the envelope's strings, which are used and
	// dropped together; the job ID apart, as a projection keeps it with
	// every change and should not keep the rest with it.
	var sb strings.Builder
	sb.Grow(len(env.id.b) + len(env.source.b) + len(env.subject.b))
	sb.Write(env.id.b)
	sb.Write(env.source.b)
	sb.Write(env.subject.b)
	all := sb.String()
	n := len(env.id.b)
	e.ID, all = all[:n], all[n:]
	n = len(env.source.b)
	e.Source, e.Subject = all[:n], all[n:]
	e.JobID = string(env.syncID.b)
	if env.epoch.set {
		n, err := strconv.ParseUint(string(env.epoch.b), 10, 64)
		if err != nil || n == 0 {
			return Event{}, fmt.Errorf("%s: %q is not a positive decimal number", EpochExtension, env.epoch.b)
		}
		e.Epoch = n
	}
	source, err := canonicalSource(e.Source)
	if err == nil && strings.TrimSpace(source) == "" {
		err = errors.New("REQUIRED")
	}
	if err != nil {
		return Event{}, fmt.Errorf("source: %w", err)
	}
	e.Source = source
	return e, nil
}

// internType returns the package's constant for a known event type, so
// that decoded events do not each hold a copy. (A switch: ranging over
// Types() would allocate its slice on every call.)
func internType(b []byte) string {
	switch string(b) {
	case TypeSyncState:
		return TypeSyncState
	case TypeUserChanged:
		return TypeUserChanged
	case TypeUserRemoved:
		return TypeUserRemoved
	case TypeGroupChanged:
		return TypeGroupChanged
	case TypeGroupRemoved:
		return TypeGroupRemoved
	case TypeGroupMembersChanged:
		return TypeGroupMembersChanged
	case TypeRecipientCreated:
		return TypeRecipientCreated
	case TypeRecipientUpdated:
		return TypeRecipientUpdated
	case TypeRecipientRemoved:
		return TypeRecipientRemoved
	case TypeRecipientArchived:
		return TypeRecipientArchived
	case TypeRecipientRestored:
		return TypeRecipientRestored
	case TypeConnectorClaimed:
		return TypeConnectorClaimed
	}
	return string(b)
}

// checkContentType accepts what the SDK's Validate and Decode's prefix
// check accepted and the SDK read as JSON: application/json, with
// parameters or not.
func checkContentType(ct string) error {
	if _, _, err := mime.ParseMediaType(strings.TrimSpace(ct)); err != nil {
		return fmt.Errorf("datacontenttype %q: %w", ct, err)
	}
	mediaType := ct
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		mediaType = strings.TrimSpace(ct[:i])
	}
	if !strings.HasPrefix(ct, applicationJSON) || mediaType != applicationJSON {
		return fmt.Errorf("datacontenttype %q, want %s", ct, applicationJSON)
	}
	return nil
}

// checkDataSchema: a dataschema that parses as a URL must be absolute
// (one that does not parse the SDK dropped silently).
func checkDataSchema(f field) error {
	if len(f.b) == 0 {
		return nil
	}
	if u, err := url.Parse(string(f.b)); err == nil && !u.IsAbs() {
		return fmt.Errorf("dataschema %q: if present, MUST be an absolute URI", f.b)
	}
	return nil
}

// parseTime parses an RFC 3339 time, quickly in the layout Marshal writes.
func parseTime(b []byte) (time.Time, error) {
	if t, ok := parseUTCTime(b); ok {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// parseUTCTime parses 2006-01-02T15:04:05[.fraction]Z, the time.RFC3339Nano
// layout of a UTC time, to what time.Parse gives; it reports false for
// anything else, which time.Parse then reads or rejects.
func parseUTCTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := atoi(b[0:4])
	month, ok2 := atoi(b[5:7])
	day, ok3 := atoi(b[8:10])
	hour, ok4 := atoi(b[11:13])
	minute, ok5 := atoi(b[14:16])
	sec, ok6 := atoi(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		n, ok := atoi(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac) - 1; i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // 31 April and the like: time.Date normalized it
		return time.Time{}, false
	}
	return t, true
}

// atoi parses decimal digits only.
func atoi(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parse reads the message's top-level object into env.
func (env *envelope) parse(b []byte) error {
	s := scanner{b: b}
	s.space()
	if !s.next('{') {
		return s.errorf("want a JSON object")
	}
	s.space()
	if !s.next('}') {
		for {
			if s.peek() != '"' {
				return s.errorf("want an attribute name")
			}
			key, err := s.string()
			if err != nil {
				return err
			}
			s.space()
			if !s.next(':') {
				return s.errorf("want ':'")
			}
			s.space()
			if err := env.member(&s, key); err != nil {
				return err
			}
			s.space()
			if s.next(',') {
				s.space()
				continue
			}
			if s.next('}') {
				break
			}
			return s.errorf("want ',' or '}'")
		}
	}
	s.space()
	if s.i != len(b) {
		return s.errorf("more after the event")
	}
	return nil
}

// member reads the value of the attribute key.
func (env *envelope) member(s *scanner, key []byte) error {
	var err error
	switch string(key) {
	case "specversion":
		if env.seenSpecVersion {
			return errors.New("specversion was already provided")
		}
		env.seenSpecVersion = true
		env.specVersion, err = s.stringField(key)
	case "id":
		env.id, err = s.stringField(key)
	case "source":
		env.source, err = s.stringField(key)
	case "type":
		env.typ, err = s.stringField(key)
	case "subject":
		env.subject, err = s.stringField(key)
	case "time":
		env.time, err = s.stringField(key)
	case "datacontenttype":
		if env.seenContentType {
			return errors.New("datacontenttype was already provided")
		}
		env.seenContentType = true
		env.contentType, err = s.stringField(key)
	case "dataschema":
		env.dataSchema, err = s.stringField(key)
	case "data_base64":
		env.dataBase64, err = s.stringField(key)
	case "data":
		start := s.i
		s.dirty = false
		if err := s.value(2); err != nil {
			return err
		}
		env.data, env.dataCanonical, env.seenData = s.b[start:s.i:s.i], !s.dirty, true
	default:
		return env.extension(s, key)
	}
	return err
}

// extension reads an extension attribute: the SDK refused a name that is
// not ASCII letters and digits or that is a context attribute's, and a
// value that is not a string, a boolean, a 32-bit integer or null. Of
// the extensions only JobExtension and EpochExtension (in any case) are
// kept, when strings.
func (env *envelope) extension(s *scanner, key []byte) error {
	if len(key) == 0 {
		return errors.New("an attribute name is empty")
	}
	for _, c := range key {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("extension %q: CloudEvents attribute names MUST consist of ASCII letters and digits", key)
		}
	}
	// The CloudEvents 1.0 context attributes.
	for _, a := range [...]string{"id", "source", "type", "datacontenttype", "subject", "time", "specversion", "dataschema"} {
		if bytes.EqualFold(key, []byte(a)) {
			return fmt.Errorf("extension %q: CloudEvents spec attribute MUST NOT be overwritten by extension", key)
		}
	}
	isJob := bytes.EqualFold(key, []byte(JobExtension))
	isEpoch := bytes.EqualFold(key, []byte(EpochExtension))
	switch c := s.peek(); {
	case c == '"':
		f, err := s.stringField(key)
		if err != nil {
			return err
		}
		switch {
		case isJob:
			env.syncID = f
		case isEpoch:
			env.epoch = f
		}
		return nil
	case c == '-' || '0' <= c && c <= '9':
		start := s.i
		if err := s.number(); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
		if err != nil || f > (1<<31-1) || f < -(1<<31) {
			return fmt.Errorf("extension %q: %s is out of the range of a CloudEvents integer", key, s.b[start:s.i])
		}
	case c == 't' || c == 'f' || c == 'n':
		if err := s.literal(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("extension %q: invalid CloudEvents value (an object or array)", key)
	}
	if isJob { // not a string, or null: no job
		env.syncID = field{}
	}
	if isEpoch { // not a string, or null: no epoch
		env.epoch = field{}
	}
	return nil
}
