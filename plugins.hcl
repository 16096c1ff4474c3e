# dirsync configuration. `make run` uses this file as it is: the embedded
# NATS server, the Azure AD connector plugin, and a "demo" connector that
# syncs the simulated tenant graphsim serves on 127.0.0.1:8943.
# Relative paths resolve against this file's folder.

daemon {
  data_dir = "./data" # events (JetStream), the control socket, NATS credentials
}

# log {
#   format = "auto"   # console (ISO-8601 times) on a terminal, JSON (RFC 3339 "ts") otherwise; or "console", "json"
#   level  = "info"   # debug, info, warn, error
# }

nats {
  listen = "127.0.0.1:4250" # the embedded nats-server; or url = "nats://…" for an existing one
  # sync      = "append"    # fsync a job's events before it is COMPLETED (default); "always" or "interval"
  # max_store = "20GB"      # JetStream's storage limit (default: 3/4 of the free disk)
}

api {
  listen     = "127.0.0.1:8470"   # the HTTP API and the web console: http://127.0.0.1:8470/console/
  token_file = "./data/api-token" # `make run` writes one on its first start; log in to the console with it
  # tls_cert_file = "…"           # with tls_key_file: HTTPS (needed beyond loopback)
}

# notify {                           # webhooks for failures and changes; every key in README.md, "Notifications"
#   webhook "platform" {
#     url         = "https://hooks.example.com/dirsync"
#     secret_file = "/etc/dirsync/webhook-secret" # HMAC-SHA256 key of X-Dirsync-Signature, mode 0600
#     events      = ["job.failed", "guard.tripped", "connector.stale"]
#   }
# }

plugin "azuread" {
  path = "./bin/dirsync-azuread"
  # sha256       = "…"    # pin the binary: dirsyncd refuses to start a plugin that does not match
  # idle_timeout = "10m"  # a plugin silent this long is stopped as hung and its job fails
}

connector "demo" {
  plugin = "azuread"
  # schedule = "@every 15m"  # auto-sync: a cron expression or @hourly, @daily, @every 30m
  config {
    tenant             = "contoso.onmicrosoft.com"
    client_id          = "6731de76-14a6-49ae-97bc-6eba6914391e"
    client_secret_file = "./data/graphsim/client-secret" # written by graphsim on first start
    authority_host     = "https://127.0.0.1:8943/"
    graph_url          = "https://127.0.0.1:8943/v1.0"
    ca_file            = "./data/graphsim/ca.pem" # graphsim's generated CA
  }
  # import {                  # who becomes a recipient; every key and its default in README.md
  #   tags       = ["demo"]
  #   on_removed = "archive"
  # }
}

# A real tenant (see README.md, "Connecting a real tenant"):
#
# connector "contoso" {
#   plugin = "azuread"
#   config {
#     tenant             = "contoso.onmicrosoft.com"              # primary domain or Directory (tenant) ID
#     client_id          = "00000000-0000-0000-0000-000000000000" # Application (client) ID
#     client_secret_file = "/etc/dirsync/contoso.secret"          # the secret's Value, not its Secret ID
#   }
# }
