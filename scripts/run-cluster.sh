#!/usr/bin/env bash
# make run-cluster: a failover to watch on one machine. Three nats-server
# processes forming a JetStream cluster on loopback, graphsim (the
# simulated tenant, as make run starts it) and two dirsyncd replicas,
# replica-a and replica-b, sharing make run's connectors. Kill the
# replica holding a connector and the other takes it over within
# lease_ttl (6 s). Ctrl-C stops everything.
#
# Everything lives in data/run-cluster/ (ignored by git, beside make
# run's ./data, which it does not touch): emptied at each start, left
# after the stop so that the logs can be read.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# dirsyncd refuses a data directory or a secret file that others can read.
umask 077
# fd 3: this script's own messages to stderr. Its fd 2 is /dev/null where
# it waits on its children, so that bash's own "Killed" line for a
# replica killed with kill -9 does not clutter the screen (the script
# says itself which process exited, and how).
exec 3>&2

rel=data/run-cluster # as the printed commands name it (from the checkout)
W=$root/$rel         # as the configuration files name it
GRAPHSIM=127.0.0.1:8943 # plugins.hcl's demo connector points there
NATS=(14222 14223 14224)    # client ports of nats-1, nats-2, nats-3
ROUTES=(16222 16223 16224)  # their cluster (route) ports
MONITOR=(18222 18223 18224) # their monitoring ports (/healthz, /jsz)
NATS_URL="nats://127.0.0.1:${NATS[0]},nats://127.0.0.1:${NATS[1]},nats://127.0.0.1:${NATS[2]}"
REPLICAS=(a b)
LEASE_TTL=6s
SCHEDULE="@every 1m" # each connector's schedule here: syncs keep happening on whichever replica holds it

fail() {
  echo "run-cluster: $*" >&3
  exit 1
}

# logtail FILE: the end of a process's log, indented, for a failure message.
logtail() {
  echo "   last lines of $1:" >&3
  tail -n 15 "$1" 2>/dev/null | sed 's/^/   | /' >&3 || true
}

# ---- what it needs ------------------------------------------------------

for b in nats-server dirsyncd dirsync graphsim dirsync-azuread; do
  [ -x "bin/$b" ] || fail "bin/$b is missing: run make run-cluster (it builds everything), or make build && make bin/nats-server"
done
# dirsyncd refuses a NATS server older than 2.12 (fenced appends use its
# atomic batches). bin/nats-server is go.mod's version, built by make
# bin/nats-server; a system nats-server (Debian's /usr/sbin/nats-server)
# is never used.
v=$(bin/nats-server --version 2>/dev/null | grep -o 'v[0-9][0-9.]*' | head -n1 || true)
major=$(echo "${v#v}" | cut -d. -f1)
minor=$(echo "${v#v}" | cut -d. -f2)
if [ -z "$v" ] || [ "${major:-0}" -lt 2 ] || { [ "$major" -eq 2 ] && [ "${minor:-0}" -lt 12 ]; }; then
  fail "bin/nats-server is ${v:-of an unknown version}, dirsyncd needs 2.12 or newer: rm bin/nats-server && make bin/nats-server"
fi
for t in curl setsid; do
  command -v "$t" >/dev/null || fail "$t is missing (Debian: apt-get install $([ "$t" = curl ] && echo curl || echo util-linux))"
done

