// Package version is fleet's release version and the commit it was built
// from, set at build time with
//
//	-ldflags "-X github.com/wasmfleet/fleet/internal/version.Version=v1.2.3
//	          -X github.com/wasmfleet/fleet/internal/version.Commit=<hash>"
//
// as make release does.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version of fleetd and fleetctl.
var Version = "0.1.0-dev"

// Commit is the full hash of the commit fleetd and fleetctl were built
// from, with "-dirty" when the working tree had changes. Left unset by
// ldflags, it is what go build recorded (vcs.revision and vcs.modified),
// else "unknown": go run and go test record none.
var Commit string

func init() {
	if Commit == "" {
		Commit = buildCommit()
	}
}

// buildCommit is the commit go build stamped into the binary, or "unknown".
func buildCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return commitOf(info.Settings)
}

// commitOf is the commit that build settings record, or "unknown".
func commitOf(settings []debug.BuildSetting) string {
	rev, dirty := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return "unknown"
	case dirty:
		return rev + "-dirty"
	}
	return rev
}

// String is the version on one line, with the commit and the Go release
// the binary was built with: "v1.2.3 (commit 0123abc..., go1.26.7)".
func String() string {
	return Version + " (commit " + Commit + ", " + runtime.Version() + ")"
}
