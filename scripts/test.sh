#!/usr/bin/env bash
# make test: formatting, vet, and every test (unit, plugin subprocess,
# end-to-end through graphsim and a real JetStream server).
set -euo pipefail
cd "$(dirname "$0")/.."

bad=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi
echo ">> go vet"
go vet ./...
echo ">> go test (the first run compiles msgraph-sdk-go for the Azure AD connector: minutes)"
go test -count=1 -timeout 15m ./...
echo ">> fuzzing, 5 s per target (make fuzz FUZZTIME=10m for longer)"
FUZZTIME=5s ./scripts/fuzz.sh
