package testenv

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/dirsync/dirsync/daemon/broker"
)

// JetStream starts the NATS server the daemon embeds (nats-server as a
// library, through broker.Start, with JetStream) on a free loopback port,
// storing under dataDir ("" for a new t.TempDir()), and closes it when
// the test ends. Tests that open a stopped daemon's data directory pass
// it to read what the daemon stored.
func JetStream(t testing.TB, dataDir string) *broker.Broker {
	t.Helper()
	return JetStreamWith(t, broker.Options{DataDir: dataDir})
}

// JetStreamWith is JetStream with the broker's other options (a storage
// cap, a sync policy). Listen is always a free loopback port; an empty
// DataDir is a new t.TempDir().
func JetStreamWith(t testing.TB, opts broker.Options) *broker.Broker {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	b, err := broker.Start(context.Background(), opts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("starting the embedded JetStream server on %s: %v", opts.DataDir, err)
	}
	t.Cleanup(b.Close)
	return b
}
