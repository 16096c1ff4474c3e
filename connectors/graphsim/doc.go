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
// it between syncs with AddUser, UpdateUser, DisableUser, DeleteUser (soft
// or permanent), RestoreUser, SetLicenses, AddMembers, RemoveMembers, Churn
// (random changes from a seed) or Mutate. Every change is recorded in a
// change log, from which /users/delta and /groups/delta answer: an initial
// round lists everything, a round from an @odata.deltaLink lists the net
// changes since (partial properties, @removed, members@delta), and large
// groups are split across pages. ExpireDeltaTokens and
// Config.DeltaTokenTTL make delta tokens expire.
//
// Config.Attributes gives the users the attributes an identity sync
// reads (proxy addresses, preferred language, employee and location
// fields, onPremisesExtensionAttributes, a manager, a mailbox purpose) and
// nests groups with a cycle; Config.Resources adds shared, room and
// equipment mailboxes. Both are opt-in, so other tenants stay as they
// were. Beyond the collections, graphsim answers /users/{id}/manager,
// /users/{id}/mailboxSettings (which needs MailboxSettings.Read),
// /groups/{id}/transitiveMembers and JSON batches (POST /v1.0/$batch);
// SetManager and SetMailboxPurpose change what they read.
//
// Faults (SetFaults, Config.Faults) inject throttling, server errors,
// gateway timeouts, connection resets, latency or an outage into Graph
// requests, throttling into the requests of a batch, and hostile content into their answers: oversized or deeply
// nested bodies, invalid UTF-8, header-injection and bidi strings,
// non-GUID ids and members without an id (see content.go); Counters
// counts the requests by endpoint and status. A running
// server is also changed from outside through the admin endpoints under
// /_graphsim/ (see admin.go), which the graphsim command's subcommands
// call.
//
// The package depends only on the standard library.
package graphsim
