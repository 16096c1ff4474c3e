package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// SyncPolicies are the values of nats { sync }, the default first. They
// mirror daemon/broker's constants (this package must not pull in
// nats-server, as the CLI imports it); docs/durability.md explains them.
func SyncPolicies() []string { return []string{"append", "always", "interval"} }

// MinMaxStore is the smallest nats { max_store }: below it a sync of a
// small directory would not fit beside the space kept for a job's final
// state.
const MinMaxStore = 16 << 20

// storageKeys are the nats block's keys that apply only to the embedded
// server.
func storageKeys() []string { return []string{"sync", "max_store"} }

// storage parses the nats block's sync and max_store into n.
func (ps *parser) storage(attrs map[string]*hclsyntax.Attribute, where string, n *NATS) {
	ps.enum(attrs, "sync", where, &n.Sync, SyncPolicies()...)
	s, set, ok := ps.str(attrs, "max_store", where)
	if !ok || !set {
		return
	}
	size, err := parseSize(s)
	switch {
	case err != nil:
		ps.at(attrs["max_store"].Expr.Range().Start, "max_store %q: %v; write a size such as \"512MB\" or \"20GB\" (units of 1024, as nats-server's max_file_store)", s, err)
	case size < MinMaxStore:
		ps.at(attrs["max_store"].Expr.Range().Start, "max_store %q is below the minimum of 16MB: JetStream needs room for the event stream, the read models and a job's final state", s)
	default:
		n.MaxStore = size
	}
}

// sizeUnits are the accepted units, in powers of 1024 like nats-server's
// own size settings.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

// parseSize reads "64MB", "1.5 GiB" or "1048576" as bytes.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (use B, KB, MB, GB or TB)", s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a positive number", num)
	}
	if v*float64(mult) > float64(1<<62) {
		return 0, fmt.Errorf("too large")
	}
	return int64(v * float64(mult)), nil
}
