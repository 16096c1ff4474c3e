package connector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Handshake is shared by the daemon and every connector plugin. The cookie
// is not security (the sha256 in plugins.hcl is); it only stops a plugin
// binary run by hand from waiting silently for a host.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "DIRSYNC_CONNECTOR_PLUGIN",
	MagicCookieValue: "f3b0c7a2-connector.v1",
}

// PluginName is the key under which the connector is dispensed.
const PluginName = "connector"

// GRPCPlugin adapts a Connector to go-plugin's gRPC transport. The plugin
// side sets Impl; the host side leaves it nil.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Connector
}

// GRPCServer registers the connector.v1 service in the plugin process.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("connector: GRPCPlugin.Impl is nil in the plugin process")
	}
	connectorv1.RegisterConnectorServer(s, &server{impl: p.Impl})
	return nil
}

// GRPCClient returns a Connector that calls the plugin process.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Client{rpc: connectorv1.NewConnectorClient(c)}, nil
}

// PluginSet is the go-plugin plugin map for a host or a plugin.
func PluginSet(impl Connector) plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{Impl: impl}}
}

// Serve runs impl as a plugin. It returns when the host kills the plugin;
// started by hand, it prints that it must be started by dirsyncd and exits.
// If the host dies without stopping it (SIGKILL, power cut of the
// service), the plugin notices it was orphaned and exits within a second,
// so no stray process keeps reading the directory.
func Serve(impl Connector) {
	go exitWhenOrphaned(os.Getppid(), time.Second)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         PluginSet(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// exitWhenOrphaned exits the process once its parent is no longer host:
// the kernel re-parents an orphan to init or a subreaper.
func exitWhenOrphaned(host int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != host {
			os.Exit(3)
		}
	}
}

// server exposes a Connector as the connector.v1 gRPC service.
type server struct {
	connectorv1.UnimplementedConnectorServer
	impl Connector
}

func (s *server) Describe(ctx context.Context, _ *connectorv1.DescribeRequest) (*connectorv1.DescribeResponse, error) {
	return s.impl.Describe(ctx)
}

func (s *server) ValidateConfig(ctx context.Context, req *connectorv1.ValidateConfigRequest) (*connectorv1.ValidateConfigResponse, error) {
	problems, err := s.impl.ValidateConfig(ctx, req.GetConfig())
	if err != nil {
		return nil, err
	}
	return &connectorv1.ValidateConfigResponse{Problems: problems}, nil
}

func (s *server) TestConnection(ctx context.Context, req *connectorv1.TestConnectionRequest) (*connectorv1.TestConnectionResponse, error) {
	return s.impl.TestConnection(ctx, req.GetConfig())
}

func (s *server) Sync(req *connectorv1.SyncRequest, stream connectorv1.Connector_SyncServer) error {
	return s.impl.Sync(stream.Context(), req, stream.Send)
}

// Client is the host's view of a plugin: a Connector backed by gRPC calls.
type Client struct {
	rpc connectorv1.ConnectorClient
}

var _ Connector = (*Client)(nil)

// Describe implements Connector.
func (c *Client) Describe(ctx context.Context) (*connectorv1.DescribeResponse, error) {
	return c.rpc.Describe(ctx, &connectorv1.DescribeRequest{})
}

// ValidateConfig implements Connector.
func (c *Client) ValidateConfig(ctx context.Context, cfg *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	resp, err := c.rpc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Config: cfg})
	if err != nil {
		return nil, err
	}
	return resp.GetProblems(), nil
}

// TestConnection implements Connector.
func (c *Client) TestConnection(ctx context.Context, cfg *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	return c.rpc.TestConnection(ctx, &connectorv1.TestConnectionRequest{Config: cfg})
}

// Sync implements Connector. It fails if the stream ends without a batch
// marked Done, so a plugin that dies mid-stream is never mistaken for one
// that finished.
func (c *Client) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Sync(ctx, req)
	if err != nil {
		return err
	}
	done := false
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if !done {
				return ErrIncompleteStream
			}
			return nil
		}
		if err != nil {
			return err
		}
		if done {
			return fmt.Errorf("%w: batch after the final one", ErrProtocol)
		}
		done = b.GetDone()
		if err := send(b); err != nil {
			return err
		}
	}
}

// ErrIncompleteStream means the plugin's sync stream ended before its final
// batch: the plugin crashed or broke the contract.
var ErrIncompleteStream = errors.New("connector: sync stream ended before the final batch")

// ErrProtocol means the plugin sent something the contract forbids.
var ErrProtocol = errors.New("connector: protocol violation")
