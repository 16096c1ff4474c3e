package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// schema is shaped like the Azure AD connector's.
var schema = []*connectorv1.ConfigField{
	{Name: "tenant", Type: connectorv1.ConfigField_TYPE_STRING, Required: true},
	{Name: "client_id", Type: connectorv1.ConfigField_TYPE_STRING, Required: true},
	{Name: "client_secret", Type: connectorv1.ConfigField_TYPE_STRING, Sensitive: true, OneOfGroup: "secret"},
	{Name: "client_secret_file", Type: connectorv1.ConfigField_TYPE_STRING, OneOfGroup: "secret"},
	{Name: "authority_host", Type: connectorv1.ConfigField_TYPE_STRING},
	{Name: "ca_file", Type: connectorv1.ConfigField_TYPE_STRING},
	{Name: "include_guests", Type: connectorv1.ConfigField_TYPE_BOOL},
	{Name: "page_size", Type: connectorv1.ConfigField_TYPE_NUMBER},
	{Name: "ratio", Type: connectorv1.ConfigField_TYPE_NUMBER},
	{Name: "groups", Type: connectorv1.ConfigField_TYPE_STRING_LIST},
}

const allowedKeys = "authority_host, ca_file, client_id, client_secret, client_secret_file, groups, include_guests, page_size, ratio, tenant"

