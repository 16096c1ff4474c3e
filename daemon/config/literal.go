package config

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// checkLiteral reports the variables and function calls in expr: this cut
// of plugins.hcl accepts literal values only. It returns false when expr
// uses any. In a connector's config (key set), the name referred to is not
// quoted: an unquoted secret parses as a variable name.
func (p *problems) checkLiteral(expr hcl.Expression, key string) bool {
	ok := true
	if sx, isSyntax := expr.(hclsyntax.Expression); isSyntax {
		_ = hclsyntax.VisitAll(sx, func(n hclsyntax.Node) hcl.Diagnostics {
			if call, isCall := n.(*hclsyntax.FunctionCallExpr); isCall {
				if key != "" {
					p.at(call.NameRange.Start, "%s: function calls are not supported in plugins.hcl; write the value itself", key)
				} else {
					p.at(call.NameRange.Start, "function calls are not supported in plugins.hcl (found %s()); write the value itself", call.Name)
				}
				ok = false
			}
			return nil
		})
	}
	for _, t := range expr.Variables() {
		if key != "" {
			p.at(t.SourceRange().Start, "%s: variables are not supported in plugins.hcl; write the value itself (strings go in double quotes)", key)
		} else {
			p.at(t.SourceRange().Start, "variables are not supported in plugins.hcl (found %s); write the value itself, as a quoted string, number, bool or list", traversalName(t))
		}
		ok = false
	}
	return ok
}

// literal evaluates expr, which must be a literal value. key names the
// config key expr belongs to ("" outside config {}). A non-empty secret
// names the sensitive key expr belongs to: hcl's diagnostic details, which
// could describe the value, are then withheld.
func (p *problems) literal(expr hcl.Expression, key, secret string) (cty.Value, bool) {
	if !p.checkLiteral(expr, key) {
		return cty.NilVal, false
	}
	v, ds := expr.Value(nil)
	if ds.HasErrors() {
		p.diags(ds, secret)
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		p.at(expr.Range().Start, "value is not known; write the value itself")
		return cty.NilVal, false
	}
	return v, true
}

// traversalName renders a variable reference such as var.tenant.
func traversalName(t hcl.Traversal) string {
	var b strings.Builder
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		default:
			b.WriteString("[…]")
		}
	}
	return b.String()
}

// typeName names a value's type for error messages, never its value.
func typeName(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	default:
		return t.FriendlyName()
	}
}

// stringList returns v as a list of strings, or false when it is anything
// else (a list holding a non-string included).
func stringList(v cty.Value) ([]string, bool) {
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		return nil, false
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsNull() || e.Type() != cty.String {
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

// sortedAttrs returns a body's attributes in file order.
func sortedAttrs(b *hclsyntax.Body) []*hclsyntax.Attribute {
	out := make([]*hclsyntax.Attribute, 0, len(b.Attributes))
	for _, a := range b.Attributes {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SrcRange.Start.Byte < out[j].SrcRange.Start.Byte })
	return out
}
