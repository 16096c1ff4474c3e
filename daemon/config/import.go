package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/dirsync/dirsync/events"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Values of Import.EmailFrom.
const (
	// EmailFromMail takes a recipient's address from the user's mail
	// attribute (the default); users without one are not imported.
	EmailFromMail = "mail"
	// EmailFromUPN takes it from userPrincipalName, for tenants without
	// Exchange.
	EmailFromUPN = "userPrincipalName"
	// EmailFromPrimarySMTP takes it from the user's primary SMTP proxy
	// address ("SMTP:"), which Exchange delivers to and which may differ
	// from mail in a hybrid directory.
	EmailFromPrimarySMTP = "primary_smtp"
)

// mailboxPurposes are the accepted exclude_mailboxes values: the mailbox
// purposes of connectors/connector (MailboxPurposes), repeated here as
// groupTypes is; a test keeps them in step.
func mailboxPurposes() []string {
	return []string{"user", "shared", "room", "equipment", "linked", "others"}
}

// DefaultExcludeMailboxes are the mailboxes that are not people's: a
// shared mailbox (reception@, info@), a meeting room, a projector.
func DefaultExcludeMailboxes() []string { return []string{"shared", "room", "equipment"} }

// attributeNames are the directory attributes an attributes block may
// map: connectors/connector's Attributes, repeated as groupTypes is.
func attributeNames() []string {
	names := []string{"preferredLanguage", "manager", "employeeId", "employeeType", "companyName",
		"officeLocation", "city", "country", "usageLocation", "mobilePhone"}
	for n := 1; n <= 15; n++ {
		names = append(names, "extensionAttribute"+strconv.Itoa(n))
	}
	return names
}

// MaxAttributes bounds the fields of an attributes block.
const MaxAttributes = 32

// MaxExcludePatterns bounds the patterns of exclude_filter, all
// attributes together: each is matched against every user at each sync.
const MaxExcludePatterns = 64

// Values of Import.TagMode.
const (
	// TagModeAppend adds the configured tags to a recipient's own (the
	// default).
	TagModeAppend = "append"
	// TagModeReplace makes the configured tags a recipient's only tags.
	TagModeReplace = "replace"
)

// Values of Import.OnRemoved: what happens to a recipient whose user left
// the directory or the import scope.
const (
	// OnRemovedArchive archives the recipient (the default).
	OnRemovedArchive = "archive"
	// OnRemovedDelete deletes it.
	OnRemovedDelete = "delete"
	// OnRemovedKeep leaves it as it is.
	OnRemovedKeep = "keep"
)

// Limits of the import block.
const (
	// MaxTagLength is the longest tag, in characters.
	MaxTagLength = 64
	// DefaultMaxRemovalsCount and DefaultMaxRemovalsPercent make the
	// default removal limit: a sync may not remove more than both.
	DefaultMaxRemovalsCount = 50
	// DefaultMaxRemovalsPercent is the percentage half of the default
	// removal limit; see DefaultMaxRemovalsCount.
	DefaultMaxRemovalsPercent = 20
)

// groupTypes are the accepted group_types values; they are the group kinds
// of connectors/connector (GroupKinds), repeated here so the configuration
// does not depend on the plugin glue. A test keeps the two in step.
func groupTypes() []string { return []string{"unified", "security", "mail_security", "distribution"} }

// importKeys are the keys of an import block, in documentation order.
func importKeys() []string {
	return []string{
		"email_from", "exclude_unlicensed", "include_disabled", "include_guests",
		"group_types", "include_groups", "exclude_groups", "nested_groups", "include_domains",
		"exclude_domains", "exclude_users", "exclude_filter", "exclude_mailboxes", "tags", "tag_mode",
		"update_existing", "on_removed", "max_removals",
	}
}

