// Command dirsync-azuread is the Microsoft Entra ID (Azure AD) connector
// plugin. dirsyncd starts it; run by hand it says so and exits.
package main

import (
	"go.uber.org/zap/zapcore"

	"github.com/dirsync/dirsync/connectors/azuread"
	"github.com/dirsync/dirsync/connectors/connector"
)

func main() {
	connector.Serve(azuread.New(connector.NewPluginLogger(zapcore.InfoLevel)))
}
