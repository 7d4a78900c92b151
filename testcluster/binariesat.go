package testcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// BinariesAt returns fleetd and fleetctl built from an earlier commit of
// this repository, for tests that run old and new releases side by side
// (a rolling upgrade). Their version is v0.0.0-<the commit's first 12 hex
// digits>, so a machine running one is told apart from one running the
// tree's build (Main's).
//
// The first call for a commit checks it out in a detached git worktree
// and builds both there (static, without the caller's GOFLAGS) into the
// user cache, not under /tmp, where systemd boxes see a fresh tmpfs:
// ~/.cache/fleet/at-<commit>/bin. Later calls, in this process or another,
// reuse that build. A build that was interrupted is not taken for done: the
// binaries are built in a temporary directory renamed into place, and a
// lock file keeps two test processes from building one commit at once.
//
// # Errors
//
// A commit the repository lacks (a clone made with --depth) is fetched
// from its origin first; it fails the test when that fails too.
func BinariesAt(t testing.TB, commit string) (fleetd, fleetctl string) {
	t.Helper()
	dir, err := buildAt(commit)
	if err != nil {
		t.Fatalf("testcluster: fleetd and fleetctl at %s: %v", commit, err)
	}
	return filepath.Join(dir, "fleetd"), filepath.Join(dir, "fleetctl")
}

// buildAt returns the directory holding fleetd and fleetctl built from
// commit, building them first if no earlier run did.
func buildAt(commit string) (string, error) {
	root, err := git("", "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("find the repository from the test's directory: %w", err)
	}
	full, err := git(root, "rev-parse", "--verify", "--quiet", commit+"^{commit}")
	if err != nil {
		full, err = fetchCommit(root, commit)
	}
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	at := filepath.Join(cache, "fleet", "at-"+full[:12])
	bin := filepath.Join(at, "bin")
	return bin, buildOnce(bin, func() bool { return built(bin) }, func(tmp string) error {
		return buildInWorktree(root, full, at, tmp)
	})
}

// fetchCommit fetches commit from the repository's origin, as a clone
// made with --depth lacks it (CI's may), and returns its full hash.
func fetchCommit(root, commit string) (string, error) {
	fetch := []string{"fetch", "--quiet", "origin"}
	if shallow, _ := git(root, "rev-parse", "--is-shallow-repository"); shallow == "true" {
		fetch = append(fetch, "--unshallow")
	}
	if _, err := git(root, fetch...); err != nil {
		return "", fmt.Errorf("commit %s is not in %s, and fetching it failed (%v): git fetch --unshallow, or fetch the branch that has it", commit, root, err)
	}
	full, err := git(root, "rev-parse", "--verify", "--quiet", commit+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("commit %s is in neither %s nor its origin: fetch the branch that has it", commit, root)
	}
	return full, nil
}

// built reports whether dir holds both binaries: it exists only once a
// build finished (buildOnce renames it into place).
func built(dir string) bool {
	for _, name := range []string{"fleetd", "fleetctl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// buildInWorktree checks commit out in a detached worktree of the
// repository at root, under at, builds fleetd and fleetctl there into
// dir, and removes the worktree.
func buildInWorktree(root, commit, at, dir string) error {
	src := filepath.Join(at, "src")
	// What an interrupted build left, if anything.
	_, _ = git(root, "worktree", "remove", "--force", src)
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	_, _ = git(root, "worktree", "prune")
	if _, err := git(root, "worktree", "add", "--detach", src, commit); err != nil {
		return err
	}
	defer func() { _, _ = git(root, "worktree", "remove", "--force", src) }()
	const pkg = "github.com/wasmfleet/fleet/internal/version"
	ldflags := fmt.Sprintf("-X %s.Version=v0.0.0-%s -X %s.Commit=%s", pkg, commit[:12], pkg, commit)
	for _, name := range []string{"fleetd", "fleetctl"} {
		cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s at %s: %v\n%s", name, commit, err, out)
		}
	}
	return nil
}

// buildOnce makes dir, a directory of the user cache that a build fills,
// once per machine: done reports whether it is there, and build fills
// tmp, a fresh directory beside dir that then takes dir's place in one
// rename, so a build cut short leaves nothing done would take for
// finished. Builds of one dir at once, in this process or another, wait
// for each other (a lock file beside it), and the one that waited finds
// the work done; what an interrupted build left beside dir is removed.
func buildOnce(dir string, done func() bool, build func(tmp string) error) error {
	if done() {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if done() { // built by another while this one waited
		return nil
	}
	partial, _ := filepath.Glob(dir + ".building-*")
	for _, p := range partial {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".building-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// lockFile takes an exclusive lock on path, waiting for another process
// that holds it, and returns its release. The kernel releases it if this
// process dies.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// git runs git in dir (the current directory when "") and returns its
// trimmed standard output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
