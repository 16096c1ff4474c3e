package azuread

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

const (
	testClientID = "6731de76-14a6-49ae-97bc-6eba6914391e"
	testTenantID = "0b0e7c0a-5a2e-4c7e-9a8f-0d1c2b3a4f5e"
)

// writeSelfSignedCA writes a PEM CA certificate to path.
func writeSelfSignedCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func rawConfig(t *testing.T, baseDir string, m map[string]any) *connectorv1.Config {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return &connectorv1.Config{Json: b, BaseDir: baseDir}
}

func TestValidateConfig(t *testing.T) {
	dir := t.TempDir()
	writeSelfSignedCA(t, filepath.Join(dir, "ca.pem"))
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("  s3cr3t-value~x \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notpem.pem"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := func() map[string]any {
		return map[string]any{
			"tenant":             "contoso.onmicrosoft.com",
			"client_id":          testClientID,
			"client_secret_file": "secret",
			"ca_file":            "ca.pem",
			"authority_host":     "https://login.microsoftonline.us/",
			"graph_url":          "https://graph.microsoft.us/v1.0/",
		}
	}
	with := func(k string, v any) map[string]any {
		m := valid()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}

	t.Run("valid", func(t *testing.T) {
		for name, m := range map[string]map[string]any{
			"full":        valid(),
			"guid tenant": with("tenant", testTenantID),
			"inline secret": func() map[string]any {
				m := with("client_secret_file", nil)
				m["client_secret"] = "abc8Q~xyz"
				return m
			}(),
			"defaults": {"tenant": "contoso.com", "client_id": testClientID, "client_secret": "x-secret-1"},
		} {
			problems, err := New(nil).ValidateConfig(context.Background(), rawConfig(t, dir, m))
			if err != nil || len(problems) != 0 {
				t.Errorf("%s: problems %v, err %v", name, problems, err)
			}
		}
		cfg, err := ParseConfig(rawConfig(t, dir, valid()))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.GraphURL != "https://graph.microsoft.us/v1.0" || cfg.AuthorityHost != "https://login.microsoftonline.us/" {
			t.Errorf("URLs not normalized: %q %q", cfg.GraphURL, cfg.AuthorityHost)
		}
		if cfg.Scope() != "https://graph.microsoft.us/.default" {
			t.Errorf("scope %q", cfg.Scope())
		}
		if cfg.CAFile != filepath.Join(dir, "ca.pem") {
			t.Errorf("ca_file not resolved against base_dir: %q", cfg.CAFile)
		}
		if s, err := cfg.ReadSecret(); err != nil || s != "s3cr3t-value~x" {
			t.Errorf("ReadSecret = %q, %v", s, err)
		}
		def, err := ParseConfig(rawConfig(t, dir, map[string]any{"tenant": "contoso.com", "client_id": testClientID, "client_secret": "x-secret-1"}))
		if err != nil {
			t.Fatal(err)
		}
		if def.RetryBudget != 10*time.Minute {
			t.Errorf("default retry budget %v", def.RetryBudget)
		}
		if c, err := ParseConfig(rawConfig(t, dir, with("retry_budget", " 90s "))); err != nil || c.RetryBudget != 90*time.Second {
			t.Errorf("retry_budget 90s: %v, %v", c, err)
		}
		if def.MaxResponseMB != 16 || def.maxResponseBytes() != 16<<20 {
			t.Errorf("default max_response_mb %d", def.MaxResponseMB)
		}
		for v, mb := range map[any]int{1: 1, 64: 64, 1024.0: 1024, nil: 16} {
			m := valid()
			m["max_response_mb"] = v // nil: JSON null, the default
			if c, err := ParseConfig(rawConfig(t, dir, m)); err != nil || c.MaxResponseMB != mb || c.maxResponseBytes() != int64(mb)<<20 {
				t.Errorf("max_response_mb %v: %+v, %v", v, c, err)
			}
		}
		if def.AuthorityHost != DefaultAuthorityHost || def.GraphURL != DefaultGraphURL || def.Scope() != "https://graph.microsoft.com/.default" {
			t.Errorf("defaults: %+v scope %q", def, def.Scope())
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v", def, def, def), "x-secret-1") {
			t.Error("printing a Config shows the secret")
		}
		if b, _ := json.Marshal(def); strings.Contains(string(b), "x-secret-1") {
			t.Error("JSON of a Config shows the secret")
		}
	})

	tests := []struct {
		name  string
		cfg   map[string]any
		field string
		msg   string // part of the message
	}{
		{"no tenant", with("tenant", nil), "tenant", "required"},
		{"tenant not a domain", with("tenant", "contoso"), "tenant", "neither a domain"},
		{"tenant with space", with("tenant", "contoso .com"), "tenant", "neither a domain"},
		{"tenant common", with("tenant", "common"), "tenant", "not a tenant"},
		{"no client_id", with("client_id", nil), "client_id", "required"},
		{"client_id not a GUID", with("client_id", "my-app"), "client_id", "GUID"},
		{"client_id not a string", with("client_id", 42), "client_id", "string"},
		{"no secret", with("client_secret_file", nil), "client_secret", "one of client_secret or client_secret_file is required"},
		{"both secrets", with("client_secret", "abc"), "client_secret", "only one"},
		{"blank secret", func() map[string]any {
			m := with("client_secret_file", nil)
			m["client_secret"] = "   "
			return m
		}(), "client_secret", "blank"},
		{"missing secret file", with("client_secret_file", "nope"), "client_secret_file", "cannot read"},
		{"empty secret file", with("client_secret_file", "empty"), "client_secret_file", "empty"},
		{"http authority", with("authority_host", "http://login.microsoftonline.com/"), "authority_host", "https"},
		{"relative authority", with("authority_host", "login.microsoftonline.com"), "authority_host", "https"},
		{"http graph", with("graph_url", "http://127.0.0.1:8080/v1.0"), "graph_url", "https"},
		{"graph with query", with("graph_url", "https://graph.microsoft.com/v1.0?x=1"), "graph_url", "query"},
		{"graph without host", with("graph_url", "https:///v1.0"), "graph_url", "no host"},
		{"missing ca file", with("ca_file", "missing.pem"), "ca_file", "cannot read"},
		{"ca file without certificates", with("ca_file", "notpem.pem"), "ca_file", "no PEM certificate"},
		{"unknown key", with("tenant_id", "x"), "tenant_id", "unknown key"},
		{"retry_budget not a duration", with("retry_budget", "10"), "retry_budget", "not a duration"},
		{"retry_budget too short", with("retry_budget", "100ms"), "retry_budget", "between 1s and 24h"},
		{"retry_budget negative", with("retry_budget", "-5m"), "retry_budget", "between"},
		{"retry_budget not a string", with("retry_budget", 600), "retry_budget", "string"},
		{"max_response_mb a string", with("max_response_mb", "16"), "max_response_mb", "without quotes"},
		{"max_response_mb zero", with("max_response_mb", 0), "max_response_mb", "from 1 to 1024"},
		{"max_response_mb too large", with("max_response_mb", 4096), "max_response_mb", "from 1 to 1024"},
		{"max_response_mb fraction", with("max_response_mb", 1.5), "max_response_mb", "whole number"},
		{"max_response_mb negative", with("max_response_mb", -16), "max_response_mb", "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems, err := New(nil).ValidateConfig(context.Background(), rawConfig(t, dir, tt.cfg))
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range problems {
				if p.GetField() == tt.field && strings.Contains(p.GetMessage(), tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem on %q containing %q, got %v", tt.field, tt.msg, problems)
			}
		})
	}

	t.Run("not JSON", func(t *testing.T) {
		problems, err := New(nil).ValidateConfig(context.Background(), &connectorv1.Config{Json: []byte("[1]")})
		if err != nil || len(problems) != 1 {
			t.Fatalf("problems %v, err %v", problems, err)
		}
	})
}

func TestDescribe(t *testing.T) {
	d, err := New(nil).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.GetName() != "azuread" || d.GetVersion() != "0.1.0" || d.GetDescription() == "" {
		t.Errorf("describe: %v", d)
	}
	fields := map[string]*connectorv1.ConfigField{}
	for _, f := range d.GetConfigFields() {
		fields[f.GetName()] = f
		want := connectorv1.ConfigField_TYPE_STRING
		if f.GetName() == KeyMaxResponseMB {
			want = connectorv1.ConfigField_TYPE_NUMBER // max_response_mb = 32, not "32"
		}
		if f.GetDescription() == "" || f.GetType() != want {
			t.Errorf("field %s: %v", f.GetName(), f)
		}
	}
	for _, k := range []string{"tenant", "client_id"} {
		if !fields[k].GetRequired() {
			t.Errorf("%s should be required", k)
		}
	}
	if !fields["client_secret"].GetSensitive() || fields["client_secret"].GetOneOfGroup() == "" ||
		fields["client_secret"].GetOneOfGroup() != fields["client_secret_file"].GetOneOfGroup() {
		t.Errorf("secret fields: %v %v", fields["client_secret"], fields["client_secret_file"])
	}
	if fields["authority_host"].GetDefaultValue() != DefaultAuthorityHost || fields["graph_url"].GetDefaultValue() != DefaultGraphURL {
		t.Error("defaults missing")
	}
	if f := fields[KeyRetryBudget]; f.GetDefaultValue() != "10m" || !strings.Contains(f.GetDescription(), "Retry-After") {
		t.Errorf("retry_budget field: %v", f)
	}
	if f := fields[KeyMaxResponseMB]; f.GetDefaultValue() != "16" || !strings.Contains(f.GetDescription(), "MiB") {
		t.Errorf("max_response_mb field: %v", f)
	}
	if len(fields) != 9 {
		t.Errorf("want 9 fields, got %d", len(fields))
	}
}
