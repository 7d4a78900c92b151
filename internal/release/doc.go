// Command release builds fleet's release archives: for each platform
// (linux/amd64, linux/arm64) a tarball fleet-<version>-linux-<arch>.tar.gz
// whose one top directory of the same name holds fleetd, fleetctl, the
// repository's contrib/ and README.md, and a SHA256SUMS over the tarballs
// that sha256sum -c reads. make release runs it:
//
//	make release VERSION=v1.2.3 [ALLOW_DIRTY=1]
//	go run ./internal/release -version v1.2.3 [-allow-dirty] [-out dist]
//
// The binaries are static (CGO_ENABLED=0), built with -trimpath and
// -buildvcs=false, and stamped with the version and the commit
// (internal/version). Two runs from the same commit with the same Go
// release write the same bytes: the tarballs are written here rather than
// by tar, with every header fixed (names sorted, the commit's time as
// every mtime, owner root, modes 0755 and 0644) and no name or time in the
// gzip header.
//
// A working tree with changes (git status --porcelain lists anything) is
// refused unless -allow-dirty, and then the commit is stamped
// "<hash>-dirty".
package main
