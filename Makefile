# fleet: two commands for a newcomer.
#   make dev    builds fleetd and fleetctl into bin/ and runs a 3-machine local cluster
#   make test   gets everything the tests need (a real Consul), then vets and tests
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build dev test consul vet fmt-check

build:
	$(GO) build -o bin/fleetd ./cmd/fleetd
	$(GO) build -o bin/fleetctl ./cmd/fleetctl

dev: build
	bin/fleetd dev --machines 3

# consul builds the pinned Consul release into the user cache when no consul
# is found (CONSUL_BIN, PATH, cache); a few minutes, once per machine.
consul:
	@$(GO) run ./testcluster/ensureconsul >/dev/null

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: consul fmt-check vet
	$(GO) test -count=1 -timeout 20m ./...
