#!/usr/bin/env bash
# make run-ad: make run's demo beside an Active Directory. A Samba AD
# domain controller holding the LDAP connector's demo directory
# (connectors/cmd/ldapdemo: people in departments, nested groups, a
# disabled account) on a loopback address 127.0.0.N, graphsim (the
# simulated Entra tenant, as make run starts it), and dirsyncd with two
# connectors: make run's "demo" (azuread, on graphsim) and "corp" (ldap,
# on the DC, over ldaps:// as a read account). Then the connection test
# of corp and the first sync of each. Ctrl-C stops everything.
#
# Everything lives in data/run-ad/ (ignored by git, beside make run's
# ./data, which it does not touch): emptied at each start, left after
# the stop so that the logs can be read. graphsim and the daemon use
# their own ports (8944, 4251), so make run may run at the same time.
#
# scripts/run-ad.sh --preflight only checks that a Samba DC can run here
# (make run-ad runs it before building).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

rel=data/run-ad # as the printed commands name it (from the checkout)
W=$root/$rel    # as the configuration names it
GRAPHSIM=127.0.0.1:8944 # make run's graphsim is on 8943
NATS=127.0.0.1:4251     # make run's embedded NATS is on 4250
C="--config $rel/plugins.hcl"

fail() {
  echo "run-ad: $*" >&2
  exit 1
}

# logtail FILE: the end of a process's log, indented, for a failure message.
logtail() {
  echo "   last lines of $1:" >&2
  tail -n 15 "$1" 2>/dev/null | sed 's/^/   | /' >&2 || true
}

# ---- can a Samba AD DC run here? -----------------------------------------

have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ]; }
preflight() {
  if ! have samba || ! have samba-tool; then
    cat >&2 <<'EOF'
run-ad: Samba is not installed. make run-ad runs a Samba Active Directory domain controller; install it
   (Debian, Ubuntu; as root):
     apt-get install --no-install-recommends samba samba-dsdb-modules samba-vfs-modules samba-ad-provision
   then run make run-ad again (as root). Without Samba or root, the same demo directory runs in OpenLDAP:
     go run ./connectors/cmd/ldapdemo -flavor openldap    (apt-get install slapd)
EOF
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    cat >&2 <<'EOF'
run-ad: a Samba AD domain controller listens on port 389 (LDAP) and 636 (LDAPS) of 127.0.0.N, which takes
   root: run it as root, e.g. sudo env "PATH=$PATH" make run-ad (keeping Go on PATH). Without root, the same
   demo directory runs in OpenLDAP: go run ./connectors/cmd/ldapdemo -flavor openldap
EOF
    exit 1
  fi
}
preflight
[ "${1-}" != --preflight ] || exit 0

for b in dirsyncd dirsync graphsim dirsync-azuread dirsync-ldap ldapdemo; do
  [ -x "bin/$b" ] || fail "bin/$b is missing: run make run-ad (it builds everything)"
done
command -v setsid >/dev/null || fail "setsid is missing (Debian: apt-get install util-linux)"

# in_use PORT: something listens on 127.0.0.1:PORT.
in_use() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
for p in "${GRAPHSIM##*:}:graphsim" "${NATS##*:}:the daemon's embedded NATS server"; do
  ! in_use "${p%%:*}" || fail "port ${p%%:*} (${p#*:}) is in use: is another make run-ad running? Stop it (Ctrl-C in its shell)."
done

# dirsyncd refuses a data directory or a secret file that others can read.
umask 077
rm -rf "$W"
mkdir -p "$W/graphsim" "$W/ldap"
echo ">> work directory $rel (emptied at each start): the DC, graphsim, the daemon's state, the logs"

# ---- process bookkeeping and the clean stop ---------------------------------

# Every child runs in its own session (setsid), so that Ctrl-C reaches
# this script only and the stop goes in order: the daemon first (it
# finishes or cancels its jobs and stops its plugins), then graphsim and
# the domain controller it was reading.
declare -A pid=() # name -> pid
order=()          # names, in start order
stopping=0

# spawn NAME LOG CMD...: start CMD in its own session, its output in LOG.
spawn() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 &
  pid[$name]=$!
  order+=("$name")
}