# in_use PORT: something listens on PORT (any address).
in_use() {
  if command -v ss >/dev/null; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
busy=()
check_port() { # PORT WHAT
  in_use "$1" || return 0
  local who=""
  command -v ss >/dev/null && who=$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(.*)' | head -n1 || true)
  busy+=("   port $1 ($2) is in use${who:+ by $who}")
}
for i in 0 1 2; do
  check_port "${NATS[$i]}" "nats-$((i + 1))'s client port"
  check_port "${ROUTES[$i]}" "nats-$((i + 1))'s cluster port"
  check_port "${MONITOR[$i]}" "nats-$((i + 1))'s monitoring port"
done
check_port "${GRAPHSIM##*:}" "graphsim, the simulated tenant"
if [ "${#busy[@]}" -gt 0 ]; then
  printf '%s\n' "run-cluster: the ports it needs are not free:" "${busy[@]}" >&3
  echo "   Is another make run-cluster, or make run (graphsim on 8943), still running? Stop it (Ctrl-C in its" >&3
  echo "   shell), or stop the process named above, then run make run-cluster again." >&3
  exit 1
fi

# ---- a fresh work directory ----------------------------------------------

rm -rf "$W"
mkdir -p "$W/graphsim"
echo ">> work directory $rel (emptied at each start): stores, configurations and logs"

# ---- process bookkeeping and the clean stop --------------------------------

# Every child runs in its own session (setsid), so that Ctrl-C reaches
# this script only and the stop goes in order: replicas first (a clean
# stop hands their connectors over and acknowledges their events), then
# graphsim, then the NATS servers.
declare -A pid=() # name -> pid of the running process
order=()          # names, in start order
stopping=0
force=0

# spawn NAME LOG CMD...: start CMD in the background, its output in LOG.
spawn() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 3>&- &
  pid[$name]=$!
  case " ${order[*]-} " in *" $name "*) ;; *) order+=("$name") ;; esac
}

# alive NAME: its process runs (a zombie, exited but not yet reaped, does not).
alive() {
  local p=${pid[$1]-}
  [ -n "$p" ] || return 1
  local st
  st=$(ps -o stat= -p "$p" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# reap NAME: collect an exited process; sets ended to how it ended.
ended=""
reap() {
  local p=${pid[$1]} rc=0
  wait "$p" 2>/dev/null || rc=$?
  unset "pid[$1]"
  if [ "$rc" -gt 128 ]; then ended="killed by signal $((rc - 128))"; else ended="exit status $rc"; fi
}

# stop NAME SECONDS [signaled]: SIGTERM (unless already sent), and
# SIGKILL if it still runs after SECONDS (or at once after a second Ctrl-C).
stop() {
  local name=$1 secs=$2
  [ -n "${pid[$name]-}" ] || return 0
  if alive "$name"; then
    [ -n "${3-}" ] || kill -TERM "${pid[$name]}" 2>/dev/null || true
    local n=0
    while alive "$name" && [ "$force" = 0 ] && [ "$n" -lt $((secs * 5)) ]; do
      sleep 0.2
      n=$((n + 1))
    done
    if alive "$name"; then
      echo "   $name did not stop within ${secs}s of SIGTERM: killing it"
      kill -KILL "${pid[$name]}" 2>/dev/null || true
    fi
  fi
  reap "$name"
}

cleanup() {
  [ "$stopping" = 0 ] || return 0
  stopping=1
  set +e # a message that cannot be written (the terminal closed) must not cut the stop short
  trap - EXIT
  trap 'force=1; echo "   (killing what is left)"' INT
  trap '' TERM HUP # make and timeout send SIGTERM too: one stop is enough
  [ "${#pid[@]}" -gt 0 ] || return 0
  echo
  echo ">> stopping (Ctrl-C again kills what is left at once)"
  local name
  for name in "${order[@]}"; do
    case $name in replica-*) [ -z "${pid[$name]-}" ] || echo "   $name" ;; esac
  done
  # The replicas side by side: each drains its jobs (daemon { shutdown_grace }, 30 s).
  for name in "${order[@]}"; do
    case $name in replica-*) [ -z "${pid[$name]-}" ] || ! alive "$name" || kill -TERM "${pid[$name]}" 2>/dev/null || true ;; esac
  done
  for name in "${order[@]}"; do
    case $name in replica-*) stop "$name" 40 signaled ;; esac
  done
  [ -z "${pid[graphsim]-}" ] || { echo "   graphsim"; stop graphsim 10; }
  for name in "${order[@]}"; do
    case $name in nats-*) [ -z "${pid[$name]-}" ] || { echo "   $name"; stop "$name" 20; } ;; esac
  done
  echo ">> stopped; the logs stay in $rel/*.log"
}
on_exit() {
  local rc=$?
  cleanup 2>/dev/null
  exec 2>/dev/null
  exit "$rc"
}
# While the last loop waits (read -t, sleep), a signal only asks it to
# stop: bash's read -t timer could otherwise cut a stop run from the
# signal's trap short. Anywhere else the trap stops everything itself.
waiting=0
stop_asked=0
on_signal() {
  if [ "$waiting" = 1 ]; then
    stop_asked=1
    return
  fi
  cleanup 2>/dev/null
  exec 2>/dev/null
  exit 0
}
trap on_exit EXIT
trap on_signal INT TERM HUP

