package events

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestStringList(t *testing.T) {
	tests := []struct {
		in   []string
		json string
	}{
		{nil, `[]`},
		{[]string{""}, `[""]`},
		{[]string{"SMTP:a@b.c", "smtp:<x>@b.c"}, `["SMTP:a@b.c","smtp:\u003cx\u003e@b.c"]`},
	}
	for _, tt := range tests {
		l := ListOf(tt.in...)
		if got := l.Strings(); !slices.Equal(got, tt.in) || l.Len() != len(tt.in) {
			t.Errorf("ListOf(%q).Strings() = %q, Len %d", tt.in, got, l.Len())
		}
		b, err := json.Marshal(l)
		if err != nil || string(b) != tt.json {
			t.Errorf("ListOf(%q) marshals as %s (%v); want %s", tt.in, b, err, tt.json)
		}
		var back StringList
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("%s unmarshals as %q (%v)", b, back, err)
		}
	}
	if ListOf("a", "b") == ListOf("ab") || ListOf("a", "") == ListOf("a") {
		t.Error("different lists compare equal")
	}
	var l StringList
	if err := json.Unmarshal([]byte(`["a\u0000b"]`), &l); err == nil {
		t.Error("a NUL in an element was accepted")
	}
}

func TestStringMap(t *testing.T) {
	m := MapOf(map[string]string{"b": "2", "a": "", "c": "<3>"})
	if m != MapOf(map[string]string{"c": "<3>", "a": "", "b": "2"}) {
		t.Error("equal maps made in another order compare unequal")
	}
	if v, ok := m.Get("a"); !ok || v != "" {
		t.Errorf("Get(a) = %q, %v", v, ok)
	}
	if _, ok := m.Get("z"); ok {
		t.Error("Get(z) found a key the map lacks")
	}
	b, err := json.Marshal(m)
	if err != nil || string(b) != `{"a":"","b":"2","c":"\u003c3\u003e"}` {
		t.Errorf("marshals as %s (%v)", b, err)
	}
	var back StringMap
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Errorf("%s unmarshals as %q (%v)", b, back, err)
	}
	with := m.With(map[string]string{"b": "two", "d": "4"})
	if want := map[string]string{"a": "", "b": "two", "c": "<3>", "d": "4"}; !maps.Equal(with.Map(), want) || with.Len() != 4 {
		t.Errorf("With = %v; want %v", with.Map(), want)
	}
	if MapOf(nil) != "" || StringMap("").Map() != nil || m.With(nil) != m {
		t.Error("empty maps")
	}
}
