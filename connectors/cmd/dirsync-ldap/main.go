// Command dirsync-ldap is the LDAP connector plugin: on-premises Active
// Directory (and Samba AD) and OpenLDAP, read over LDAP (see package
// connectors/ldap). dirsyncd starts it; run by hand it says so and exits.
package main

import (
	"go.uber.org/zap/zapcore"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/connectors/ldap"
)

func main() {
	connector.Serve(ldap.New(connector.NewPluginLogger(zapcore.InfoLevel)))
}