# at_terminal: stdin is the terminal and this script is in its foreground
# (not make run-cluster &, where reading would stop it).
at_terminal() {
  [ -t 0 ] || return 1
  local fg pg
  fg=$(ps -o tpgid= -p $$ 2>/dev/null | tr -d ' ') pg=$(ps -o pgid= -p $$ 2>/dev/null | tr -d ' ')
  [ -n "$fg" ] && [ "$fg" = "$pg" ]
}

# ---- three nats-server processes: a JetStream cluster ---------------------

routes=""
for i in 0 1 2; do routes+="${routes:+, }nats-route://127.0.0.1:${ROUTES[$i]}"; done
for i in 1 2 3; do
  n=nats-$i
  mkdir -p "$W/$n"
  # As deploy/cluster/nats-N.conf, on loopback and without accounts.
  cat >"$W/$n.conf" <<EOF
# $n of make run-cluster (scripts/run-cluster.sh writes this file at each start)
server_name: $n
listen: 127.0.0.1:${NATS[$((i - 1))]}
http: 127.0.0.1:${MONITOR[$((i - 1))]}
max_payload: 8MB
jetstream {
  store_dir: "$W/$n"
  sync_interval: always # fsync every write before acknowledging it (docs/durability.md)
}
cluster {
  name: run-cluster
  listen: 127.0.0.1:${ROUTES[$((i - 1))]}
  routes: [$routes]
}
EOF
  bin/nats-server -c "$W/$n.conf" -t >"$W/$n.log" 2>&1 || { logtail "$W/$n.log"; fail "bin/nats-server refuses $rel/$n.conf (see above)"; }
done
echo ">> starting three nats-server (bin/nats-server $v, JetStream, sync_interval: always) on 127.0.0.1:${NATS[0]}-${NATS[2]}"
for i in 1 2 3; do spawn "nats-$i" "$W/nats-$i.log" bin/nats-server -c "$W/nats-$i.conf"; done

# Ready when every node reports a healthy JetStream in touch with a meta
# leader (/healthz), and that leader has heard from both other nodes
# (/jsz): before that it refuses an R3 stream ("insufficient
# resources"), and dirsyncd would exit.
cluster_ready() {
  local i j leader=""
  for i in 0 1 2; do
    curl -sf -m 2 "http://127.0.0.1:${MONITOR[$i]}/healthz" >/dev/null || return 1
  done
  for i in 0 1 2; do
    j=$(curl -sf -m 2 "http://127.0.0.1:${MONITOR[$i]}/jsz" | tr -d ' \n') || return 1
    if echo "$j" | grep -q "\"meta_cluster\":{[^}]*\"leader\":\"nats-$((i + 1))\""; then
      leader=$j
      break
    fi
  done
  [ -n "$leader" ] || return 1
  [ "$(echo "$leader" | grep -o '"current":true' | wc -l)" -ge 2 ]
}
for s in $(seq 600); do # 60 s; a meta election whose vote split takes a few seconds more
  cluster_ready && break
  for i in 1 2 3; do
    alive "nats-$i" || { reap "nats-$i"; logtail "$W/nats-$i.log"; fail "nats-$i exited at start ($ended); its log is $rel/nats-$i.log"; }
  done
  [ "$s" != 150 ] || echo "   ... waiting for the cluster to elect its meta leader"
  sleep 0.1
done
cluster_ready || fail "the NATS cluster did not become ready within 60 s: see $rel/nats-{1,2,3}.log (curl http://127.0.0.1:${MONITOR[0]}/jsz shows its state)"
echo "   cluster formed: a meta leader, three current peers"

# ---- graphsim, as scripts/run.sh starts it ---------------------------------

echo ">> starting graphsim (simulated Entra tenant) on https://$GRAPHSIM"
spawn graphsim "$W/graphsim.log" bin/graphsim -listen "$GRAPHSIM" -users 250 -groups 20 -seed 1 \
  -client-secret-file "$W/graphsim/client-secret" -ca-file "$W/graphsim/ca.pem" \
  -state-file "$W/graphsim/tenant.json"
