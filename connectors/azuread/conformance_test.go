package azuread

import (
	"fmt"
	"testing"

	"github.com/dirsync/dirsync/connectors/connector"
	"github.com/dirsync/dirsync/connectors/connectortest"
	"github.com/dirsync/dirsync/connectors/graphsim"
)

// The Azure AD connector passes the conformance suite against graphsim,
// through msgraph-sdk-go and azidentity over real HTTPS.
func TestConformance(t *testing.T) {
	sim := startSim(t, graphsim.Config{Users: 1500, Groups: 12, Seed: 16})
	const wrong = "Wr0ng~secret.value_for_the_suite"
	n := 0
	connectortest.Run(t, connectortest.Harness{
		New:         func() connector.Connector { return New(nil) },
		Config:      simConfig(t, sim, nil),
		GroupKinds:  connector.GroupKinds(),
		Secrets:     []string{testSecret, wrong},
		WrongSecret: simConfig(t, sim, map[string]any{"client_secret": wrong}),
		Change: func() (connectortest.Changes, error) {
			n++
			ids := sim.Tenant().Users
			hired, err := sim.AddUser(graphsim.User{DisplayName: "Suite Hire", UserPrincipalName: fmt.Sprintf("suite.hire%d@%s", n, sim.Tenant().Domain),
				Mail: fmt.Sprintf("suite.hire%d@contoso.com", n), UserType: "Member", AccountEnabled: true})
			if err != nil {
				return connectortest.Changes{}, err
			}
			changed, gone := ids[0].ID, ids[1].ID
			if err := sim.UpdateUser(changed, func(u *graphsim.User) { u.Department = "Conformance" }); err != nil {
				return connectortest.Changes{}, err
			}
			if err := sim.DeleteUser(gone, true); err != nil {
				return connectortest.Changes{}, err
			}
			// Groups are not checked: deleting a member changes its groups.
			return connectortest.Changes{Users: []string{hired.ID, changed}, RemovedUsers: []string{gone}}, nil
		},
		InvalidateCursor: func(cursor string) (string, error) {
			sim.ExpireDeltaTokens(graphsim.ExpiryGone)
			return cursor, nil
		},
	}, connectortest.Features{Incremental: true, Groups: true, MultiBatch: true})
}
