package connector

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// failing is a Connector whose every call fails with err; Sync sends
// sent batches first.
type failing struct {
	err  error
	sent []*connectorv1.SyncBatch
}

func (f *failing) Describe(context.Context) (*connectorv1.DescribeResponse, error) {
	return nil, f.err
}

func (f *failing) ValidateConfig(context.Context, *connectorv1.Config) ([]*connectorv1.ConfigProblem, error) {
	return nil, f.err
}

func (f *failing) TestConnection(context.Context, *connectorv1.Config) (*connectorv1.TestConnectionResponse, error) {
	return nil, f.err
}

func (f *failing) Sync(_ context.Context, _ *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error {
	for _, b := range f.sent {
		if err := send(b); err != nil {
			return err
		}
	}
	return f.err
}

// serveOverGRPC serves impl as the plugin process does, in memory, and
// returns the host's Client and a function that stops the server.
func serveOverGRPC(t *testing.T, impl Connector) (*Client, func()) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	if err := (&GRPCPlugin{Impl: impl}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///plugin",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(); srv.Stop() })
	c, err := (&GRPCPlugin{}).GRPCClient(context.Background(), nil, conn)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Client), srv.Stop
}

// A plugin's error reaches the host with the plugin's words only, not
// gRPC's "rpc error: code = ... desc = " wrapper, on every call; its
// status code stays readable.
func TestClientErrorIsThePluginsMessage(t *testing.T) {
	const msg = "reading users: the answer to GET https://graph.example/v1.0/users/delta is larger than 16 MiB (max_response_mb)"
	cases := []struct {
		name string
		err  error
		want string
		code codes.Code
	}{
		{"plain error", errors.New(msg), msg, codes.Unknown},
		{"status error", status.Error(codes.PermissionDenied, "not allowed"), "not allowed", codes.PermissionDenied},
		{"status without a message", status.Error(codes.Internal, ""), "the plugin call failed with gRPC code Internal", codes.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, _ := serveOverGRPC(t, &failing{err: c.err})
			ctx := context.Background()
			_, describeErr := client.Describe(ctx)
			_, validateErr := client.ValidateConfig(ctx, &connectorv1.Config{})
			_, testErr := client.TestConnection(ctx, &connectorv1.Config{})
			syncErr := client.Sync(ctx, &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error { return nil })
			for call, err := range map[string]error{"Describe": describeErr, "ValidateConfig": validateErr, "TestConnection": testErr, "Sync": syncErr} {
				var re *RemoteError
				if err == nil || err.Error() != c.want || !errors.As(err, &re) || re.Code() != c.code || status.Code(err) != c.code {
					t.Errorf("%s: %v (code %v), want %q with code %v", call, err, status.Code(err), c.want, c.code)
				}
				if st, ok := status.FromError(err); !ok || st.Code() != c.code {
					t.Errorf("%s: status.FromError = %v, %v", call, st, ok)
				}
			}
		})
	}
}

// A plugin that fails mid-stream reports its error as its own words; the
// host's own failures (its callback, the stream contract) pass through
// unchanged.
func TestClientSyncErrors(t *testing.T) {
	batch := &connectorv1.SyncBatch{Users: []*connectorv1.User{{Id: "u1"}}}
	errHost := errors.New("host refused the batch")

	client, _ := serveOverGRPC(t, &failing{err: errors.New("reading groups: Graph 503"), sent: []*connectorv1.SyncBatch{batch}})
	got := 0
	err := client.Sync(context.Background(), &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error { got++; return nil })
	if got != 1 || err == nil || err.Error() != "reading groups: Graph 503" || strings.Contains(err.Error(), "rpc error") {
		t.Errorf("mid-stream failure after %d batches: %v", got, err)
	}

	client, _ = serveOverGRPC(t, &failing{sent: []*connectorv1.SyncBatch{batch}})
	if err := client.Sync(context.Background(), &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error { return errHost }); !errors.Is(err, errHost) {
		t.Errorf("callback failure: %v, want the host's own error", err)
	}
	if err := client.Sync(context.Background(), &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error { return nil }); !errors.Is(err, ErrIncompleteStream) {
		t.Errorf("stream without a final batch: %v, want ErrIncompleteStream", err)
	}

	client, _ = serveOverGRPC(t, &failing{sent: []*connectorv1.SyncBatch{{Done: true}, batch}})
	if err := client.Sync(context.Background(), &connectorv1.SyncRequest{}, func(*connectorv1.SyncBatch) error { return nil }); !errors.Is(err, ErrProtocol) {
		t.Errorf("batch after the final one: %v, want ErrProtocol", err)
	}
}

// A broken connection keeps its gRPC code, which the plugin host reads to
// tell a dead plugin.
func TestClientBrokenConnection(t *testing.T) {
	client, stop := serveOverGRPC(t, &failing{})
	stop()
	_, err := client.Describe(context.Background())
	if status.Code(err) != codes.Unavailable || strings.Contains(err.Error(), "rpc error") {
		t.Errorf("Describe after the server stopped: %v (code %v), want Unavailable without the gRPC wrapper", err, status.Code(err))
	}
}
