# Microsoft Entra ID (Azure AD) connector: users, groups and their members,
# read through Microsoft Graph. Which kinds of groups are read (unified =
# Microsoft 365, security, mail_security, distribution) is not connector
# config: group_types in the connector's import policy chooses them
# (default ["unified"]).
#
# Register an application in the Entra admin center (App registrations >
# New registration), then under API permissions add the Microsoft Graph
# *application* permissions
#   User.Read.All          read users
#   GroupMember.Read.All   read groups and their members
# and select "Grant admin consent". Consent can take up to 4 hours to reach
# new tokens. Under Certificates & secrets create a client secret and copy
# its Value (not its Secret ID): it is shown only once.

# connector "contoso" {
#   plugin = "azuread"
#
#   config {
#     ## The tenant: its primary domain or its Directory (tenant) ID, both
#     ## shown in the Entra admin center > Overview. (required)
#     tenant = "contoso.onmicrosoft.com"
#     # tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
#
#     ## The app registration's Application (client) ID, from its Overview.
#     ## (required)
#     client_id = "00000000-0000-0000-0000-000000000000"
#
#     ## The client secret's Value: exactly one of client_secret or
#     ## client_secret_file. The file is read at every use (so rotating the
#     ## secret needs no restart) and whitespace-trimmed. Relative paths
#     ## resolve against the folder of this file. Prefer the file, readable
#     ## only by the dirsync user.
#     client_secret_file = "secrets/contoso-client-secret"
#     # client_secret = "..."
#
#     ## The Entra authority host. National clouds:
#     ##   US Government  https://login.microsoftonline.us/
#     ##   China          https://login.chinacloudapi.cn/
#     # authority_host = "https://login.microsoftonline.com/"
#
#     ## The Microsoft Graph base URL; the token scope is its host +
#     ## "/.default". National clouds:
#     ##   US Government  https://graph.microsoft.us/v1.0
#     ##   China          https://microsoftgraph.chinacloudapi.cn/v1.0
#     # graph_url = "https://graph.microsoft.com/v1.0"
#
#     ## A PEM file of extra CA certificates to trust (besides the system's)
#     ## for the authority and Graph, e.g. a TLS-inspecting proxy's CA.
#     # ca_file = "/etc/dirsync/proxy-ca.pem"
#
#     ## How long one sync may spend retrying Graph requests when Graph
#     ## throttles (429), is unavailable (503), times out (504) or drops the
#     ## connection: a Go duration. Waits follow Graph's Retry-After, else
#     ## an exponential backoff. Past the budget the sync fails with Graph's
#     ## error, and the next one resumes from the last cursor.
#     # retry_budget = "10m"
#
#     ## The largest answer accepted from Graph or the token endpoint, in
#     ## MiB (1 to 1024). A larger one fails the sync at once, naming the
#     ## request, and is not retried; Graph's delta pages are about 1 MiB.
#     ## Raise it only if a sync fails because Graph's pages really are
#     ## larger. (JSON nested deeper than 64 levels is always refused.)
#     # max_response_mb = 16
#   }
# }
