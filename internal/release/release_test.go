package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository's top directory, seen from this package.
const repoRoot = "../.."

// member is one entry of a tarball as read back.
type member struct {
	hdr  *tar.Header
	data []byte
}

// readTarball reads every member of a gzipped tar, failing the test
// unless the gzip header has no name and no time.
func readTarball(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("%s: gzip header has name %q and time %v, want neither", path, zr.Name, zr.ModTime)
	}
	var ms []member
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h, data})
	}
}

// gitOut runs git in the repository and returns its trimmed output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(context.Background(), dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReproducibleRelease builds the release of this tree twice into two
// directories, as make release does (this command, built and run), and
// compares every byte, then checks what is in it: the tarballs' members
// and headers, SHA256SUMS, static binaries for each architecture, and,
// for this machine's architecture, fleetd and fleetctl saying the version
// and commit they were stamped with. The first run compiles for both
// architectures (minutes on two cores); after that go's build cache
// leaves mostly the linking. The command runs in a process of its own
// because make test runs this package under the race detector, which
// slows compressing the tarballs tenfold.
func TestReproducibleRelease(t *testing.T) {
	const version = "v0.0.1-test"
	tool := filepath.Join(t.TempDir(), "release")
	if out, err := exec.Command("go", "build", "-o", tool, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./internal/release: %v\n%s", err, out)
	}
	var commits [2]string
	var outs [2]string
	for i := range outs {
		outs[i] = t.TempDir()
		start := time.Now()
		out, err := exec.Command(tool, "-version", version, "-out", outs[i], "-root", repoRoot, "-allow-dirty").CombinedOutput()
		if err != nil {
			t.Fatalf("release: %v\n%s", err, out)
		}
		t.Logf("build %d: %s", i+1, time.Since(start).Round(time.Millisecond))
		m := regexp.MustCompile(`^fleet ` + regexp.QuoteMeta(version) + ` \(commit (\S+)\) in `).FindSubmatch(out)
		if m == nil {
			t.Fatalf("release printed no commit:\n%s", out)
		}
		commits[i] = string(m[1])
	}
	if commits[0] != commits[1] {
		t.Fatalf("the tree changed between the two builds: commit %s, then %s", commits[0], commits[1])
	}
	want := []string{"fleet-" + version + "-linux-amd64.tar.gz", "fleet-" + version + "-linux-arm64.tar.gz"}
	for i, out := range outs {
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if wantAll := append([]string{sumsFile}, want...); !slices.Equal(names, wantAll) {
			t.Fatalf("build %d wrote %v, want %v", i+1, names, wantAll)
		}
	}
	for _, name := range append(want, sumsFile) {
		a, errA := os.ReadFile(filepath.Join(outs[0], name))
		b, errB := os.ReadFile(filepath.Join(outs[1], name))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same tree (%d and %d bytes)", name, len(a), len(b))
		}
	}
	head := gitOut(t, repoRoot, "rev-parse", "HEAD")
	if commits[0] != head && commits[0] != head+"-dirty" {
		t.Fatalf("stamped commit %q, want %s with or without -dirty", commits[0], head)
	}
	checkSums(t, outs[0], want)
	for _, p := range releasePlatforms {
		checkTarball(t, filepath.Join(outs[0], "fleet-"+version+"-"+p.String()+".tar.gz"), version, commits[0], p)
	}
}

// checkSums checks that dir/SHA256SUMS lists exactly tarballs with their
// SHA-256, and that sha256sum -c, where installed, agrees.
func checkSums(t *testing.T, dir string, tarballs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, sumsFile))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, name := range tarballs {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, sum+"  "+name+"\n")
	}
	if want := strings.Join(lines, ""); string(b) != want {
		t.Errorf("%s:\n%s\nwant:\n%s", sumsFile, b, want)
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "-c", sumsFile)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c %s: %v\n%s", sumsFile, err, out)
		}
	}
}

// checkTarball checks one platform's tarball: its members in name order
// under one top directory (the binaries, README.md and contrib/ as git
// tracks them, byte for byte), their headers fixed, the binaries static
// ELF files of p's architecture, and, on a machine of that architecture,
// what they print for their version.
func checkTarball(t *testing.T, path, version, commit string, p platform) {
	t.Helper()
	top := "fleet-" + version + "-" + p.String() + "/"
	wantNames := []string{top, top + "README.md", top + "fleetctl", top + "fleetd"}
	dirs := map[string]bool{}
	for _, f := range strings.Split(gitOut(t, repoRoot, "ls-files", "contrib"), "\n") {
		wantNames = append(wantNames, top+f)
		for d := filepath.Dir(f); d != "."; d = filepath.Dir(d) {
			dirs[top+d+"/"] = true
		}
	}
	for d := range dirs {
		wantNames = append(wantNames, d)
	}
	slices.Sort(wantNames)
	ms := readTarball(t, path)
	var names []string
	for _, m := range ms {
		names = append(names, m.hdr.Name)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("%s holds\n%s\nwant\n%s", path, strings.Join(names, "\n"), strings.Join(wantNames, "\n"))
	}
	mtime := gitOut(t, repoRoot, "log", "-1", "--format=%ct", "HEAD")
	for _, m := range ms {
		h := m.hdr
		rel := strings.TrimPrefix(h.Name, top)
		wantMode := int64(0o644)
		if h.Typeflag == tar.TypeDir || rel == "fleetd" || rel == "fleetctl" {
			wantMode = 0o755
		}
		if h.Mode != wantMode || h.Uid != 0 || h.Gid != 0 || h.Uname != "root" || h.Gname != "root" || strconv.FormatInt(h.ModTime.Unix(), 10) != mtime {
			t.Errorf("%s: mode %o uid %d gid %d %s:%s mtime %d; want mode %o, root (0:0), mtime %s",
				h.Name, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime.Unix(), wantMode, mtime)
		}
		switch {
		case h.Typeflag == tar.TypeDir:
		case rel == "fleetd" || rel == "fleetctl":
			checkBinary(t, h.Name, m.data, version, commit, p)
		default:
			if disk, err := os.ReadFile(filepath.Join(repoRoot, rel)); err != nil || !bytes.Equal(disk, m.data) {
				t.Errorf("%s differs from the repository's %s (%v)", h.Name, rel, err)
			}
		}
	}
}

// elfMachine is the ELF machine of each release architecture.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkBinary checks that data is a static ELF executable for p and, when
// this machine is p, that run with --version it says version and commit.
func checkBinary(t *testing.T, name string, data []byte, version, commit string, p platform) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if f.Machine != elfMachine[p.arch] {
		t.Errorf("%s: ELF machine %v, want %v", name, f.Machine, elfMachine[p.arch])
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%v): a release's binaries are static", name, prog.Type)
		}
	}
	if p.os != runtime.GOOS || p.arch != runtime.GOARCH {
		return
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	want := filepath.Base(name) + " version " + version + " (commit " + commit + ", go"
	if err != nil || !strings.HasPrefix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("%s --version: %v %q, want one line starting %q", name, err, out, want)
	}
}
