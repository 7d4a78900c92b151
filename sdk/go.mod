module github.com/wasmfleet/fleet/sdk

go 1.26
