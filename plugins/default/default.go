// Package defaultpolicy embeds fleet's default placement policy, built to
// WebAssembly from ./policy by go generate (see ./wasm). make test rebuilds
// it and fails if the committed default.wasm differs.
package defaultpolicy

import _ "embed"

//go:generate sh build.sh default.wasm

// Wasm is the default policy module.
//
//go:embed default.wasm
var Wasm []byte