# alive NAME: its process runs (a zombie, exited but not reaped, does not).
alive() {
  local p=${pid[$1]-} st
  [ -n "$p" ] || return 1
  st=$(ps -o stat= -p "$p" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# stop NAME SECONDS: SIGTERM, and SIGKILL if it still runs after SECONDS.
stop() {
  local name=$1 secs=$2 n=0
  [ -n "${pid[$name]-}" ] || return 0
  kill -TERM "${pid[$name]}" 2>/dev/null || true
  while alive "$name" && [ "$n" -lt $((secs * 5)) ]; do
    sleep 0.2
    n=$((n + 1))
  done
  if alive "$name"; then
    echo "   $name did not stop within ${secs}s of SIGTERM: killing it"
    kill -KILL "${pid[$name]}" 2>/dev/null || true
  fi
  wait "${pid[$name]}" 2>/dev/null || true
  unset "pid[$name]"
}

cleanup() {
  [ "$stopping" = 0 ] || return 0
  stopping=1
  set +e
  trap '' INT TERM HUP # one stop is enough (make sends SIGTERM too)
  [ "${#pid[@]}" -gt 0 ] || return 0
  echo
  echo ">> stopping"
  [ -z "${pid[dirsyncd]-}" ] || { echo "   dirsyncd"; stop dirsyncd 40; }
  [ -z "${pid[graphsim]-}" ] || { echo "   graphsim"; stop graphsim 10; }
  [ -z "${pid[ldapdemo]-}" ] || { echo "   the domain controller (ldapdemo)"; stop ldapdemo 20; }
  echo ">> stopped; the logs stay in $rel/*.log"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 0' INT TERM HUP

# ---- the domain controller ------------------------------------------------

# ldapdemo prints its progress on the terminal (stderr) and what it
# started in its log; ldap.env, written last, says it is ready.
echo ">> starting a Samba AD domain controller with the demo directory (bin/ldapdemo, log $rel/ldapdemo.log)"
setsid bin/ldapdemo -dir "$W/ldap" -users 40 >>"$W/ldapdemo.log" &
pid[ldapdemo]=$!
order+=(ldapdemo)
for _ in $(seq 1800); do # 180 s: a first provisioning on a slow machine, and seeding
  [ -s "$W/ldap/ldap.env" ] && break
  alive ldapdemo || { logtail "$W/ldapdemo.log"; fail "ldapdemo exited at start (see above, and $rel/ldapdemo.log)"; }
  sleep 0.1
done
[ -s "$W/ldap/ldap.env" ] || fail "the domain controller did not start within 180 s: see $rel/ldapdemo.log"
# shellcheck source=/dev/null
. "$W/ldap/ldap.env"

# ---- graphsim, as scripts/run.sh starts it ----------------------------------

echo ">> starting graphsim (simulated Entra tenant) on https://$GRAPHSIM (log $rel/graphsim.log)"
spawn graphsim "$W/graphsim.log" bin/graphsim -listen "$GRAPHSIM" -users 250 -groups 20 -seed 1 \
  -client-secret-file "$W/graphsim/client-secret" -ca-file "$W/graphsim/ca.pem" \
  -state-file "$W/graphsim/tenant.json"
for _ in $(seq 100); do
  [ -s "$W/graphsim/ca.pem" ] && break
  alive graphsim || { logtail "$W/graphsim.log"; fail "graphsim exited at start; its log is $rel/graphsim.log"; }
  sleep 0.1
done
[ -s "$W/graphsim/ca.pem" ] || { logtail "$W/graphsim.log"; fail "graphsim did not start within 10 s; its log is $rel/graphsim.log"; }

# ---- plugins.hcl -----------------------------------------------------------

# The azuread plugin and the demo connector are make run's, taken from
# plugins.hcl (from its first plugin block on, without its top-level
# comments) with this graphsim's address, secret and CA; then the ldap
# plugin and the corp connector on the DC.
blocks=$(sed -n '/^plugin "/,$p' plugins.hcl | grep -v '^#' |
  sed -e 's|"\./data/graphsim/|"./graphsim/|g' -e "s|\"\./bin/|\"$root/bin/|g" -e "s|127\.0\.0\.1:8943|$GRAPHSIM|g")
echo "$blocks" | grep -q '^connector "demo"' || fail "plugins.hcl has no connector \"demo\" block (run-ad takes make run's demo connector from it)"
cat >"$W/plugins.hcl" <<EOF
# make run-ad (scripts/run-ad.sh writes this file at each start).
# Relative paths resolve against this file's folder, $rel.

daemon {
  data_dir = "./dirsyncd"
}

log {
  format = "console" # easier to read in $rel/dirsyncd.log than JSON
}

nats {
  listen = "$NATS"
}

$blocks

plugin "ldap" {
  path = "$root/bin/dirsync-ldap"
}

# The Samba AD DC that bin/ldapdemo started, read over LDAPS as a plain
# domain user (CN=reader) that may read CN=Deleted Objects, so that a
# sync after the first reads only the changes, deletions included.
connector "corp" {
  plugin = "ldap"
  config {
    url                = "$LDAP_URL"
    ca_file            = "./ldap/ca.pem"        # the CA ldapdemo made for the DC's certificate
    bind_dn            = "$LDAP_BIND_DN"
    bind_password_file = "./ldap/bind-password" # mode 0600: dirsyncd refuses a secret others can read
    base_dn            = "$LDAP_BASE_DN"
  }
  # import {                  # every key and its default in README.md
  #   group_types = ["security", "distribution"]  # the ldap plugin's default kinds
  # }
}
EOF

# ---- dirsyncd ---------------------------------------------------------------

echo ">> starting dirsyncd --config $rel/plugins.hcl (log $rel/dirsyncd.log)"
spawn dirsyncd "$W/dirsyncd.log" bin/dirsyncd --config "$W/plugins.hcl"
for s in $(seq 600); do
  bin/dirsync $C status >/dev/null 2>&1 && break
  alive dirsyncd || { logtail "$W/dirsyncd.log"; fail "dirsyncd exited at start; its log is $rel/dirsyncd.log"; }
  [ "$s" != 150 ] || echo "   ... dirsyncd is still starting"
  sleep 0.1
done
bin/dirsync $C status >/dev/null 2>&1 || { logtail "$W/dirsyncd.log"; fail "dirsyncd did not answer within 60 s; its log is $rel/dirsyncd.log"; }

echo ">> connection test of corp: bin/dirsync $C connector test corp"
bin/dirsync $C connector test corp || echo ">> the connection test failed; see the remedy above"
for c in demo corp; do
  echo ">> first sync of $c"
  bin/dirsync $C sync "$c" --wait || echo ">> the sync of $c did not complete; see the reason above"
done

cat <<EOF

>> dirsyncd runs with two connectors, demo (graphsim) and corp (the DC). In a second shell (in $root):
     C="$C"
     bin/dirsync \$C status
     bin/dirsync \$C recipients list --connector corp
     bin/dirsync \$C groups list --connector corp
     bin/dirsync \$C connector test corp
   Change the directory (ldap-utils), then sync: only the changes are read.
     . $rel/ldap/ldap.env; export LDAPTLS_CACERT=\$LDAP_CA_FILE
     A=(-H "\$LDAP_URL" -x -D "\$LDAP_ADMIN_DN" -w "\$LDAP_ADMIN_PASSWORD")
     ldapdelete "\${A[@]}" "CN=Bob Brown,\$LDAP_BASE_DN"                # a leaver
     printf 'dn: CN=Erin Evans,%s\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n' "\$LDAP_BASE_DN" |
       ldapmodify "\${A[@]}"                                          # an account disabled
     bin/dirsync \$C sync corp --wait
   Logs: $rel/dirsyncd.log, $rel/graphsim.log, $rel/ldapdemo.log. Ctrl-C stops dirsyncd, graphsim and the DC.
EOF

# ---- in the foreground until Ctrl-C ----------------------------------------

while :; do
  for name in "${order[@]}"; do
    [ -n "${pid[$name]-}" ] || continue
    alive "$name" && continue
    wait "${pid[$name]}" 2>/dev/null || true
    unset "pid[$name]"
    logtail "$W/$name.log"
    fail "$name exited; its log is $rel/$name.log"
  done
  sleep 1
done
