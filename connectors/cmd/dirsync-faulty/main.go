// Command dirsync-faulty is a connector plugin that misbehaves on purpose
// (see package connectors/faulty), for fault tests of dirsyncd. dirsyncd
// starts it; run by hand it says so and exits.
package main

import (
	"go.uber.org/zap/zapcore"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/connectors/faulty"
)

func main() {
	connector.Serve(faulty.New(connector.NewPluginLogger(zapcore.InfoLevel)))
}
