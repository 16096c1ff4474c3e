package faulty

import (
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/connectors/connectortest"
	connectorv1 "github.com/dirsync/dirsync/connectors/connectorv1"
)

// In its normal mode the faulty connector keeps the contract: the fault
// tests' failures come from its modes, not from its plain reads.
func TestConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		New:    func() connector.Connector { return New(nil) },
		Config: &connectorv1.Config{Json: []byte(`{"users": 2500}`)},
	}, connectortest.Features{MultiBatch: true})
}
