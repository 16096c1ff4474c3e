#!/usr/bin/env bash
# make run: graphsim (the simulated tenant), then dirsyncd on plugins.hcl,
# then the first sync of the demo connector. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

# dirsyncd refuses a data directory or a secret file that others can
# read: create the demo's owner-only (and tighten a ./data left by an
# older checkout: it holds only this demo's state).
umask 077
# graphsim keeps its tenant, with every change (churn, edits), in
# data/graphsim/tenant.json, beside the daemon's state in ./data: a second
# run serves the tenant the first one left, so the daemon's state still
# matches it and its sync changes nobody who did not change.
first_sync="first sync"
if [ -s data/graphsim/tenant.json ]; then
  first_sync="sync"
  echo ">> the demo goes on where the last run stopped: the simulated tenant as it was"
  echo "   (data/graphsim/tenant.json, with its changes) and the daemon's ./data. For a fresh demo: rm -rf data"
elif [ -d data/jetstream ]; then
  # A ./data from a checkout whose graphsim did not keep its tenant: that
  # tenant is gone, and a new one would not match the daemon's state (its
  # sync would archive and restore users that never changed).
  prev="data.prev-$(date +%Y%m%d-%H%M%S)"
  mv data "$prev"
  mkdir -p data/graphsim
  [ ! -e "$prev/graphsim/client-secret" ] || cp -p "$prev/graphsim/client-secret" data/graphsim/
  echo ">> ./data holds no saved simulated tenant (an older checkout), so the demo starts with fresh data:"
  echo "   the earlier ./data is now ./$prev (delete it when you no longer need it)"
else
  echo ">> fresh demo: a new simulated tenant (graphsim, seed 1, kept in data/graphsim/tenant.json) and a new ./data"
fi
mkdir -p data/graphsim
chmod 700 data data/graphsim
[ ! -e data/graphsim/client-secret ] || chmod 600 data/graphsim/client-secret
rm -f data/graphsim/ca.pem
# The api block's token: the web console's login and the HTTP API's
# bearer token. Written once, owner-only; never printed.
if [ ! -s data/api-token ]; then
  head -c 32 /dev/urandom | base64 > data/api-token
fi
chmod 600 data/api-token
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo ">> stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo ">> starting graphsim (simulated Entra tenant) on https://127.0.0.1:8943"
bin/graphsim -listen 127.0.0.1:8943 -users 250 -groups 20 -seed 1 \
  -client-secret-file data/graphsim/client-secret -ca-file data/graphsim/ca.pem \
  -state-file data/graphsim/tenant.json &
pids+=($!)
for _ in $(seq 100); do
  [ -s data/graphsim/ca.pem ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "graphsim exited; see its error above"; exit 1; }
  sleep 0.1
done
[ -s data/graphsim/ca.pem ] || { echo "graphsim did not start (is port 8943 in use?)"; exit 1; }

echo ">> starting dirsyncd --config plugins.hcl"
bin/dirsyncd --config plugins.hcl &
pids+=($!)
for _ in $(seq 300); do
  bin/dirsync status >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "dirsyncd exited; see its log above"; exit 1; }
  sleep 0.1
done

echo ">> $first_sync of connector demo"
bin/dirsync sync demo --wait || echo ">> the sync did not complete; see the reason above"
echo
echo ">> the web console: http://127.0.0.1:8470/console/ (log in with the token in data/api-token: cat data/api-token)"
echo ">> dirsyncd is running. In a second shell:"
echo "     bin/dirsync recipients list"
echo "     bin/dirsync status"
echo "     bin/dirsync sync demo --wait"
echo "   Ctrl-C stops graphsim and dirsyncd."
wait "${pids[1]}"
