package azuread

import (
	"context"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/dirsync/dirsync/connectors/connector"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// TestOverGRPC drives the connector through the plugin's gRPC service, as
// the daemon does.
func TestOverGRPC(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 2500, Groups: 4, Seed: 9})
	client, server := plugin.TestPluginGRPCConn(t, false, connector.PluginSet(New(nil)))
	t.Cleanup(func() { _ = client.Close(); server.Stop() })
	raw, err := client.Dispense(connector.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(connector.Connector)
	ctx := context.Background()

	d, err := c.Describe(ctx)
	if err != nil || d.GetName() != Name {
		t.Fatalf("describe: %v %v", d, err)
	}
	cfg := simConfig(t, sim, nil)
	resp, err := c.TestConnection(ctx, cfg)
	if err != nil || !resp.GetOk() {
		t.Fatalf("test connection: %v %v", resp, err)
	}
	users := 0
	var last *connectorv1.SyncBatch
	err = c.Sync(ctx, &connectorv1.SyncRequest{Config: cfg}, func(b *connectorv1.SyncBatch) error {
		users += len(b.GetUsers())
		last = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if users != 2500 || !last.GetDone() || !last.GetComplete() {
		t.Errorf("users %d, last %v", users, last)
	}
}
