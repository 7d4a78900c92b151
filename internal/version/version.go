// Package version is fleet's release version, set at build time with
// -ldflags "-X github.com/wasmfleet/fleet/internal/version.Version=...".
package version

// Version of fleetd and fleetctl.
var Version = "0.1.0-dev"
