// Package ldap is the LDAP directory connector, for on-premises Active
// Directory (and Samba AD) and OpenLDAP: it reads users, groups and their
// members with simple binds over ldaps://, StartTLS or plain ldap://,
// and serves them through the connector.v1 plugin contract.
//
// Where things are: the config and Describe (config.go), the flavors'
// defaults and their detection from the rootDSE (flavor.go), decoding
// entries into connector.v1 users and groups: GUIDs, disabled accounts,
// group kinds (decode.go), member ranges and DN keys (members.go),
// explaining LDAP errors to an admin (errors.go), the connection to the
// server (session.go), the connection test (testconnection.go), the full
// read with nested groups expanded (sync.go) and the incremental reads:
// syncrepl cookies for OpenLDAP, uSNChanged marks for Active Directory
// (incremental.go).
//
// It imports github.com/go-ldap/ldap/v3 as goldap, since this package is
// named ldap too.
package ldap

import (
	"context"
	_ "embed"
	"errors"

	"go.uber.org/zap"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Name and Version of the connector, as Describe reports them.
const (
	Name    = "ldap"
	Version = "0.1.0"
)

// sampleConfig is sample.hcl: a commented connector block listing every
// config key (Telegraf's embedded sample config).
//
//go:embed sample.hcl
var sampleConfig string

// Connector is the LDAP connector. It holds no state between calls; every
// call works from the config it is given.
type Connector struct {
	log *zap.Logger
}

var _ connector.Connector = (*Connector)(nil)

// New returns a Connector logging to log (nil: no logging).
func New(log *zap.Logger) *Connector {
	if log == nil {
		log = zap.NewNop()
	}
	return &Connector{log: log}
}

// SampleConfig returns a commented connector block for plugins.hcl that
// lists and explains every config key.
func (c *Connector) SampleConfig() string { return sampleConfig }

// Describe implements connector.Connector. An import policy without
// group_types syncs security and distribution groups, Active Directory's
// two kinds (mail-enabled security groups only when asked for).
func (c *Connector) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	return &connectorv1.DescribeResponse{
		Name:              Name,
		Description:       "LDAP directories: on-premises Active Directory (and Samba AD) and OpenLDAP. Reads users, groups (security, mail-enabled security, distribution) and their members with a simple bind over ldaps://, StartTLS or ldap://.",
		Version:           Version,
		ConfigFields:      ConfigFields(),
		DefaultGroupKinds: []string{connector.GroupSecurity, connector.GroupDistribution},
		Attributes:        ReadableAttributes(),
		// Active Directory with Exchange says it in msExchRecipientTypeDetails.
		MailboxPurpose: true,
	}, nil
}

// ValidateConfig implements connector.Connector. It reads ca_file and
// bind_password_file but never the network.
func (c *Connector) ValidateConfig(_ context.Context, raw *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	_, err := ParseConfig(raw)
	var ce *ConfigError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &ce):
		return ce.Problems, nil
	default:
		return nil, err
	}
}
