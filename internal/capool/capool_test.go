package capool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"ca.pem":    string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"key.pem":   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})),
		"bad.pem":   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})),
		"empty.pem": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		file, err string
	}{
		{"ca.pem", ""},
		{"key.pem", "holds no PEM certificate"},
		{"empty.pem", "holds no PEM certificate"},
		{"bad.pem", "does not parse"},
		{"missing.pem", "cannot read the CA file"},
	} {
		certs, err := Load(filepath.Join(dir, tt.file))
		switch {
		case tt.err == "" && (err != nil || len(certs) != 1):
			t.Errorf("%s: %d certificates, %v", tt.file, len(certs), err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: %v; want an error saying %q", tt.file, err, tt.err)
		}
	}
	if pool, err := WithSystem(filepath.Join(dir, "ca.pem")); err != nil || pool == nil {
		t.Errorf("WithSystem: %v", err)
	}
}