for _ in $(seq 100); do
  [ -s "$W/graphsim/ca.pem" ] && break
  alive graphsim || { reap graphsim; logtail "$W/graphsim.log"; fail "graphsim exited at start ($ended); its log is $rel/graphsim.log"; }
  sleep 0.1
done
[ -s "$W/graphsim/ca.pem" ] || { logtail "$W/graphsim.log"; fail "graphsim did not start within 10 s; its log is $rel/graphsim.log"; }

# ---- the replicas' plugins.hcl ---------------------------------------------

# The plugin and connector blocks are make run's, taken from plugins.hcl
# (from its first plugin block on, without its top-level comments), with
# absolute paths, this graphsim's secret and CA, and a schedule.
blocks=$(sed -n '/^plugin "/,$p' plugins.hcl | grep -v '^#' |
  sed -e "s|\"\./data/graphsim/|\"$W/graphsim/|g" -e "s|\"\./|\"$root/|g" \
    -e "s|^\( *\)# *schedule *=.*|\1schedule = \"$SCHEDULE\" # run-cluster: syncs keep happening, on the replica holding the connector|")
echo "$blocks" | grep -q '^connector "' || fail "plugins.hcl has no connector block to share (run-cluster takes make run's connectors from it)"
connectors=$(echo "$blocks" | sed -n 's/^connector "\([^"]*\)".*/\1/p' | tr '\n' ' ')
connectors=${connectors% }
for r in "${REPLICAS[@]}"; do
  mkdir -p "$W/replica-$r"
  cat >"$W/replica-$r.hcl" <<EOF
# replica-$r of make run-cluster (scripts/run-cluster.sh writes this file at
# each start). Both replicas' files differ only in the daemon block.
daemon {
  data_dir  = "$W/replica-$r" # this replica's own
  replica   = "replica-$r"
  lease_ttl = "$LEASE_TTL"          # a killed replica's connectors move to the other within this
}

log {
  format = "console" # easier to read in $rel/replica-$r.log than JSON
}

nats {
  url      = "$NATS_URL"
  replicas = 3 # the event log, read models and leases on all three nodes
}

$blocks
EOF
done

# ---- two dirsyncd replicas ------------------------------------------------

# held_by CONFIG: "connector holder" lines from that replica's dirsync
# status (holder "-" when none holds it).
held_by() {
  bin/dirsync --config "$1" status 2>/dev/null | awk 'NR > 1 && $1 !~ /:$/ { print $1, $2 }'
}

# start_replica R: start dirsyncd replica-R and wait until it answers.
# One that exits at start is started again (as systemd would) twice.
start_replica() {
  local r=$1 name=replica-$1 cfg=$W/replica-$1.hcl attempt
  for attempt in 1 2 3; do
    echo ">> starting dirsyncd $name (bin/dirsyncd --config $rel/$name.hcl)"
    spawn "$name" "$W/$name.log" bin/dirsyncd --config "$cfg"
    for s in $(seq 1500); do # 150 s: the first start creates the R3 streams and buckets
      bin/dirsync --config "$cfg" status >/dev/null 2>&1 && return 0
      alive "$name" || break
      [ "$s" != 300 ] || echo "   ... $name is still starting (the first start creates the streams and buckets)"
      sleep 0.1
    done
    if alive "$name"; then
      logtail "$W/$name.log"
      fail "$name did not answer dirsync status within 150 s; its log is $rel/$name.log"
    fi
    reap "$name"
    echo "   $name exited at start ($ended)"
    logtail "$W/$name.log"
    [ "$attempt" = 3 ] || echo "   starting it again in 3 s (as systemd would)"
    sleep 3
  done
  fail "$name does not start: see the reason in $rel/$name.log"
}

# One replica first, as deploy/cluster/README.md says: the first start
# creates the streams and buckets.
start_replica a
start_replica b

