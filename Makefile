# fleet: two commands for a newcomer.
#   make dev    builds fleetd and fleetctl into bin/ and runs a 3-machine local cluster
#   make test   gets everything the tests need (a real Consul), then vets and tests
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build dev test consul deps vet fmt-check

build:
	$(GO) build -o bin/fleetd ./cmd/fleetd
	$(GO) build -o bin/fleetctl ./cmd/fleetctl

dev: build
	bin/fleetd dev --machines 3

# consul builds the pinned Consul release into the user cache when no consul
# is found (CONSUL_BIN, PATH, cache); a few minutes, once per machine.
consul:
	@$(GO) run ./testcluster/ensureconsul >/dev/null

# deps installs the Debian packages the systemd-machine tests need. As root it
# installs them; otherwise those tests skip (and fail in CI, which runs as root).
deps:
	@if ! command -v systemd-nspawn >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing systemd-container (systemd-nspawn) for the systemd machine tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; \
		else \
			echo "systemd-nspawn missing and not root: the systemd machine tests will skip"; \
		fi; \
	fi

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: deps consul fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...
