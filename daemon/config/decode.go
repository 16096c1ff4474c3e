package config

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// DecodeConnectorConfig checks a connector's config body against the
// plugin's schema (from Describe) and returns it as a JSON object, plus the
// names (sorted) of the sensitive keys present. filename names the file in
// messages; "" uses the file the body was parsed from. The error, if any, is
// an Errors listing every problem; no message quotes a value.
func DecodeConnectorConfig(c *Connector, fields []*connectorv1.ConfigField, filename string) (json []byte, sensitive []string, err error) {
	if filename == "" {
		filename = c.Range.Filename
	}
	p := &problems{file: filename}
	where := fmt.Sprintf("config of connector %q", c.Name)

	byName := map[string]*connectorv1.ConfigField{}
	allowed := make([]string, 0, len(fields))
	for _, f := range fields {
		if f == nil || f.GetName() == "" {
			continue
		}
		if _, dup := byName[f.GetName()]; !dup {
			allowed = append(allowed, f.GetName())
		}
		byName[f.GetName()] = f
	}
	sort.Strings(allowed)
	allowedText := strings.Join(allowed, ", ")
	if allowedText == "" {
		allowedText = "none (the plugin takes no config)"
	}

	// Where a missing key is reported: the config block, or the connector.
	start := c.Range.Start
	var attrs []*hcl.Attribute
	switch body := c.Config.(type) {
	case nil:
	case *hclsyntax.Body:
		if body.SrcRange.Filename != "" {
			start = body.SrcRange.Start
		}
		for _, a := range sortedAttrs(body) {
			attrs = append(attrs, a.AsHCLAttribute())
		}
		for _, b := range body.Blocks {
			p.at(b.TypeRange.Start, "unexpected block %q in %s; config takes keys only (key = value)", b.Type, where)
		}
	default:
		all, ds := body.JustAttributes()
		p.diags(ds, "config")
		for _, a := range all {
			attrs = append(attrs, a)
		}
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].Range.Start.Byte < attrs[j].Range.Start.Byte })
	}

	values := map[string]any{}
	present := map[string]hcl.Pos{} // set (not null), valid or not

	for _, a := range attrs {
		f := byName[a.Name]
		if f == nil {
			p.at(a.NameRange.Start, "unknown key %q in %s; allowed: %s", a.Name, where, allowedText)
			continue
		}
		secret := ""
		if f.GetSensitive() {
			secret = a.Name
		}
		v, ok := p.literal(a.Expr, a.Name, secret)
		if ok && v.IsNull() {
			continue // null means unset
		}
		present[a.Name] = a.Expr.Range().Start
		if !ok {
			continue
		}
		val, want := convert(v, f.GetType())
		if want != "" {
			p.at(a.Expr.Range().Start, "%s in %s must be %s, got %s", a.Name, where, want, typeName(v.Type()))
			continue
		}
		values[a.Name] = val
	}

	// Required keys, then one-of groups, in schema order.
	var groups []string
	members := map[string][]*connectorv1.ConfigField{}
	for _, f := range fields {
		if f == nil || f.GetName() == "" {
			continue
		}
		if g := f.GetOneOfGroup(); g != "" {
			if _, seen := members[g]; !seen {
				groups = append(groups, g)
			}
			members[g] = append(members[g], f)
			continue
		}
		if _, set := present[f.GetName()]; f.GetRequired() && !set {
			p.at(start, "missing required key %q in %s", f.GetName(), where)
		}
	}
	for _, g := range groups {
		var names, set []string
		for _, f := range members[g] {
			names = append(names, f.GetName())
			if _, ok := present[f.GetName()]; ok {
				set = append(set, f.GetName())
			}
		}
		switch {
		case len(set) == 0:
			p.at(start, "%s needs exactly one of %s; none is set", where, orList(names))
		case len(set) > 1:
			p.at(present[set[1]], "%s are alternatives in %s: set exactly one", andList(set), where)
		}
	}
	if err := p.err(); err != nil {
		return nil, nil, err
	}

	for name := range values {
		if byName[name].GetSensitive() {
			sensitive = append(sensitive, name)
		}
	}
	sort.Strings(sensitive)
	out, err := marshalJSON(values)
	if err != nil {
		return nil, nil, fmt.Errorf("config: encoding config of connector %q: %w", c.Name, err)
	}
	return out, sensitive, nil
}

// convert returns v as the Go value for JSON, or what was wanted when v
// has the wrong type.
func convert(v cty.Value, t connectorv1.ConfigField_Type) (any, string) {
	switch t {
	case connectorv1.ConfigField_TYPE_STRING:
		if v.Type() == cty.String {
			return v.AsString(), ""
		}
		return nil, "a string"
	case connectorv1.ConfigField_TYPE_BOOL:
		if v.Type() == cty.Bool {
			return v.True(), ""
		}
		return nil, "a bool (true or false)"
	case connectorv1.ConfigField_TYPE_NUMBER:
		if v.Type() == cty.Number {
			bf := v.AsBigFloat()
			if bf.IsInf() {
				return nil, "a finite number"
			}
			if i, acc := bf.Int64(); bf.IsInt() && acc == big.Exact {
				return json.Number(strconv.FormatInt(i, 10)), ""
			}
			f, _ := bf.Float64()
			if math.IsInf(f, 0) {
				return nil, "a number in range"
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), ""
		}
		return nil, "a number"
	case connectorv1.ConfigField_TYPE_STRING_LIST:
		if list, ok := stringList(v); ok {
			return list, ""
		}
		return nil, "a list of strings"
	default:
		return nil, "a value of a type the plugin declares (its schema gives this key no type; fix the plugin)"
	}
}

// orList renders a, b or c as "a or b" / "a, b or c".
func orList(names []string) string { return joinLast(names, " or ") }

// andList renders names as "a and b" / "a, b and c".
func andList(names []string) string { return joinLast(names, " and ") }

func joinLast(names []string, last string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

func marshalJSON(values map[string]any) ([]byte, error) {
	return json.Marshal(values)
}