// Import is a connector's import policy block, with defaults applied: which
// directory users become recipients, and how.
type Import struct {
	// EmailFrom is EmailFromMail (default), EmailFromUPN or
	// EmailFromPrimarySMTP.
	EmailFrom string
	// ExcludeMailboxes are the mailbox purposes ("shared", "room",
	// "equipment", ...) whose users are not imported; default
	// DefaultExcludeMailboxes, an empty list excludes none (and the
	// connector is not asked to read them).
	ExcludeMailboxes []string
	// Attributes maps recipient attribute names to the directory
	// attributes they carry (connector.Attributes' names), from the
	// attributes block: {"site": "officeLocation"}. nil without one.
	Attributes map[string]string
	// ExcludeUnlicensed leaves out users without a license (default false).
	ExcludeUnlicensed bool
	// IncludeDisabled imports disabled accounts too (default false).
	IncludeDisabled bool
	// IncludeGuests imports guest users too (default false).
	IncludeGuests bool
	// GroupTypes are the kinds of groups synced and shown on recipients:
	// unified, security, mail_security, distribution. Default ["unified"],
	// which the daemon replaces by the plugin's own default kinds
	// (WithPluginGroupKinds); never empty, no duplicates.
	GroupTypes []string
	// GroupTypesSet is true when the block wrote group_types.
	GroupTypesSet bool
	// IncludeGroups and ExcludeGroups are groups by display name or object
	// ID, as written (surrounding white space trimmed, duplicates
	// removed). nil when unset or empty: no restriction.
	IncludeGroups, ExcludeGroups []string
	// NestedGroups counts a group's members through the groups nested in
	// it, at any depth, for the group scopes and the groups shown on a
	// recipient (default true).
	NestedGroups bool
	// IncludeDomains and ExcludeDomains are mail domains, lower-cased,
	// without a leading "@", duplicates removed. nil when unset or empty.
	IncludeDomains, ExcludeDomains []string
	// ExcludeUsers are email addresses or object IDs, lower-cased,
	// duplicates removed. nil when unset or empty. Exclusions win over
	// inclusions.
	ExcludeUsers []string
	// ExcludeFilter maps directory attributes (connector.Attributes'
	// names) to value patterns, lower-cased, duplicates removed, from
	// exclude_filter = { employeeType = "Resource", officeLocation =
	// ["Conference*", "*Room"] }: a user whose value of an attribute
	// matches any of its patterns, case-insensitively with * standing for
	// any run of characters, is not imported. It is for the resource
	// accounts a tenant marks in its own way. An empty or absent value
	// matches no pattern, not even "*". nil when unset or empty.
	ExcludeFilter map[string][]string
	// Tags are put on every imported recipient: each non-empty (surrounding
	// white space trimmed), without control characters, at most
	// MaxTagLength characters; duplicates removed keeping the first.
	Tags []string
	// TagMode is TagModeAppend (default) or TagModeReplace.
	TagMode string
	// UpdateExisting updates recipients that already exist (default true).
	UpdateExisting bool
	// OnRemoved is OnRemovedArchive (default), OnRemovedDelete or
	// OnRemovedKeep.
	OnRemoved string
	// MaxRemovals caps the removals one sync may make; the zero value is
	// the default rule (see Limit).
	MaxRemovals Limit
	// Range is the import block's position, or the connector block's when
	// the file has no import block.
	Range hcl.Range
}

// DefaultImport returns the import policy of a connector without an import
// block.
func DefaultImport() Import {
	return Import{
		EmailFrom:        EmailFromMail,
		ExcludeMailboxes: DefaultExcludeMailboxes(),
		NestedGroups:     true,
		GroupTypes:       []string{"unified"},
		TagMode:          TagModeAppend,
		UpdateExisting:   true,
		OnRemoved:        OnRemovedArchive,
	}
}

// Limit is a removal limit: a count or a percentage of the current
// recipients. The zero value means unset, which applies the default rule:
// more than DefaultMaxRemovalsCount recipients and more than
// DefaultMaxRemovalsPercent percent of them.
type Limit struct {
	// Count is the most removals allowed, when Set and Percent is 0.
	Count int
	// Percent, when Set and not 0, is the most removals allowed as a
	// percentage of the current recipients (0 < Percent <= 100).
	Percent float64
	// Set is false for the default rule.
	Set bool
}

// String renders the limit as written in plugins.hcl: "25", "10%", or, when
// unset, "default (more than 50 and more than 20%)".
func (l Limit) String() string {
	switch {
	case !l.Set:
		return fmt.Sprintf("default (more than %d and more than %d%%)", DefaultMaxRemovalsCount, DefaultMaxRemovalsPercent)
	case l.Percent > 0:
		return strconv.FormatFloat(l.Percent, 'f', -1, 64) + "%"
	default:
		return strconv.Itoa(l.Count)
	}
}

