// Package capool reads the CA certificates an admin names in a
// connector's ca_file: the connectors trust them besides the system's
// roots to verify their directory's server (graphsim's or an enterprise
// CA's certificate).
package capool

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Load reads a PEM file and returns its certificates; it fails when the
// file holds none, so that a key or an empty file named by mistake is
// said at once rather than as a failed handshake later.
func Load(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA file: %w", err)
	}
	var certs []*x509.Certificate
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s holds a certificate that does not parse: %w", path, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, errors.New(path + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return certs, nil
}

// WithSystem returns the system's trusted roots plus the certificates of
// path ("" for none).
func WithSystem(path string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if path == "" {
		return pool, nil
	}
	certs, err := Load(path)
	if err != nil {
		return nil, err
	}
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, nil
}
