# fleet: two commands for a newcomer.
#   make dev    builds fleetd and fleetctl into bin/, gets a consul (make consul)
#               and runs a 3-machine local cluster
#   make test   gets everything the tests need (a real Consul, fleet v1.0.0's
#               own fleetctl), then vets and tests
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build dev test test-busy reliability-long consul origfleet deps vet fmt-check wasm-check link-check reliability bench bench-quick bench-large bench-systemd fuzz release

build:
	$(GO) build -o bin/fleetd ./cmd/fleetd
	$(GO) build -o bin/fleetctl ./cmd/fleetctl

dev: build consul
	bin/fleetd dev --machines 3

# release writes fleet's release for VERSION into dist/, replacing the one
# there: for linux/amd64 and linux/arm64 a tarball
# fleet-VERSION-linux-ARCH.tar.gz whose top directory of that name holds
# fleetd and fleetctl (static, stamped with VERSION and the commit), contrib/
# and README.md, and SHA256SUMS over the tarballs (sha256sum -c reads it).
#   make release VERSION=v1.2.3 [ALLOW_DIRTY=1]
# VERSION is vMAJOR.MINOR.PATCH, optionally with a -suffix. A working tree
# with changes is refused unless ALLOW_DIRTY=1, which stamps the commit as
# <hash>-dirty. Two runs from one commit with one Go release write the same
# bytes; internal/release writes the tarballs, and its test builds twice
# and compares.
release:
	@$(GO) build -o bin/release ./internal/release
	@bin/release -version '$(VERSION)' -out dist $(if $(filter 1,$(ALLOW_DIRTY)),-allow-dirty)

# consul builds the pinned Consul release into the user cache when no consul
# is found (CONSUL_BIN, PATH, cache); a few minutes, once per machine.
# fleetd dev only looks for one: make dev depends on this target.
consul:
	@$(GO) run ./testcluster/ensureconsul >/dev/null

# origfleet builds CoreOS fleet v1.0.0's own fleetctl from the Go module
# proxy into the user cache (~/.cache/fleet/origfleet-v1.0.0/), once per
# machine: the fleet HTTP API tests drive it (docs/migrating.md).
origfleet:
	@$(GO) run ./testcluster/ensureorigfleet >/dev/null

# deps installs the Debian packages the tests need: systemd-container for the
# systemd machines, iptables to cut one off the network, wabt for the
# hand-written WebAssembly test policies, clang, lld and wasi-libc for the
# example policy written in C, gcc and libc6-dev for the race detector (cgo).
deps:
	@missing=""; \
	command -v systemd-nspawn >/dev/null 2>&1 || missing="$$missing systemd-container"; \
	command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"; \
	command -v wat2wasm >/dev/null 2>&1 || missing="$$missing wabt"; \
	command -v clang >/dev/null 2>&1 || missing="$$missing clang"; \
	command -v wasm-ld >/dev/null 2>&1 || missing="$$missing lld"; \
	[ -e /usr/lib/wasm32-wasi/libc.a ] || missing="$$missing wasi-libc"; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	[ -e /usr/include/stdio.h ] || missing="$$missing libc6-dev"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing$$missing for the systemd machine, policy and race-detector tests"; \
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

# link-check fails when a production binary links test machinery: package
# testing, or testcluster (the test clusters and the Consul build). It reads
# the symbols the linker kept, so it sees what is in the binary, not what
# some file imports. fleetd dev's clusters are internal/devcluster's.
LINK_FORBIDDEN = testing github.com/wasmfleet/fleet/testcluster
link-check: build
	@bad=0; for bin in bin/fleetd bin/fleetctl; do \
		$(GO) tool nm $$bin > $$bin.nm || exit 1; \
		for pkg in $(LINK_FORBIDDEN); do \
			found=$$(awk -v p="$$pkg" 'index($$NF, p ".") == 1 || index($$NF, p "/") == 1 { print $$NF }' $$bin.nm | head -n 5); \
			if [ -n "$$found" ]; then bad=1; \
				echo "$$bin links $$pkg, which is for tests only; symbols such as:"; printf '  %s\n' $$found; \
				echo "  see which package imports it: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/$${bin#bin/} | grep '$$pkg[] ]'"; \
			fi; \
		done; rm -f $$bin.nm; \
	done; exit $$bad

# RACE_PKGS are the packages whose tests need neither root nor systemd
# machines: make test runs them (and the SDK) under the race detector, the
# rest without it; make test-busy runs them under the race detector while
# every core is kept busy.
RACE_PKGS = ./policies/... ./leader/... ./agent/... ./internal/... ./plugins/...
RACE_RE = ^github.com/wasmfleet/fleet/(policies|leader|agent|internal|plugins)(/|$$)
test: deps consul origfleet fmt-check vet wasm-check link-check
	$(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v -E '$(RACE_RE)')
	$(GO) test -race -count=1 -timeout 40m $(RACE_PKGS)
	cd sdk && $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=200000x