// Exceeded reports whether removing removals out of total current
// recipients passes the limit. A count is exceeded by more removals than
// Count; a percentage by more than Percent percent of total (never when
// total is 0); the default rule by more than 50 removals that are also more
// than 20% of total.
func (l Limit) Exceeded(removals, total int) bool {
	r, t := float64(removals), float64(total)
	switch {
	case !l.Set:
		return removals > DefaultMaxRemovalsCount && r*100 > DefaultMaxRemovalsPercent*t
	case l.Percent > 0:
		return total > 0 && r*100 > l.Percent*t
	default:
		return removals > l.Count
	}
}

// limitForms tells which removal limits ParseLimit accepts.
const limitForms = `use a count such as 25 or a percentage such as "10%"`

// ParseLimit parses a removal limit: a count ("25", at least 0) or a
// percentage ("10%", more than 0 and at most 100; decimals allowed).
func ParseLimit(s string) (Limit, error) {
	t := strings.TrimSpace(s)
	if num, isPct := strings.CutSuffix(t, "%"); isPct {
		num = strings.TrimSpace(num)
		if !isDecimal(num) {
			return Limit{}, fmt.Errorf("%q is not a percentage; %s", s, limitForms)
		}
		p, err := strconv.ParseFloat(num, 64)
		if err != nil || p <= 0 || p > 100 {
			return Limit{}, fmt.Errorf("percentage %q is out of range: it must be more than 0%% and at most 100%%", s)
		}
		return Limit{Percent: p, Set: true}, nil
	}
	digits := strings.TrimPrefix(t, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return Limit{}, fmt.Errorf("%q is neither a count nor a percentage; %s", s, limitForms)
	}
	if digits != t {
		return Limit{}, fmt.Errorf("count %q is negative: it must be 0 or more", s)
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return Limit{}, fmt.Errorf("count %q is too large: %w", s, err)
	}
	return Limit{Count: n, Set: true}, nil
}

// isDecimal reports whether s is digits with at most one decimal point and
// at least one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// importBlock parses a connector's import block; b is nil when there is
// none.
func (ps *parser) importBlock(cn *Connector, b *hclsyntax.Block) {
	im := DefaultImport()
	im.Range = cn.Range
	defer func() { cn.Import = im }()
	if b == nil {
		return
	}
	im.Range = b.DefRange()
	where := fmt.Sprintf("import block of connector %q", cn.Name)
	attrs := ps.attrs(b.Body, where, importKeys(), []string{"attributes"})

	ps.enum(attrs, "email_from", where, &im.EmailFrom, EmailFromMail, EmailFromUPN, EmailFromPrimarySMTP)
	ps.mailboxes(attrs, where, &im)
	ps.attributesBlock(b.Body, where, &im)
	ps.boolean(attrs, "exclude_unlicensed", where, &im.ExcludeUnlicensed)
	ps.boolean(attrs, "include_disabled", where, &im.IncludeDisabled)
	ps.boolean(attrs, "include_guests", where, &im.IncludeGuests)
	ps.groupTypes(attrs, where, &im)
	im.IncludeGroups = ps.names(attrs, "include_groups", where, "a group's display name or object ID")
	im.ExcludeGroups = ps.names(attrs, "exclude_groups", where, "a group's display name or object ID")
	ps.boolean(attrs, "nested_groups", where, &im.NestedGroups)
	im.IncludeDomains = ps.domains(attrs, "include_domains", where)
	im.ExcludeDomains = ps.domains(attrs, "exclude_domains", where)
	im.ExcludeUsers = ps.users(attrs, "exclude_users", where)
	ps.excludeFilter(attrs, where, &im)
	im.Tags = ps.tags(attrs, where)
	ps.enum(attrs, "tag_mode", where, &im.TagMode, TagModeAppend, TagModeReplace)
	ps.boolean(attrs, "update_existing", where, &im.UpdateExisting)
	ps.enum(attrs, "on_removed", where, &im.OnRemoved, OnRemovedArchive, OnRemovedDelete, OnRemovedKeep)
	ps.maxRemovals(attrs, where, &im)
}

