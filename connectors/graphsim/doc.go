// Package graphsim is a simulated Microsoft Entra ID tenant and Microsoft
// Graph v1.0 server, served over HTTPS on loopback.
//
// Real clients talk to it exactly as they talk to Microsoft: azidentity's
// ClientSecretCredential with the authority host set to AuthorityHost (and
// instance discovery disabled) obtains a token from the simulated token
// endpoint, and msgraph-sdk-go with the base URL set to GraphURL lists users,
// groups and group members with Graph's paging, query options, error bodies
// and headers. The response and error shapes follow what Entra and Graph
// really send (see shared/graph-samples).
//
// A tenant is generated deterministically from Config: the same Config gives
// the same tenant, byte for byte. Tests read it through Sim.Tenant and change
// it between syncs through Sim.Mutate.
//
// The package depends only on the standard library.
package graphsim
