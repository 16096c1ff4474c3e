package broker_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dirsync/dirsync/daemon/broker"
)

// docs/events.md shows an external NATS deployment the consumer's
// permissions as a nats-server configuration block: it must be exactly
// what the embedded server grants.
func TestConsumerPermissionsDocumented(t *testing.T) {
	p := broker.ConsumerPermissions()
	var b strings.Builder
	b.WriteString("permissions: {\n  publish: {\n    allow: [\n")
	for _, s := range p.Publish.Allow {
		fmt.Fprintf(&b, "      %q\n", s)
	}
	b.WriteString("    ]\n  }\n  subscribe: {\n    allow: [")
	for i, s := range p.Subscribe.Allow {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteString("]\n  }\n}\n")
	if p.Publish.Deny != nil || p.Subscribe.Deny != nil || p.Response != nil {
		t.Fatal("ConsumerPermissions has deny lists or response permissions: render them here too")
	}
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	// Indentation aside: the doc nests the block in a users list.
	flat := func(s string) string {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			lines[i] = strings.TrimSpace(l)
		}
		return strings.Join(lines, "\n")
	}
	if !strings.Contains(flat(string(doc)), flat(b.String())) {
		t.Errorf("docs/events.md does not show the consumer's permissions as granted; the block should read:\n%s", b.String())
	}
}