// enum sets *dst to an optional string attribute that must be one of
// allowed; allowed[0] is the default.
func (ps *parser) enum(attrs map[string]*hclsyntax.Attribute, key, where string, dst *string, allowed ...string) {
	s, set, ok := ps.str(attrs, key, where)
	if !ok || !set {
		return
	}
	if contains(allowed, s) {
		*dst = s
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	quoted[0] += " (the default)"
	ps.at(attrs[key].Expr.Range().Start, "%s in %s must be %s, got %q", key, where, orList(quoted), s)
}

// boolean sets *dst to an optional bool attribute.
func (ps *parser) boolean(attrs map[string]*hclsyntax.Attribute, key, where string, dst *bool) {
	a := attrs[key]
	if a == nil {
		return
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok || v.IsNull() {
		return
	}
	if v.Type() != cty.Bool {
		ps.at(a.Expr.Range().Start, "%s in %s must be a bool (true or false), got %s", key, where, typeName(v.Type()))
		return
	}
	*dst = v.True()
}

// item is one string of a list attribute and where it is written.
type item struct {
	s   string
	pos hcl.Pos
	n   int // 1-based
}

// list evaluates an optional list-of-strings attribute. Each item carries
// its own position when the list is written as [ … ] (it always is in a
// literal-only file), else the value's.
func (ps *parser) list(attrs map[string]*hclsyntax.Attribute, key, where string) (items []item, set bool) {
	a := attrs[key]
	if a == nil {
		return nil, false
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok || v.IsNull() {
		return nil, false
	}
	start := a.Expr.Range().Start
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		hint := ""
		if t == cty.String {
			hint = ` (write ["…"] for a single value)`
		}
		ps.at(start, "%s in %s must be a list of strings, e.g. [\"a\", \"b\"], got %s%s", key, where, typeName(t), hint)
		return nil, false
	}
	var exprs []hclsyntax.Expression
	if tup, isTuple := a.Expr.(*hclsyntax.TupleConsExpr); isTuple && len(tup.Exprs) == v.LengthInt() {
		exprs = tup.Exprs
	}
	bad := false
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, e := it.Element()
		pos := start
		if exprs != nil {
			pos = exprs[i].Range().Start
		}
		if e.IsNull() || e.Type() != cty.String {
			what := "null"
			if !e.IsNull() {
				what = typeName(e.Type())
			}
			ps.at(pos, "%s in %s must be a list of strings; item %d is %s", key, where, i+1, what)
			bad = true
			continue
		}
		items = append(items, item{s: e.AsString(), pos: pos, n: i + 1})
	}
	if bad {
		return nil, false
	}
	return items, true
}

// cleanItem trims an item and reports, at its position, when it is empty
// or holds a control character. what describes a good item.
func (ps *parser) cleanItem(it item, key, where, what string) (string, bool) {
	s := strings.TrimSpace(it.s)
	switch {
	case s == "":
		ps.at(it.pos, "%s in %s: item %d is empty; give %s", key, where, it.n, what)
		return "", false
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		ps.at(it.pos, "%s in %s: item %d contains a control character; give %s", key, where, it.n, what)
		return "", false
	}
	return s, true
}

// dedupe appends s to out unless it is there; seen tracks out.
func dedupe(out []string, seen map[string]bool, s string) []string {
	if seen[s] {
		return out
	}
	seen[s] = true
	return append(out, s)
}

// names parses a list of group display names or object IDs.
func (ps *parser) names(attrs map[string]*hclsyntax.Attribute, key, where, what string) []string {
	items, _ := ps.list(attrs, key, where)
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if s, ok := ps.cleanItem(it, key, where, what); ok {
			out = dedupe(out, seen, s)
		}
	}
	return out
}

// domains parses a list of mail domains.
func (ps *parser) domains(attrs map[string]*hclsyntax.Attribute, key, where string) []string {
	items, _ := ps.list(attrs, key, where)
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		s, ok := ps.cleanItem(it, key, where, `a domain such as "contoso.com"`)
		if !ok {
			continue
		}
		d := strings.ToLower(strings.TrimPrefix(s, "@"))
		if !isDomain(d) {
			ps.at(it.pos, "%s in %s: %q is not a domain name; give one such as \"contoso.com\" (non-ASCII domains in their xn-- form)", key, where, it.s)
			continue
		}
		out = dedupe(out, seen, d)
	}
	return out
}

// users parses a list of email addresses or object IDs.
func (ps *parser) users(attrs map[string]*hclsyntax.Attribute, key, where string) []string {
	const what = `an email address or a user's object ID`
	items, _ := ps.list(attrs, key, where)
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		s, ok := ps.cleanItem(it, key, where, what)
		if !ok {
			continue
		}
		u := strings.ToLower(s)
		if !isEmail(u) && !isGUID(u) {
			ps.at(it.pos, "%s in %s: %q is neither an email address nor an object ID (a GUID such as \"00000000-0000-0000-0000-000000000000\")", key, where, it.s)
			continue
		}
		out = dedupe(out, seen, u)
	}
	return out
}