# Ready when both replicas see each other and every connector held.
agreed() {
  local r out
  for r in "${REPLICAS[@]}"; do
    bin/dirsync --config "$W/replica-$r.hcl" status 2>/dev/null | grep -q '^replicas: .*replica-a.*replica-b\|^replicas: .*replica-b.*replica-a' || return 1
    out=$(held_by "$W/replica-$r.hcl")
    [ -n "$out" ] || return 1
    ! echo "$out" | awk '$2 == "-"' | grep -q . || return 1
  done
}
for _ in $(seq 300); do
  agreed && break
  sleep 0.1
done
agreed || echo "   (not every connector is held yet after 30 s: look at dirsync status and the replicas' logs)"

echo ">> first sync of the connectors ($connectors) through replica-a (each runs on the replica holding it)"
for c in $connectors; do
  bin/dirsync --config "$W/replica-a.hcl" sync "$c" --wait || echo ">> the sync of $c did not complete; see the reason above"
done
echo
bin/dirsync --config "$W/replica-a.hcl" status || true

# The replica holding demo (else the first connector), and the other one.
c=demo
case " $connectors " in *" demo "*) ;; *) c=${connectors%% *} ;; esac
holder=$(held_by "$W/replica-a.hcl" | awk -v c="$c" '$1 == c { print $2 }')
case $holder in replica-a | replica-b) ;; *) holder=replica-a ;; esac
O=B other=replica-b
[ "$holder" = replica-a ] || { O=A other=replica-a; }
hint() { printf '     %-38s # %s\n' "$1" "$2"; }

echo
echo ">> the cluster runs. Logs:"
echo "     $rel/nats-1.log  $rel/nats-2.log  $rel/nats-3.log"
echo "     $rel/graphsim.log"
echo "     $rel/replica-a.log (pid ${pid[replica-a]})  $rel/replica-b.log (pid ${pid[replica-b]})"
echo "   Configurations: $rel/replica-a.hcl, $rel/replica-b.hcl (lease_ttl = \"$LEASE_TTL\", schedule = \"$SCHEDULE\")"
echo
echo "   Watch a failover, in a second shell (in $root):"
echo "     A=\"--config $rel/replica-a.hcl\"; B=\"--config $rel/replica-b.hcl\""
hint "bin/dirsync \$A status" "HELD BY: the replica running each connector (now $c: $holder)"
hint "bin/dirsync \$$O sync $c --wait" "asked of $other, run by $holder (forwarded)"
hint "kill -9 ${pid[$holder]}" "$holder, holding $c, crashes"
hint "watch -n1 bin/dirsync \$$O status" "within ~$LEASE_TTL $other holds $c, at a higher epoch"
hint "bin/dirsync \$$O sync $c --wait" "once it does: $other runs the syncs"
hint "bin/dirsync \$$O jobs" "a job the crash cut short ends FAILED \"lease lost: ...\""
hint "tail -f $rel/$other.log" "\"lease taken\", \"connector taken over\""
echo
echo "   This shell says when a replica exits$(! at_terminal || echo "; press Enter here to start the stopped replicas again")."
echo "   Ctrl-C stops the replicas, graphsim and the NATS servers."

# ---- in the foreground until Ctrl-C ----------------------------------------

restart_stopped() {
  local r
  for r in "${REPLICAS[@]}"; do
    if [ -z "${pid[replica-$r]-}" ]; then
      start_replica "$r"
      echo "   replica-$r runs again (pid ${pid[replica-$r]})"
    fi
  done
}
while [ "$stop_asked" = 0 ]; do
  for name in "${order[@]}"; do
    [ -n "${pid[$name]-}" ] || continue
    alive "$name" && continue
    reap "$name"
    case $name in
      replica-*)
        echo ">> $name exited ($ended): the other replica takes its connectors over within lease_ttl ($LEASE_TTL)."
        ! at_terminal || echo "   Press Enter here to start it again."
        ;;
      *) echo ">> $name exited ($ended): see $rel/$name.log" ;;
    esac
  done
  enter=0
  waiting=1
  if at_terminal; then
    ! read -r -t 1 _ || enter=1
  else
    sleep 1
  fi
  waiting=0
  [ "$stop_asked" = 1 ] || [ "$enter" = 0 ] || restart_stopped
done 2>/dev/null
cleanup 2>/dev/null
exec 2>/dev/null
exit 0