# test-busy runs RACE_PKGS and the SDK under the race detector three times
# in a row while CPU hogs, one busy shell loop per core, keep every core
# busy: what a shared CI machine does to a test's timing. The hogs are
# stopped by PID when it ends, green or not.
test-busy: deps consul
	@set -e; hogs=; for i in $$(seq $$(nproc)); do sh -c 'while :; do :; done' & hogs="$$hogs $$!"; done; \
	trap 'kill $$hogs' EXIT; \
	for run in 1 2 3; do echo "== run $$run of 3, $$(nproc) CPU hogs (PIDs$$hogs)"; \
		$(GO) test -race -count=1 -timeout 60m $(RACE_PKGS); \
		(cd sdk && $(GO) test -race -count=1 ./...); done

# fuzz runs every fuzz target for FUZZTIME each (make test: 200,000 inputs,
# 2 to 15 seconds each here; SECURITY.md records the long runs). A finding
# is written to the package's testdata/fuzz/ and fails the run. make test
# counts inputs rather than seconds: with a duration, Go 1.26's fuzzing
# coordinator can fail a run that found nothing at the deadline
# (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 10m
FUZZ_TARGETS = ./internal/unitfile:FuzzParse ./internal/unitfile:FuzzValidateName \
	./internal/registry:FuzzAssemble ./internal/registry:FuzzDecodeKVList ./internal/registry:FuzzDecodeTxnAnswer sdk/wire:FuzzDecodeRequest sdk/wire:FuzzDecodeDecision sdk:FuzzApply
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		case $$pkg in sdk/*) dir=sdk; pkg=./$${pkg#sdk/};; sdk) dir=sdk; pkg=.;; *) dir=.;; esac; \
		echo "fuzz $$name ($$dir $$pkg, $(FUZZTIME))"; \
		(cd $$dir && $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg); done

# reliability runs the fault suites (testcluster/reliability) at full
# length on real systemd machines (root; about 17 minutes) and writes their
# figures to reliability.txt, from which RELIABILITY.md's tables come. make
# test runs the same tests shorter. FLEET_GOSSIP=fast measures with the recommended
# Consul gossip settings instead of Consul's defaults.
reliability: deps consul
	rm -f reliability.txt
	FLEET_TRIALS=10 FLEET_OUTAGE=60s FLEET_FAULT_DURATION=10m FLEET_RELIABILITY_OUT=$(CURDIR)/reliability.txt \
		$(GO) test -count=1 -timeout 60m -v \
		-run 'TestFailoverTimes|TestConsulOutage|TestConsulServerRestart|TestConsulServerFaults|TestPartitionedMachine|TestReturningMachineStopsStaleCopyFirst|TestRandomFaults' \
		./testcluster/reliability/
	cat reliability.txt

# reliability-long runs the randomized fault suite (TestRandomFaults: four
# systemd machines, three Consul servers) for 60 minutes and writes its
# result (seed, faults injected by kind, invariant violations, units lost)
# to reliability-long.txt, from which RELIABILITY.md's record comes.
reliability-long: deps consul
	rm -f reliability-long.txt
	FLEET_FAULT_DURATION=60m FLEET_RELIABILITY_OUT=$(CURDIR)/reliability-long.txt \
		$(GO) test -count=1 -timeout 100m -v -run '^TestRandomFaults$$' ./testcluster/reliability/
	cat reliability-long.txt

# bench-quick is a reduced end-to-end scale run (100 simulated machines,
# 1,000 units) against a real Consul: well under two minutes here. Its last
# line is "placements_per_second N". Its simulated machines are spread over
# scalebench's default of 50 Consul client agents, as make bench's are.
bench-quick: build consul
	@$(GO) build -o bin/scalebench ./testcluster/scalebench
	bin/scalebench -machines 100 -units 1000 -fleetd bin/fleetd -fleetctl bin/fleetctl

# bench runs the measurements behind BENCHMARKS.md and writes every table
# to bench.txt: 1,000 simulated machines with 100, 1,000 and 10,000 units,
# with the default policy as WebAssembly and its native build, then the
# policy benchmarks, the list commands, the transactions' size, a
# machine's publishing of its units' states, and (as
# root, with systemd-nspawn) the idle agent's CPU. About 30 minutes on 2
# cores.
# Consul is a single-node server as a cluster runs one (its data in
# /dev/shm), not dev mode, which pretty-prints every answer; scalebench
# -consul-dev measures against dev mode.
# The simulated machines are spread over 50 real Consul client agents (20
# machines each), as a real cluster has an agent per machine, holding its
# session and heartbeat check and forwarding its requests (BENCHMARKS.md).
# Their heartbeat TTL is raised from the harness's 30s to 120s and the real
# fleetds' from 10s to 60s: two cores run 51 Consul processes, 1,000
# simulated machines and both fleetds, and fleetd's default TTLs leave no
# margin for that.
BENCH_UNITS ?= 100 1000 10000
BENCH_POLICIES ?= default native
BENCH_FLAGS ?= -consul-agents 50 -ttl 120s -fleetd-ttl 60s
bench: build consul deps
	@$(GO) build -o bin/scalebench ./testcluster/scalebench
	rm -f bench.txt
	@for u in $(BENCH_UNITS); do for p in $(BENCH_POLICIES); do \
		echo "== scale: 1000 simulated machines, $$u units, policy $$p" | tee -a bench.txt; \
		bin/scalebench -machines 1000 -units $$u -policy $$p $(BENCH_FLAGS) -fleetd bin/fleetd -fleetctl bin/fleetctl >> bench.txt || exit 1; \
		tail -n 21 bench.txt; \
	done; done
	echo "== go test -run '^$$' -bench 'Placement|Load' -count 6 ./policies/" | tee -a bench.txt
	$(GO) test -run '^$$' -bench 'Placement|Load' -count 6 ./policies/ | tee -a bench.txt
	echo "== go test -run '^$$' -bench '^BenchmarkList$$' -count 6 ./cmd/fleetctl/" | tee -a bench.txt
	$(GO) test -run '^$$' -bench '^BenchmarkList$$' -count 6 ./cmd/fleetctl/ | tee -a bench.txt
	echo "== go test -run '^$$' -bench '^BenchmarkWait$$' -benchtime 5x -count 6 ./cmd/fleetctl/" | tee -a bench.txt
	$(GO) test -run '^$$' -bench '^BenchmarkWait$$' -benchtime 5x -count 6 ./cmd/fleetctl/ | tee -a bench.txt
	echo "== go test -run '^$$' -bench TxnOps -benchtime 5x -count 6 ./internal/registry/" | tee -a bench.txt
	$(GO) test -run '^$$' -bench TxnOps -benchtime 5x -count 6 ./internal/registry/ | tee -a bench.txt
	echo "== go test -run '^$$' -bench Publish -benchtime 5x -count 6 ./agent/" | tee -a bench.txt
	$(GO) test -run '^$$' -bench Publish -benchtime 5x -count 6 ./agent/ | tee -a bench.txt
	@if [ "$$(id -u)" = 0 ] && command -v systemd-nspawn >/dev/null 2>&1; then \
		echo "== go test -run '^$$' -bench IdleAgent -benchtime 30x -count 3 ./cmd/fleetctl/" | tee -a bench.txt; \
		$(GO) test -run '^$$' -bench IdleAgent -benchtime 30x -count 3 ./cmd/fleetctl/ | tee -a bench.txt; \
	else echo "skipping BenchmarkIdleAgent: it needs root and systemd-nspawn (make deps)"; fi

# bench-large is one long scale run past fleet's own: 100,000 units on
# 5,000 simulated machines spread over 50 Consul client agents (100 each),
# written to bench-large.txt. It needs about 13 GiB of memory (a client
# agent holds 100-130 MB) and about 15 minutes on 2 cores: the machines
# join in 3 minutes, and placement is bound by the CPU the Consul
# processes take (BENCHMARKS.md says where the time goes). fleetctl
# starts 5,000 units per command, twenty commands in all. The heartbeats'
# TTLs are raised again (machines 300s, the real fleetds 120s): 5,000
# machines' renewals and a leader reading 100,000 units share the two
# cores with 51 Consul processes. The idle cluster is watched for 30 s, its traffic being
# bursty at this size, and Consul given 10 minutes to settle, which
# covers the client agents' deferred check syncs.
BENCH_LARGE_TIMEOUT ?= 120m
BENCH_LARGE_FLAGS ?= -machines 5000 -units 100000 -consul-agents 50 -ttl 300s -fleetd-ttl 120s -chunk 5000 -baseline 30s -settle 10m
bench-large: build consul
	@$(GO) build -o bin/scalebench ./testcluster/scalebench
	@bin/scalebench $(BENCH_LARGE_FLAGS) -timeout $(BENCH_LARGE_TIMEOUT) -fleetd bin/fleetd -fleetctl bin/fleetctl > bench-large.txt; \
		st=$$?; cat bench-large.txt; exit $$st

# bench-systemd (root, systemd-nspawn) starts 1000 template instances on 3
# real systemd machines with fleetctl and, in the same iteration, straight
# through each machine's systemd (the floor), and prints both with their
# ratio, then fleet's stop and destroy times (BENCHMARKS.md). About 5
# minutes. FLEET_BENCH_UNITS sets the number of units.
BENCH_SYSTEMD_COUNT ?= 3
bench-systemd: build consul deps
	$(GO) test -run '^$$' -bench SystemdStart -benchtime 1x -count $(BENCH_SYSTEMD_COUNT) -timeout 60m ./testcluster/throughput/ | tee bench-systemd.txt