// tags parses the tags list.
func (ps *parser) tags(attrs map[string]*hclsyntax.Attribute, where string) []string {
	const key = "tags"
	items, _ := ps.list(attrs, key, where)
	var out []string
	seen := map[string]bool{}
	if len(items) > events.MaxJobTags {
		ps.at(attrs[key].Expr.Range().Start, "%s in %s lists %d tags; give at most %d (a recipient holds at most %d)",
			key, where, len(items), events.MaxJobTags, events.MaxRecipientTags)
		return nil
	}
	for _, it := range items {
		// The rule of one-time tags (events.CheckTag): no control, bidi,
		// line-break or invisible character, 1 to 64 characters.
		s, err := events.CheckTag(it.s)
		if err != nil {
			ps.at(it.pos, "%s in %s: item %d %v", key, where, it.n, err)
			continue
		}
		out = dedupe(out, seen, s)
	}
	return out
}

// groupTypes parses group_types into im.GroupTypes.
func (ps *parser) groupTypes(attrs map[string]*hclsyntax.Attribute, where string, im *Import) {
	const key = "group_types"
	allowed := groupTypes()
	items, set := ps.list(attrs, key, where)
	if !set {
		return
	}
	if len(items) == 0 {
		ps.at(attrs[key].Expr.Range().Start, "%s in %s is empty; list at least one of %s, or remove the line for the default [\"unified\"]", key, where, strings.Join(allowed, ", "))
		return
	}
	var out []string
	first := map[string]int{}
	bad := false
	for _, it := range items {
		switch {
		case !contains(allowed, it.s):
			ps.at(it.pos, "%s in %s: unknown group type %q; allowed: %s", key, where, it.s, strings.Join(allowed, ", "))
			bad = true
		case first[it.s] > 0:
			ps.at(it.pos, "%s in %s lists %q twice (items %d and %d)", key, where, it.s, first[it.s], it.n)
			bad = true
		default:
			first[it.s] = it.n
			out = append(out, it.s)
		}
	}
	if !bad {
		im.GroupTypes, im.GroupTypesSet = out, true
	}
}

// WithPluginGroupKinds returns im with the group kinds a plugin syncs by
// default (connector.v1 DescribeResponse.default_group_kinds) when the
// block did not write group_types: a directory without Microsoft 365
// groups (Active Directory) has security and distribution groups. Kinds
// the configuration does not know are ignored, and so is an empty list
// (a plugin built before defaults): the default stays ["unified"].
func (im Import) WithPluginGroupKinds(kinds []string) Import {
	if im.GroupTypesSet {
		return im
	}
	var out []string
	for _, k := range kinds {
		if contains(groupTypes(), k) && !contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) > 0 {
		im.GroupTypes = out
	}
	return im
}

// maxRemovals parses max_removals: a whole number, or a string ParseLimit
// accepts.
func (ps *parser) maxRemovals(attrs map[string]*hclsyntax.Attribute, where string, im *Import) {
	const key = "max_removals"
	a := attrs[key]
	if a == nil {
		return
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok || v.IsNull() {
		return
	}
	pos := a.Expr.Range().Start
	switch v.Type() {
	case cty.Number:
		n, whole := wholeNumber(v)
		if !whole || n < 0 || n > int64(maxInt()) {
			ps.at(pos, "%s in %s must be a count (a whole number, 0 or more, e.g. 25) or a percentage in quotes (e.g. \"10%%\"), got %s", key, where, v.AsBigFloat().Text('g', -1))
			return
		}
		im.MaxRemovals = Limit{Count: int(n), Set: true}
	case cty.String:
		l, err := ParseLimit(v.AsString())
		if err != nil {
			ps.at(pos, "%s in %s: %v", key, where, err)
			return
		}
		im.MaxRemovals = l
	default:
		ps.at(pos, "%s in %s must be a count (e.g. 25) or a percentage in quotes (e.g. \"10%%\"), got %s", key, where, typeName(v.Type()))
	}
}

// maxInt is the largest int.
func maxInt() int { return int(^uint(0) >> 1) }

// isDomain reports whether s is a DNS name of at least two labels, each of
// ASCII letters, digits and inner hyphens.
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// isEmail reports whether s looks like local@domain (lower-case).
func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && !strings.ContainsAny(local, " \t\"<>()[]\\,;:@") && isDomain(domain)
}

