package events

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// A directory user is held in memory for every user of every connector
// and compared with == to find what a sync changed. StringList and
// StringMap keep a list and a map of strings in one string each, so that
// User stays comparable and small; in JSON they are an array and an
// object. Their elements never hold NUL, which separates them: the
// daemon's intake cleans control characters out of every text a plugin
// sends.

// sep separates a StringList's elements and a StringMap's keys and values.
const sep = "\x00"

// StringList is a list of strings, comparable with ==. The zero value is
// the empty list. Make one with ListOf: the string is its encoding, a
// string kind so that omitempty leaves an empty list out.
type StringList string

// ListOf returns the list of ss, in their order.
func ListOf(ss ...string) StringList {
	if len(ss) == 0 {
		return ""
	}
	return StringList(strings.Join(ss, sep) + sep)
}

// Len returns the number of elements.
func (l StringList) Len() int { return strings.Count(string(l), sep) }

// All yields the elements in order.
func (l StringList) All() iter.Seq[string] {
	return func(yield func(string) bool) {
		for rest := string(l); rest != ""; {
			v, tail, _ := strings.Cut(rest, sep)
			if !yield(v) {
				return
			}
			rest = tail
		}
	}
}

// Strings returns the elements as a slice (nil when empty).
func (l StringList) Strings() []string { return slices.Collect(l.All()) }

// IsZero reports whether the list is empty (omitempty leaves it out).
func (l StringList) IsZero() bool { return l == "" }

// MarshalJSON writes a JSON array.
func (l StringList) MarshalJSON() ([]byte, error) {
	ss := l.Strings()
	if ss == nil {
		ss = []string{}
	}
	return json.Marshal(ss)
}

// UnmarshalJSON reads a JSON array of strings, or null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	for _, s := range ss {
		if strings.Contains(s, sep) {
			return fmt.Errorf("a list element holds NUL: %q", s)
		}
	}
	*l = ListOf(ss...)
	return nil
}

// StringMap is a map of strings to strings, comparable with ==: two maps
// with the same entries are equal whatever the order they were made in.
// The zero value is the empty map. Make one with MapOf.
type StringMap string

// MapOf returns the map of m's entries.
func MapOf(m map[string]string) StringMap {
	if len(m) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range slices.Sorted(mapKeys(m)) {
		b.WriteString(k)
		b.WriteString(sep)
		b.WriteString(m[k])
		b.WriteString(sep)
	}
	return StringMap(b.String())
}

func mapKeys(m map[string]string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// All yields the entries in the order of their keys.
func (m StringMap) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for rest := string(m); rest != ""; {
			k, tail, _ := strings.Cut(rest, sep)
			v, tail, _ := strings.Cut(tail, sep)
			if !yield(k, v) {
				return
			}
			rest = tail
		}
	}
}

// Get returns the value of key and whether the map has it.
func (m StringMap) Get(key string) (string, bool) {
	for k, v := range m.All() {
		if k == key {
			return v, true
		}
	}
	return "", false
}

// Len returns the number of entries.
func (m StringMap) Len() int { return strings.Count(string(m), sep) / 2 }

// Map returns the entries as a Go map (nil when empty).
func (m StringMap) Map() map[string]string {
	if m == "" {
		return nil
	}
	out := map[string]string{}
	for k, v := range m.All() {
		out[k] = v
	}
	return out
}

// With returns the map with the entries of set laid over it.
func (m StringMap) With(set map[string]string) StringMap {
	if len(set) == 0 {
		return m
	}
	out := m.Map()
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range set {
		out[k] = v
	}
	return MapOf(out)
}

// IsZero reports whether the map is empty (omitempty leaves it out).
func (m StringMap) IsZero() bool { return m == "" }

// MarshalJSON writes a JSON object, its keys in order.
func (m StringMap) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	first := true
	for k, v := range m.All() {
		if !first {
			b = append(b, ',')
		}
		first = false
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, kb...), ':'), vb...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads a JSON object of strings, or null.
func (m *StringMap) UnmarshalJSON(b []byte) error {
	var mm map[string]string
	if err := json.Unmarshal(b, &mm); err != nil {
		return err
	}
	for k, v := range mm {
		if strings.Contains(k, sep) || strings.Contains(v, sep) {
			return fmt.Errorf("a map entry holds NUL: %q", k)
		}
	}
	*m = MapOf(mm)
	return nil
}
