# Faulty connector: a plugin that misbehaves on purpose, for fault tests of
# dirsyncd (crashes, hangs, stream contract violations, hostile data). It
# reads no directory; its users are made up. Never use it for real.

# plugin "faulty" {
#   path = "./bin/dirsync-faulty"
#   ## How long the plugin may send nothing before dirsyncd stops it as hung.
#   # idle_timeout = "10m"
# }
#
# connector "chaos" {
#   plugin = "faulty"
#
#   config {
#     ## What goes wrong (default "ok"):
#     ##   ok                behaves
#     ##   exit_at_start     exits with status 3 as soon as a sync starts
#     ##   crash_mid_stream  SIGKILLs itself after `after` batches
#     ##   hang              blocks forever after `after` batches
#     ##   after_done        sends a batch after the final one
#     ##   oversized         sends one batch of 20,000 users
#     ##   removed_in_full   marks user 1 removed in a full read
#     ##   bad_fields        sends users with hostile ids, names and mails
#     ##   test_fail         fails the connection test
#     # mode = "ok"
#
#     ## How many normal users a sync serves, in batches of 10.
#     # users = 50
#
#     ## How many batches are sent before a crash or hang.
#     # after = 1
#   }
# }
