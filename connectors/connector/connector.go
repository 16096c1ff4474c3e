// Package connector is the Go side of the connector.v1 plugin contract: the
// small interface every directory connector implements, and the
// hashicorp/go-plugin glue that serves it from a plugin binary and calls it
// from the daemon over gRPC.
//
// A connector only reads the directory. The daemon owns every event and
// every decision; nothing a connector sends is trusted before the daemon
// checked it.
package connector

import (
	"context"
	"errors"

	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// Connector reads one kind of directory. Implementations live in their own
// package (connectors/azuread) and are served with Serve.
type Connector interface {
	// Describe names the connector and the keys of its config block.
	Describe(ctx context.Context) (*connectorv1.DescribeResponse, error)
	// ValidateConfig checks a config for meaning without network access and
	// returns every problem found (none means valid).
	ValidateConfig(ctx context.Context, cfg *connectorv1.Config) ([]*connectorv1.ConfigProblem, error)
	// TestConnection authenticates and reads a little of the directory.
	// Failures the admin can fix are reported as failed checks, not errors;
	// an error means the test itself could not run.
	TestConnection(ctx context.Context, cfg *connectorv1.Config) (*connectorv1.TestConnectionResponse, error)
	// Sync reads the directory and calls send for each bounded batch, the
	// last one with Done set. It stops when ctx is canceled or send fails.
	Sync(ctx context.Context, req *connectorv1.SyncRequest, send func(*connectorv1.SyncBatch) error) error
}

// MailboxClassifier is the optional part of a Connector that says what
// users' mailboxes are for (connector.v1 ClassifyMailboxes); its Describe
// sets mailbox_purpose. A Connector without it answers UNIMPLEMENTED.
type MailboxClassifier interface {
	ClassifyMailboxes(ctx context.Context, req *connectorv1.ClassifyMailboxesRequest) (*connectorv1.ClassifyMailboxesResponse, error)
}

// ErrNotSupported is what the host's Client answers for a call the plugin
// does not implement (a plugin built before it).
var ErrNotSupported = errors.New("the plugin does not support this call")

// MaxBatchObjects bounds the users, groups and member IDs of one batch, so
// no message approaches gRPC's 4 MiB default limit whatever the tenant size.
const MaxBatchObjects = 1000
