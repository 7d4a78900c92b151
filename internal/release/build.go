package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// versionPackage is where the linker stamps the version and commit.
const versionPackage = "github.com/wasmfleet/fleet/internal/version"

// binaries are the commands a release holds, each built from ./cmd/<name>.
var binaries = []string{"fleetd", "fleetctl"}

// buildPlatform builds the binaries for p into scratch/<top>/ and writes
// the tarball scratch/<top>.tar.gz, returning its file name.
func buildPlatform(ctx context.Context, src source, version string, p platform, scratch string) (string, error) {
	top := "fleet-" + version + "-" + p.String()
	bin := filepath.Join(scratch, top)
	if err := os.Mkdir(bin, 0o755); err != nil {
		return "", err
	}
	entries := []entry{{name: top + "/", dir: true}}
	for _, name := range binaries {
		if err := goBuild(ctx, src, version, p, name, filepath.Join(bin, name)); err != nil {
			return "", err
		}
		entries = append(entries, entry{name: top + "/" + name, path: filepath.Join(bin, name), exec: true})
	}
	files, err := sourceEntries(src, top)
	if err != nil {
		return "", err
	}
	name := top + ".tar.gz"
	if err := writeTarball(filepath.Join(scratch, name), append(entries, files...), src.time); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return name, nil
}

// goBuild builds ./cmd/<name> for p into path, static and stamped.
//
// The environment is pinned where it would change the bytes: no cgo, the
// baseline instruction set of each architecture (GOAMD64=v1,
// GOARM64=v8.0), so the binaries run on every machine of it, and no
// GOFLAGS from the caller.
func goBuild(ctx context.Context, src source, version string, p platform, name, path string) error {
	ldflags := fmt.Sprintf("-s -w -X %s.Version=%s -X %s.Commit=%s", versionPackage, version, versionPackage, src.commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", path, "./cmd/"+name)
	cmd.Dir = src.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %w\n%s", name, p, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sourceEntries are the tarball's entries for src.files under top: each
// file, and each directory that holds one, with a mode from the file's
// executable bit (the one git checked out).
func sourceEntries(src source, top string) ([]entry, error) {
	var entries []entry
	dirs := map[string]bool{}
	for _, f := range src.files {
		for d := filepath.ToSlash(filepath.Dir(f)); d != "." && !dirs[d]; d = filepath.ToSlash(filepath.Dir(d)) {
			dirs[d] = true
			entries = append(entries, entry{name: top + "/" + d + "/", dir: true})
		}
		path := filepath.Join(src.root, filepath.FromSlash(f))
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file: a release holds only files and directories", path)
		}
		entries = append(entries, entry{name: top + "/" + f, path: path, exec: fi.Mode()&0o111 != 0})
	}
	return entries, nil
}