// connectorFrom parses a file holding one plugin and the given connector
// block and returns the connector.
func connectorFrom(t *testing.T, block string) *Connector {
	t.Helper()
	src := "plugin \"azuread\" {\n  path = \"x\"\n}\n" + block
	c, err := Parse([]byte(src), "plugins.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return c.Connectors[0]
}

func TestDecodeConnectorConfig(t *testing.T) {
	cn := connectorFrom(t, `connector "demo" {
  plugin = "azuread"
  config {
    tenant         = "contoso.onmicrosoft.com"
    client_id      = "app-id"
    client_secret  = "s3cr3t-value"
    include_guests = false
    page_size      = 999
    ratio          = 0.25
    groups         = ["Sales", "R&D"]
    ca_file        = "./ca.pem"
  }
}
`)
	got, sensitive, err := DecodeConnectorConfig(cn, schema, "plugins.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// Relative paths inside config {} stay as written: the plugin gets
	// base_dir.
	want := `{"ca_file":"./ca.pem","client_id":"app-id","client_secret":"s3cr3t-value","groups":["Sales","R\u0026D"],"include_guests":false,"page_size":999,"ratio":0.25,"tenant":"contoso.onmicrosoft.com"}`
	if string(got) != want {
		t.Errorf("json:\n%s\nwant:\n%s", got, want)
	}
	if !slices.Equal(sensitive, []string{"client_secret"}) {
		t.Errorf("sensitive = %v", sensitive)
	}

	// The secret in a file: no sensitive key present.
	cn = connectorFrom(t, "connector \"demo\" {\n  plugin = \"azuread\"\n  config {\n    tenant = \"t\"\n    client_id = \"c\"\n    client_secret_file = \"./secret\"\n    groups = []\n  }\n}\n")
	got, sensitive, err = DecodeConnectorConfig(cn, schema, "plugins.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"client_id":"c","client_secret_file":"./secret","groups":[],"tenant":"t"}`; string(got) != want {
		t.Errorf("json = %s; want %s", got, want)
	}
	if len(sensitive) != 0 {
		t.Errorf("sensitive = %v; want none", sensitive)
	}
}

func TestDecodeConnectorConfigErrors(t *testing.T) {
	tests := []struct {
		name, block, want string
	}{
		{
			name: "unknown key",
			block: `connector "demo" {
  plugin = "azuread"
  config {
    tenent             = "contoso.onmicrosoft.com"
    client_id          = "c"
    client_secret_file = "f"
  }
}
`,
			want: `plugins.hcl:6:10: missing required key "tenant" in config of connector "demo"` + "\n" +
				`plugins.hcl:7:5: unknown key "tenent" in config of connector "demo"; allowed: ` + allowedKeys,
		},
		{
			name: "wrong types",
			block: `connector "demo" {
  plugin = "azuread"
  config {
    tenant             = "t"
    client_id          = 12
    client_secret_file = "f"
    include_guests     = "yes"
    page_size          = "100"
    groups             = "Sales"
    authority_host     = true
    ratio              = [1]
  }
}
`,
			want: `plugins.hcl:8:26: client_id in config of connector "demo" must be a string, got a number` + "\n" +
				`plugins.hcl:10:26: include_guests in config of connector "demo" must be a bool (true or false), got a string` + "\n" +
				`plugins.hcl:11:26: page_size in config of connector "demo" must be a number, got a string` + "\n" +
				`plugins.hcl:12:26: groups in config of connector "demo" must be a list of strings, got a string` + "\n" +
				`plugins.hcl:13:26: authority_host in config of connector "demo" must be a string, got a bool` + "\n" +
				`plugins.hcl:14:26: ratio in config of connector "demo" must be a number, got a list`,
		},
		{
			name:  "list holding a number",
			block: "connector \"demo\" {\n  plugin = \"azuread\"\n  config {\n    tenant = \"t\"\n    client_id = \"c\"\n    client_secret_file = \"f\"\n    groups = [\"a\", 2]\n  }\n}\n",
			want:  `plugins.hcl:10:14: groups in config of connector "demo" must be a list of strings, got a list`,
		},
		{
			name:  "missing required, no config block",
			block: "connector \"demo\" {\n  plugin = \"azuread\"\n}\n",
			want: `plugins.hcl:4:1: missing required key "tenant" in config of connector "demo"` + "\n" +
				`plugins.hcl:4:1: missing required key "client_id" in config of connector "demo"` + "\n" +
				`plugins.hcl:4:1: config of connector "demo" needs exactly one of client_secret or client_secret_file; none is set`,
		},
		{
			name: "both of a one-of group",
			block: `connector "demo" {
  plugin = "azuread"
  config {
    tenant             = "t"
    client_id          = "c"
    client_secret      = "s3cr3t-value"
    client_secret_file = "./secret"
  }
}
`,
			want: `plugins.hcl:10:26: client_secret and client_secret_file are alternatives in config of connector "demo": set exactly one`,
		},
		{
			name:  "null counts as unset",
			block: "connector \"demo\" {\n  plugin = \"azuread\"\n  config {\n    tenant = null\n    client_id = \"c\"\n    client_secret_file = \"f\"\n  }\n}\n",
			want:  `plugins.hcl:6:10: missing required key "tenant" in config of connector "demo"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn := connectorFrom(t, tt.block)
			_, _, err := DecodeConnectorConfig(cn, schema, "plugins.hcl")
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes a secret: %s", err)
			}
		})
	}
}

// TestDecodeNeverEchoesSecrets feeds a sensitive key every kind of wrong
// value and checks no message quotes it.
func TestDecodeNeverEchoesSecrets(t *testing.T) {
	const secret = "Xy9-s3cr3t-9yX"
	for name, value := range map[string]string{
		"number":       "123456789",
		"list":         `["` + secret + `"]`,
		"object":       `{ v = "` + secret + `" }`,
		"bad operator": `"` + secret + `" + 1`,
		"bad template": `"` + secret + `${[1]}"`,
		"bad index":    `["` + secret + `"][5]`,
	} {
		t.Run(name, func(t *testing.T) {
			cn := connectorFrom(t, "connector \"demo\" {\n  plugin = \"azuread\"\n  config {\n    tenant = \"t\"\n    client_id = \"c\"\n    client_secret = "+value+"\n  }\n}\n")
			_, _, err := DecodeConnectorConfig(cn, schema, "plugins.hcl")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "plugins.hcl:9:") || strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("error %q lacks the position of client_secret", err)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "123456789") {
				t.Errorf("error quotes the secret: %s", err)
			}
			t.Log(err)
		})
	}
}

// TestDecodeFilename checks messages use the filename argument, and the
// parsed file's name when it is empty.
func TestDecodeFilename(t *testing.T) {
	cn := connectorFrom(t, "connector \"demo\" {\n  plugin = \"azuread\"\n  config {\n    bogus = 1\n  }\n}\n")
	_, _, err := DecodeConnectorConfig(cn, []*connectorv1.ConfigField{{Name: "a", Type: connectorv1.ConfigField_TYPE_STRING}}, "/etc/dirsync/plugins.hcl")
	want := `/etc/dirsync/plugins.hcl:7:5: unknown key "bogus" in config of connector "demo"; allowed: a`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v; want %s", err, want)
	}
	_, _, err = DecodeConnectorConfig(cn, nil, "")
	want = `plugins.hcl:7:5: unknown key "bogus" in config of connector "demo"; allowed: none (the plugin takes no config)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v; want %s", err, want)
	}
	var cfgErr *Error
	if !errors.As(err, &cfgErr) || cfgErr.Pos.Line != 7 || cfgErr.Pos.Column != 5 {
		t.Errorf("errors.As = %+v", cfgErr)
	}
}

// TestDecodeNilConfig checks a Connector built by hand with no body.
func TestDecodeNilConfig(t *testing.T) {
	got, sensitive, err := DecodeConnectorConfig(&Connector{Name: "x"}, []*connectorv1.ConfigField{{Name: "a", Type: connectorv1.ConfigField_TYPE_STRING}}, "f.hcl")
	if err != nil || string(got) != "{}" || len(sensitive) != 0 {
		t.Errorf("got %s, %v, %v; want {}, none, nil", got, sensitive, err)
	}
}
