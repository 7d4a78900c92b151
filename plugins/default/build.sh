#!/bin/sh
# Builds the default policy to WebAssembly, reproducibly: the same source and
# Go toolchain give the same bytes (no paths, no VCS stamp, no build ID).
set -eu
out=$1
cd "$(dirname "$0")"
GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath -buildvcs=false \
	-ldflags='-s -w -buildid=' -o "$out" ./wasm
