#!/usr/bin/env bash
# make fuzz: run every fuzz target for FUZZTIME each (default 10s; make
# test runs 5s). The seed corpora (f.Add and testdata/fuzz) also run in
# every plain `go test`. A finding is written to the package's
# testdata/fuzz/<Target>/ and fails the run: commit it with the fix.
#
# FuzzDeltaPages (connectors/azuread) is skipped unless FUZZ_AZUREAD=1:
# fuzzing instruments msgraph-sdk-go too, a second multi-minute compile.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10s}
targets=(
  "./events FuzzDecode"
  "./projections FuzzApply"
  "./daemon/config FuzzParse"
  "./daemon/api FuzzRequests"
)
if [ "${FUZZ_AZUREAD:-0}" = 1 ]; then targets+=("./connectors/azuread FuzzDeltaPages"); fi
for entry in "${targets[@]}"; do
  set -- $entry
  echo ">> fuzz $2 ($1) for $t"
  go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" "$1" 2>&1 | grep -v '^fuzz: elapsed' || { echo "fuzz $2 failed"; exit 1; }
done
