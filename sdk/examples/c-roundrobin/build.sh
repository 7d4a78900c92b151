#!/bin/sh
# Builds policy.c into a fleet placement policy: c-roundrobin.wasm here, or
# the path given. Needs Debian's clang, lld and wasi-libc
# (apt-get install clang lld wasi-libc); WASI_SYSROOT names another sysroot,
# such as wasi-sdk's share/wasi-sysroot, and CLANG another compiler.
#
#   -mexec-model=reactor  no main: crt1-reactor.o exports _initialize, which
#                         fleetd runs once per instance, and the exports are
#                         not wrapped in constructor/destructor calls
#   -nodefaultlibs -lc    libc (malloc, memcmp) but not compiler-rt's
#                         builtins, which Debian ships in another package and
#                         this code does not need
#   --strip-all           no names section: a smaller module
set -eu
out=${1:-c-roundrobin.wasm}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")"
clang=${CLANG:-clang}
sysroot=${WASI_SYSROOT:-/usr}
if ! command -v "$clang" >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
	echo "build.sh: clang or wasm-ld not found: install Debian's clang and lld (apt-get install clang lld wasi-libc)" >&2
	exit 1
fi
if [ ! -f "$sysroot/lib/wasm32-wasi/libc.a" ]; then
	echo "build.sh: no WASI libc in $sysroot/lib/wasm32-wasi: install Debian's wasi-libc (apt-get install wasi-libc) or set WASI_SYSROOT" >&2
	exit 1
fi
exec "$clang" --target=wasm32-wasi --sysroot="$sysroot" -O2 -Wall -Wextra -Werror \
	-mexec-model=reactor -nodefaultlibs -Wl,--strip-all \
	-o "$out" policy.c -lc
