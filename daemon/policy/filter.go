package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dirsync/dirsync/events"
)

// excludedBy returns the exclude_filter rule that u's attributes match:
// the attribute, u's value of it and the pattern, or ok false. Attributes
// are tried in name order so that explain names the same match each time.
// An absent or empty value matches nothing, not even "*": a filter on an
// attribute a user lacks never leaves that user out.
func (p Policy) excludedBy(u events.User) (attr, value, pattern string, ok bool) {
	if len(p.ExcludeFilter) == 0 {
		return "", "", "", false
	}
	for _, a := range slices.Sorted(maps.Keys(p.ExcludeFilter)) {
		v, _ := u.Attributes.Get(a)
		if strings.TrimSpace(v) == "" {
			continue
		}
		lower := strings.ToLower(strings.TrimSpace(v))
		for _, pat := range p.ExcludeFilter[a] {
			if matchPattern(pat, lower) {
				return a, v, pat, true
			}
		}
	}
	return "", "", "", false
}

// matchPattern reports whether s matches pattern, where * stands for any
// run of characters (none included) and every other character for
// itself; both are lower-cased by the caller. It backtracks only to the
// last star, so it takes at most len(pattern)·len(s) steps.
func matchPattern(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// filterValues renders u's values of the attributes exclude_filter reads,
// in name order, for explain: officeLocation "Oslo HQ", employeeType
// (none).
func (p Policy) filterValues(u events.User) string {
	var parts []string
	for _, a := range slices.Sorted(maps.Keys(p.ExcludeFilter)) {
		if v, _ := u.Attributes.Get(a); strings.TrimSpace(v) != "" {
			parts = append(parts, fmt.Sprintf("%s %q", a, v))
		} else {
			parts = append(parts, a+" (none)")
		}
	}
	return strings.Join(parts, ", ")
}
