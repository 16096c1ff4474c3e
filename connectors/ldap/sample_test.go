package ldap

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// uncommentSample turns sample.hcl into the HCL it documents: the
// commented connector block with its commented optional keys enabled
// ("# key = ..." lines) and its explanations ("## ...") dropped.
func uncommentSample(t *testing.T, sample string) string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(sample, "\n") {
		if strings.HasPrefix(line, `# connector "`) {
			in = true
		}
		if !in {
			continue
		}
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "##"):
			continue
		case strings.HasPrefix(trimmed, "# "):
			line = strings.Replace(line, "# ", "", 1)
		}
		out = append(out, line)
	}
	if !in {
		t.Fatal(`sample.hcl has no "# connector" block`)
	}
	return strings.Join(out, "\n")
}

// TestSampleMatchesDescribe holds sample.hcl and Describe together: the
// sample's config block names exactly the keys of ConfigFields, each with
// a value of the key's type.
func TestSampleMatchesDescribe(t *testing.T) {
	text := uncommentSample(t, New(nil).SampleConfig())
	f, diags := hclsyntax.ParseConfig([]byte(text), "sample.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("sample.hcl's block does not parse: %v\n%s", diags, text)
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) != 1 || body.Blocks[0].Type != "connector" {
		t.Fatalf("want one connector block, got %d blocks", len(body.Blocks))
	}
	conn := body.Blocks[0].Body
	if v, _ := conn.Attributes["plugin"].Expr.Value(nil); v.Type() != cty.String || v.AsString() != Name {
		t.Errorf("plugin = %#v, want %q", v, Name)
	}
	var config *hclsyntax.Body
	for _, b := range conn.Blocks {
		if b.Type == "config" {
			config = b.Body
		}
	}
	if config == nil {
		t.Fatal("no config block in the sample")
	}

	d, err := New(nil).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]connectorv1.ConfigField_Type{}
	var want []string
	for _, f := range d.GetConfigFields() {
		types[f.GetName()] = f.GetType()
		want = append(want, f.GetName())
	}
	var got []string
	for name, a := range config.Attributes {
		got = append(got, name)
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Errorf("%s: %v", name, diags)
			continue
		}
		wantType := map[connectorv1.ConfigField_Type]cty.Type{
			connectorv1.ConfigField_TYPE_STRING: cty.String,
			connectorv1.ConfigField_TYPE_BOOL:   cty.Bool,
			connectorv1.ConfigField_TYPE_NUMBER: cty.Number,
		}[types[name]]
		if wantType != cty.NilType && !v.Type().Equals(wantType) {
			t.Errorf("sample's %s is a %s, Describe says %v", name, v.Type().FriendlyName(), types[name])
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("sample.hcl keys\n %v\nDescribe's\n %v", got, want)
	}
}
