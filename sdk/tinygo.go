//go:build tinygo

package sdk

// The SDK is built and tested with the standard Go toolchain only: its
// modules are Go reactors (-buildmode=c-shared) whose exports, runtime
// set-up and memory tuning fleetd relies on. Under TinyGo this file stops
// the build with an error that names what to do instead.
var _ = fleet_sdk_needs_the_standard_Go_toolchain__build_with__GOOS_wasip1_GOARCH_wasm_go_build_buildmode_c_shared
