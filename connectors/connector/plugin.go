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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

func (s *server) ClassifyMailboxes(ctx context.Context, req *connectorv1.ClassifyMailboxesRequest) (*connectorv1.ClassifyMailboxesResponse, error) {
	mc, ok := s.impl.(MailboxClassifier)
	if !ok {
		return s.UnimplementedConnectorServer.ClassifyMailboxes(ctx, req)
	}
	return mc.ClassifyMailboxes(ctx, req)
}

// Client is the host's view of a plugin: a Connector backed by gRPC calls.
type Client struct {
	rpc connectorv1.ConnectorClient
}

var _ Connector = (*Client)(nil)

// Describe implements Connector.
func (c *Client) Describe(ctx context.Context) (*connectorv1.DescribeResponse, error) {
	resp, err := c.rpc.Describe(ctx, &connectorv1.DescribeRequest{})
	if err != nil {
		return nil, fromRPC(err)
	}
	return resp, nil
}

// ValidateConfig implements Connector.
func (c *Client) ValidateConfig(ctx context.Context, cfg *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	resp, err := c.rpc.ValidateConfig(ctx, &connectorv1.ValidateConfigRequest{Config: cfg})
	if err != nil {
		return nil, fromRPC(err)
	}
	return resp.GetProblems(), nil
}

// TestConnection implements Connector.
func (c *Client) TestConnection(ctx context.Context, cfg *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	resp, err := c.rpc.TestConnection(ctx, &connectorv1.TestConnectionRequest{Config: cfg})
	if err != nil {
		return nil, fromRPC(err)
	}
	return resp, nil
}

// ClassifyMailboxes implements MailboxClassifier; a plugin built before
// the call answers ErrNotSupported.
func (c *Client) ClassifyMailboxes(ctx context.Context, req *connectorv1.ClassifyMailboxesRequest) (*connectorv1.ClassifyMailboxesResponse, error) {
	resp, err := c.rpc.ClassifyMailboxes(ctx, req)
	if status.Code(err) == codes.Unimplemented {
		return nil, fmt.Errorf("%w: ClassifyMailboxes", ErrNotSupported)
	}
	if err != nil {
		return nil, fromRPC(err)
	}
	return resp, nil
}

// Sync implements Connector. It fails if the stream ends without a batch
// marked Done, so a plugin that dies mid-stream is never mistaken for one
// that finished.
func (c *Client) Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Sync(ctx, req)
	if err != nil {
		return fromRPC(err)
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
			return fromRPC(err)
		}
		if done {
			return &ProtocolError{What: "it sent a batch after its final one"}
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

// ErrProtocol means the plugin sent something the sync protocol forbids.
// Every ProtocolError matches it.
var ErrProtocol = errors.New("broke the sync protocol")

// ProtocolError says how a plugin broke the sync protocol, in words for an
// admin ("it sent a batch after its final one"). The plugin client and the
// daemon's own checks of what a plugin streams both return it.
type ProtocolError struct {
	What string
}

func (e *ProtocolError) Error() string { return ErrProtocol.Error() + ": " + e.What }

// Is makes a ProtocolError match ErrProtocol.
func (e *ProtocolError) Is(target error) bool { return target == ErrProtocol }

// RemoteError is the failure of a call to the plugin: the error the
// plugin returned (gRPC code Unknown), or a failure of the gRPC call
// itself (e.g. Unavailable when the connection broke). Its text is the
// status message alone, so that the plugin's own words reach the admin
// without gRPC's "rpc error: code = Unknown desc = " wrapper. The status
// and its code stay available: status.FromError and status.Code see
// them, and errors.As finds the RemoteError.
type RemoteError struct {
	st  *status.Status
	err error // the gRPC error, for Unwrap
}

// fromRPC turns a gRPC status error into a *RemoteError; any other error
// (nil, one of the client's own) is returned as it is.
func fromRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &RemoteError{st: st, err: err}
}

// Error returns the status message, or names the code when the message is
// empty.
func (e *RemoteError) Error() string {
	if msg := e.st.Message(); msg != "" {
		return msg
	}
	return "the plugin call failed with gRPC code " + e.st.Code().String()
}

// Code returns the gRPC status code: Unknown for an error the plugin
// returned as it was.
func (e *RemoteError) Code() codes.Code { return e.st.Code() }

// GRPCStatus returns the status, for status.FromError and status.Code.
func (e *RemoteError) GRPCStatus() *status.Status { return e.st }

// Unwrap returns the gRPC error as the call returned it.
func (e *RemoteError) Unwrap() error { return e.err }
