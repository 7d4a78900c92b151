# fleet: two commands for a newcomer.
#   make dev    builds fleetd and fleetctl into bin/ and runs a 3-machine local cluster
#   make test   gets everything the tests need (a real Consul), then vets and tests
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build dev test consul deps vet fmt-check wasm-check reliability fuzz

build:
	$(GO) build -o bin/fleetd ./cmd/fleetd
	$(GO) build -o bin/fleetctl ./cmd/fleetctl

dev: build
	bin/fleetd dev --machines 3

# consul builds the pinned Consul release into the user cache when no consul
# is found (CONSUL_BIN, PATH, cache); a few minutes, once per machine.
consul:
	@$(GO) run ./testcluster/ensureconsul >/dev/null

# deps installs the Debian packages the tests need: systemd-container for the
# systemd machines, iptables to cut one off the network, wabt for the
# hand-written WebAssembly test policies, clang, lld and wasi-libc for the
# example policy written in C.
deps:
	@missing=""; \
	command -v systemd-nspawn >/dev/null 2>&1 || missing="$$missing systemd-container"; \
	command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	command -v wat2wasm >/dev/null 2>&1 || missing="$$missing wabt"; \
	command -v clang >/dev/null 2>&1 || missing="$$missing clang"; \
	command -v wasm-ld >/dev/null 2>&1 || missing="$$missing lld"; \
	[ -e /usr/lib/wasm32-wasi/libc.a ] || missing="$$missing wasi-libc"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing for the systemd machine and policy tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing$$missing and not root: install them (sudo apt-get install$$missing)"; \
		fi; \
	fi

# wasm-check rebuilds the default policy and fails if the committed module
# differs from its source (run go generate ./plugins/default to update it).
wasm-check:
	@tmp=$$(mktemp -d) && sh plugins/default/build.sh $$tmp/default.wasm && \
	if cmp -s $$tmp/default.wasm plugins/default/default.wasm; then rm -rf $$tmp; \
	else rm -rf $$tmp; echo "plugins/default/default.wasm is stale: run go generate ./plugins/default"; exit 1; fi

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

test: deps consul fmt-check vet wasm-check
	$(GO) test -count=1 -timeout 40m ./...
	cd sdk && $(GO) test -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s

# fuzz runs every fuzz target for FUZZTIME each (make test: 10s; SECURITY.md
# records the long runs). A finding is written to the package's
# testdata/fuzz/ and fails the run.
FUZZTIME ?= 10m
FUZZ_TARGETS = ./internal/unitfile:FuzzParse ./internal/unitfile:FuzzValidateName \
	./internal/registry:FuzzAssemble sdk/wire:FuzzDecodeRequest sdk/wire:FuzzDecodeDecision sdk:FuzzApply
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		case $$pkg in sdk/*) dir=sdk; pkg=./$${pkg#sdk/};; sdk) dir=sdk; pkg=.;; *) dir=.;; esac; \
		echo "fuzz $$name ($$dir $$pkg, $(FUZZTIME))"; \
		(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg); done

# reliability runs the whole fault suite at full length on real systemd
# machines (root; about 17 minutes) and writes its figures to
# reliability.txt, from which RELIABILITY.md's tables come. make test runs
# the same tests shorter. FLEET_GOSSIP=fast measures with the recommended
# Consul gossip settings instead of Consul's defaults.
reliability: deps consul
	rm -f reliability.txt
	FLEET_TRIALS=10 FLEET_OUTAGE=60s FLEET_FAULT_DURATION=10m FLEET_RELIABILITY_OUT=$(CURDIR)/reliability.txt \
		$(GO) test -count=1 -timeout 60m -v \
		-run 'TestFailoverTimes|TestConsulOutage|TestConsulServerRestart|TestPartitionedMachine|TestReturningMachineStopsStaleCopyFirst|TestRandomFaults' \
		./cmd/fleetctl/
	cat reliability.txt
