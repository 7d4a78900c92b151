package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// platform is an operating system and architecture a release is built for.
type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "-" + p.arch }

// releasePlatforms are the platforms make release builds.
var releasePlatforms = []platform{{"linux", "amd64"}, {"linux", "arm64"}}

// sumsFile is the checksums file beside the tarballs.
const sumsFile = "SHA256SUMS"

// options is one release build.
type options struct {
	version    string     // vMAJOR.MINOR.PATCH[-suffix]
	out        string     // where the tarballs and SHA256SUMS go
	root       string     // the repository's top directory
	allowDirty bool       // build from a working tree with changes
	platforms  []platform // what to build for
}

// result is what a release build wrote, from what.
type result struct {
	src      source
	tarballs []string // file names in options.out, in platform order
}

// versionPattern is a release version: vMAJOR.MINOR.PATCH as semantic
// versioning writes them (no leading zeros), optionally with a suffix of
// letters, digits, dots and hyphens (-rc.1). Nothing else, since the
// version becomes part of file names and of the linker's flags.
var versionPattern = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?$`)

// checkVersion refuses a version make release should not build.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("VERSION is required: make release VERSION=v1.2.3")
	}
	if !versionPattern.MatchString(v) {
		return fmt.Errorf("VERSION %q is not a release version: give vMAJOR.MINOR.PATCH, optionally with a suffix of letters, digits, dots and hyphens (v1.2.3, v1.2.3-rc.1)", v)
	}
	return nil
}

// run builds the release o describes: checks, then the binaries and
// tarballs of every platform in a scratch directory, and only then
// replaces the release files in o.out.
func run(ctx context.Context, o options) (result, error) {
	if err := checkVersion(o.version); err != nil {
		return result{}, err
	}
	src, err := readSource(ctx, o.root, o.allowDirty)
	if err != nil {
		return result{}, err
	}
	scratch, err := os.MkdirTemp("", "fleet-release-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(scratch)
	r := result{src: src}
	for _, p := range o.platforms {
		name, err := buildPlatform(ctx, src, o.version, p, scratch)
		if err != nil {
			return result{}, err
		}
		r.tarballs = append(r.tarballs, name)
	}
	if err := writeSums(scratch, r.tarballs); err != nil {
		return result{}, err
	}
	if err := replaceRelease(o.out, scratch, append(r.tarballs, sumsFile)); err != nil {
		return result{}, err
	}
	return r, nil
}

// source is the tree a release is built from.
type source struct {
	root   string    // the repository's top directory, absolute
	commit string    // full hash of HEAD; "-dirty" added for a tree with changes
	time   time.Time // HEAD's commit time: every mtime in the tarballs
	files  []string  // contrib/'s files and README.md, as git tracks them, slash-separated
}

// readSource reads what the release is built from out of git, refusing a
// working tree with changes unless allowDirty.
func readSource(ctx context.Context, root string, allowDirty bool) (source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return source{}, err
	}
	src := source{root: abs}
	if src.commit, err = git(ctx, abs, "rev-parse", "--verify", "HEAD"); err != nil {
		return source{}, err
	}
	ct, err := git(ctx, abs, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return source{}, err
	}
	secs, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return source{}, fmt.Errorf("commit time %q of %s: %w", ct, src.commit, err)
	}
	src.time = time.Unix(secs, 0).UTC()
	status, err := git(ctx, abs, "status", "--porcelain")
	if err != nil {
		return source{}, err
	}
	if status != "" {
		if !allowDirty {
			n := strings.Count(status, "\n") + 1
			return source{}, fmt.Errorf("the working tree has changes (%d paths in git status --porcelain): commit or stash them, "+
				"or build anyway with ALLOW_DIRTY=1 (make release VERSION=... ALLOW_DIRTY=1), which stamps the commit as %s-dirty", n, src.commit)
		}
		src.commit += "-dirty"
	}
	files, err := git(ctx, abs, "ls-files", "--", "contrib", "README.md")
	if err != nil {
		return source{}, err
	}
	src.files = strings.Split(files, "\n")
	if !slices.Contains(src.files, "README.md") || !slices.Contains(src.files, "contrib/fleetd.service") {
		return source{}, fmt.Errorf("%s: git tracks no README.md or contrib/fleetd.service: is it fleet's repository?", abs)
	}
	return src, nil
}

// git runs git in dir and returns its output without the final newline.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\n"), nil
}
