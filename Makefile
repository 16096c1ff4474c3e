# dirsync: see README.md. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: all build run run-ad run-cluster test test-faults test-short bench fuzz proto lint clean graphsim-run console-screenshots

all: build

# The Azure AD connector compiles msgraph-sdk-go, which takes minutes and
# gigabytes from a cold cache; the other binaries never import it.
build:
	@mkdir -p $(BIN)
	@echo ">> building dirsyncd, dirsync, graphsim, dirsync-ldap, dirsync-faulty (fault tests), recipient-consumer (example)"
	$(GO) build -o $(BIN)/ ./daemon/cmd/dirsyncd ./daemon/cmd/dirsync ./connectors/cmd/graphsim ./connectors/cmd/dirsync-ldap ./connectors/cmd/dirsync-faulty ./examples/recipient-consumer
	@echo ">> building dirsync-azuread (compiles msgraph-sdk-go: 3-4 minutes and ~4.5 GB of memory on a cold cache; later builds take seconds)"
	@( while sleep 20; do echo "   ... still compiling the Azure AD connector"; done ) & ticker=$$!; \
	$(GO) build -o $(BIN)/ ./connectors/cmd/dirsync-azuread; rc=$$?; exec 2>/dev/null; pkill -P $$ticker; kill $$ticker; wait; exit $$rc
	@echo ">> built: $$(ls $(BIN) | tr '\n' ' ')"

# The nats-server of the cluster tests (internal/testenv.StartCluster), at
# go.mod's version: the distribution's package may be too old for atomic
# batches (2.12+). Tests build it themselves when it is missing or of
# another version; go.mod is a prerequisite so that a version bump
# rebuilds it.
$(BIN)/nats-server: go.mod go.sum
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

run: build
	@./scripts/run.sh

# make run's demo beside Active Directory: a Samba AD DC with the LDAP
# connector's demo directory (connectors/cmd/ldapdemo) on 127.0.0.N,
# graphsim, and dirsyncd with both connectors, in data/run-ad/. Needs
# Samba and root (port 389): it says so, and how to install Samba, before
# building anything.
run-ad:
	@./scripts/run-ad.sh --preflight
	@$(MAKE) --no-print-directory build
	$(GO) build -o $(BIN)/ldapdemo ./connectors/cmd/ldapdemo
	@./scripts/run-ad.sh

# Failover on one machine: three nats-server (bin/nats-server, go.mod's
# version), graphsim and two dirsyncd replicas, in data/run-cluster/.
run-cluster: build $(BIN)/nats-server
	@./scripts/run-cluster.sh

test: build
	./scripts/test.sh

# The web console's screenshots in docs/console, which README.md shows:
# its browser test (daemon/e2e TestConsoleInABrowser, in Debian's
# Chromium) saves one per step there. make test runs the same test and
# keeps its screenshots in a temporary folder.
console-screenshots: build
	DIRSYNC_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run '^TestConsoleInABrowser$$' ./daemon/e2e/

proto:
	protoc --proto_path=connectors/proto \
	  --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
	  --plugin=protoc-gen-go-grpc="$$($(GO) tool -n protoc-gen-go-grpc)" \
	  --go_out=. --go_opt=module=github.com/dirsync/dirsync \
	  --go-grpc_out=. --go-grpc_opt=module=github.com/dirsync/dirsync \
	  connector/v1/connector.proto

# The fault-injection suite at full size (FAULT_POINTS, FAULT_SEED) with
# its report in faults-report.md; `make test` runs it at CI size.
test-faults: build
	./scripts/test-faults.sh

# Every fuzz target for FUZZTIME each (default 10s); FUZZ_AZUREAD=1 adds
# the Graph page decoder (a second long compile).
fuzz:
	./scripts/fuzz.sh

# Full sizes: writes BENCHMARKS.md. The default BENCH_FLAGS add the
# 5,000,000-event stream to the start-to-ready rows: 3.6 GB of disk, and
# about 15 of the run's 25 minutes on an idle 2-core machine (twice that
# on a busy one); dirsync-bench's full preset stops at 1,000,000 events
# (about 10 minutes). Smaller:
#   make bench BENCH_FLAGS="-size tiny"   or   BENCH_FLAGS="-users 20000 -groups 1000"
BENCH_FLAGS ?= -events 100000,1000000,5000000
bench: build
	$(GO) run ./bench/cmd/dirsync-bench -bin $(BIN) $(BENCH_FLAGS)
	@echo ">> the web console's pages over 100,000 recipients (BENCHMARKS.md, console rows)"
	$(GO) test -run '^$$' -bench BenchmarkConsolePages -benchmem -count 5 ./daemon/console/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || (gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'); exit 1)
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	rm -rf $(BIN)