// isGUID reports whether s is a lower-case GUID in its 8-4-4-4-12 form.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// mailboxes parses exclude_mailboxes.
func (ps *parser) mailboxes(attrs map[string]*hclsyntax.Attribute, where string, im *Import) {
	const key = "exclude_mailboxes"
	items, set := ps.list(attrs, key, where)
	if !set {
		return
	}
	allowed := mailboxPurposes()
	out := []string{}
	seen := map[string]bool{}
	for _, it := range items {
		s, ok := ps.cleanItem(it, key, where, "a mailbox purpose")
		if !ok {
			continue
		}
		if !contains(allowed, strings.ToLower(s)) {
			ps.at(it.pos, "%s in %s: %q is not a mailbox purpose; give any of %s, or [] to exclude none", key, where, it.s, strings.Join(allowed, ", "))
			continue
		}
		out = dedupe(out, seen, strings.ToLower(s))
	}
	im.ExcludeMailboxes = out
}

// attributeFieldRE is a recipient attribute's name: what a platform's
// field is called, safe as a JSON key and a CSV header.
var attributeFieldRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// attributesBlock parses the import block's attributes blocks: each key a
// recipient attribute, each value the directory attribute it carries.
func (ps *parser) attributesBlock(body *hclsyntax.Body, where string, im *Import) {
	names := attributeNames()
	for _, b := range body.Blocks {
		if b.Type != "attributes" {
			continue
		}
		bw := "attributes block in " + where
		if len(b.Labels) > 0 {
			ps.at(b.LabelRanges[0].Start, "the %s takes no label; write attributes { site = \"officeLocation\" }", bw)
			continue
		}
		if im.Attributes != nil {
			ps.at(b.TypeRange.Start, "%s has a second attributes block; put every mapping in one", where)
			continue
		}
		im.Attributes = map[string]string{}
		for _, b := range b.Body.Blocks {
			ps.at(b.TypeRange.Start, "unexpected block %q in the %s; it takes only keys, e.g. site = \"officeLocation\"", b.Type, bw)
		}
		for _, a := range sortedAttrs(b.Body) {
			if !attributeFieldRE.MatchString(a.Name) {
				ps.at(a.NameRange.Start, "%q in the %s is not a field name: use letters, digits and _, starting with a letter, at most 64", a.Name, bw)
				continue
			}
			v, ok := ps.literal(a.Expr, "", "")
			if !ok || v.IsNull() {
				continue
			}
			if v.Type() != cty.String {
				ps.at(a.Expr.Range().Start, "%s in the %s must be a directory attribute's name as a string, e.g. \"officeLocation\", got %s", a.Name, bw, typeName(v.Type()))
				continue
			}
			src := strings.TrimSpace(v.AsString())
			canonical := canonicalAttribute(src)
			if canonical == "" {
				ps.at(a.Expr.Range().Start, "%s in the %s: %q is not a directory attribute dirsync reads; give one of %s", a.Name, bw, src, strings.Join(names, ", "))
				continue
			}
			im.Attributes[a.Name] = canonical
		}
		if len(im.Attributes) > MaxAttributes {
			ps.at(b.TypeRange.Start, "the %s maps %d attributes; map at most %d", bw, len(im.Attributes), MaxAttributes)
		}
	}
}

// canonicalAttribute returns the directory attribute named name in any
// case, or "".
func canonicalAttribute(name string) string {
	for _, n := range attributeNames() {
		if strings.EqualFold(n, strings.TrimSpace(name)) {
			return n
		}
	}
	return ""
}

// filterEntry is one attribute of exclude_filter as written.
type filterEntry struct {
	name         string
	namePos, pos hcl.Pos
	value        cty.Value
	valueExprs   []hclsyntax.Expression // the items of a [ … ] value, else nil
}

