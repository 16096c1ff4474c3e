// Package secret holds a sensitive string that never prints itself: the
// connectors keep their passwords and client secrets in it, so that a
// config logged, printed or encoded by mistake shows "[redacted]".
package secret

import "encoding/json"

// Value is a sensitive string. Its String, GoString and MarshalJSON forms
// are redacted; Reveal returns the value where it is needed.
type Value string

// Redacted is what a Value prints as; redaction elsewhere (a secret found
// in an error text) uses it too.
const Redacted = "[redacted]"

// String implements fmt.Stringer with a redacted value ("" stays "", so
// that an unset secret reads as unset).
func (s Value) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString implements fmt.GoStringer with a redacted value.
func (s Value) GoString() string { return s.String() }

// MarshalJSON encodes the redacted value.
func (s Value) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Reveal returns the secret value.
func (s Value) Reveal() string { return string(s) }
