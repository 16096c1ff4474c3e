package connector

import "strings"

// Explain joins what a connector found wrong and what the admin must
// change into the sentences an error shows: "<detail>. To fix: <remedy>".
// The detail is a phrase; a final stop is added only where it has none,
// so that the remedy never runs on from it. Without a remedy it is the
// detail alone. Every connector words its failures this way, as the
// connection test's checks do in their detail and remedy fields.
func Explain(detail, remedy string) string {
	if remedy == "" {
		return detail
	}
	detail = strings.TrimRight(detail, " ")
	if !strings.HasSuffix(detail, ".") && !strings.HasSuffix(detail, "?") && !strings.HasSuffix(detail, "!") {
		detail += "."
	}
	return detail + " To fix: " + remedy
}