// excludeFilter parses exclude_filter: an object mapping directory
// attributes to a pattern or a list of patterns.
func (ps *parser) excludeFilter(attrs map[string]*hclsyntax.Attribute, where string, im *Import) {
	const key = "exclude_filter"
	a := attrs[key]
	if a == nil {
		return
	}
	v, ok := ps.literal(a.Expr, "", "")
	if !ok || v.IsNull() {
		return
	}
	start := a.Expr.Range().Start
	if t := v.Type(); !t.IsObjectType() && !t.IsMapType() {
		ps.at(start, "%s in %s must be an object of directory attributes and value patterns, e.g. { employeeType = \"Resource\", officeLocation = [\"Conference*\", \"*Room\"] }, got %s",
			key, where, typeName(t))
		return
	}
	var entries []filterEntry
	if obj, isObj := a.Expr.(*hclsyntax.ObjectConsExpr); isObj {
		// The items as written, each with its position; the whole
		// evaluated, so each part does.
		for _, it := range obj.Items {
			k, _ := it.KeyExpr.Value(nil)
			val, _ := it.ValueExpr.Value(nil)
			if k.IsNull() || k.Type() != cty.String {
				continue // hcl refuses such a key before this
			}
			e := filterEntry{name: k.AsString(), namePos: it.KeyExpr.Range().Start, pos: it.ValueExpr.Range().Start, value: val}
			if tup, isTuple := it.ValueExpr.(*hclsyntax.TupleConsExpr); isTuple && len(tup.Exprs) == val.LengthInt() {
				e.valueExprs = tup.Exprs
			}
			entries = append(entries, e)
		}
	} else {
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			entries = append(entries, filterEntry{name: k.AsString(), namePos: start, pos: start, value: val})
		}
	}
	out := map[string][]string{}
	total := 0
	for _, e := range entries {
		attr := canonicalAttribute(e.name)
		if attr == "" {
			ps.at(e.namePos, "%s in %s: %q is not a directory attribute dirsync reads; give one of %s", key, where, e.name, strings.Join(attributeNames(), ", "))
			continue
		}
		patterns, ok := ps.filterPatterns(e, key, where)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, p := range out[attr] {
			seen[p] = true
		}
		for _, p := range patterns {
			out[attr] = dedupe(out[attr], seen, p)
		}
		total += len(patterns)
	}
	if total > MaxExcludePatterns {
		ps.at(start, "%s in %s holds %d patterns; give at most %d", key, where, total, MaxExcludePatterns)
		return
	}
	if len(out) > 0 {
		im.ExcludeFilter = out
	}
}

// filterPatterns returns the lower-cased patterns of one exclude_filter
// attribute: a string or a non-empty list of strings, each non-empty and
// without control characters.
func (ps *parser) filterPatterns(e filterEntry, key, where string) ([]string, bool) {
	const what = `a value, with * for any characters, e.g. "Conference*"`
	t := e.value.Type()
	var items []item
	switch {
	case e.value.IsNull():
		ps.at(e.pos, "%s in %s: %s must be a pattern or a list of patterns, got null", key, where, e.name)
		return nil, false
	case t == cty.String:
		items = []item{{s: e.value.AsString(), pos: e.pos, n: 1}}
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		if e.value.LengthInt() == 0 {
			ps.at(e.pos, "%s in %s: %s lists no pattern; give at least one, or remove it", key, where, e.name)
			return nil, false
		}
		i := 0
		for it := e.value.ElementIterator(); it.Next(); i++ {
			_, el := it.Element()
			pos := e.pos
			if e.valueExprs != nil {
				pos = e.valueExprs[i].Range().Start
			}
			if el.IsNull() || el.Type() != cty.String {
				got := "null"
				if !el.IsNull() {
					got = typeName(el.Type())
				}
				ps.at(pos, "%s in %s: %s must be a list of strings; item %d is %s", key, where, e.name, i+1, got)
				return nil, false
			}
			items = append(items, item{s: el.AsString(), pos: pos, n: i + 1})
		}
	default:
		ps.at(e.pos, "%s in %s: %s must be a pattern (a string) or a list of patterns, got %s", key, where, e.name, typeName(t))
		return nil, false
	}
	var out []string
	good := true
	for _, it := range items {
		s := strings.TrimSpace(it.s)
		switch {
		case s == "":
			ps.at(it.pos, "%s in %s: pattern %d of %s is empty; give %s", key, where, it.n, e.name, what)
			good = false
		case strings.IndexFunc(s, unicode.IsControl) >= 0:
			ps.at(it.pos, "%s in %s: pattern %d of %s contains a control character; give %s", key, where, it.n, e.name, what)
			good = false
		default:
			out = append(out, strings.ToLower(s))
		}
	}
	return out, good
}
