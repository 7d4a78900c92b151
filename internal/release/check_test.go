package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		refused string // what the refusal says; "" when accepted
	}{
		{"v1.2.3", ""},
		{"v0.0.1-test", ""},
		{"v10.20.30-rc.1", ""},
		{"v1.2.3-beta-2", ""},
		{"", "VERSION is required: make release VERSION=v1.2.3"},
		{"1.2.3", "is not a release version"},
		{"v1.2", "is not a release version"},
		{"v1.2.3.4", "is not a release version"},
		{"v01.2.3", "is not a release version"},
		{"v1.2.3-", "is not a release version"},
		{"v1.2.3+build", "is not a release version"},
		{"v1.2.3-a/b", "is not a release version"},
		{"v1.2.3 -X x=y", "is not a release version"},
		{"latest", "is not a release version"},
	} {
		err := checkVersion(tc.version)
		if tc.refused == "" && err != nil || tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
			t.Errorf("checkVersion(%q) = %v, want %q", tc.version, err, tc.refused)
		}
	}
}

// TestReadSource reads a small repository of its own: the commit and its
// time, the files a release takes, and a working tree with changes
// (modified, or with a new file) refused or, when allowed, stamped -dirty.
func TestReadSource(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	gitIn := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=fleet", "-c", "user.email=fleet@example.com"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2001-02-03T04:05:06Z", "GIT_AUTHOR_DATE=2001-02-03T04:05:06Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn("init", "-q")
	write("README.md", "# fleet\n")
	write("contrib/fleetd.service", "[Service]\n")
	write("contrib/acl/agent.hcl", "# agent\n")
	write("main.go", "package main\n")
	gitIn("add", ".")
	gitIn("commit", "-q", "-m", "first")
	head := gitIn("rev-parse", "HEAD")

	src, err := readSource(ctx, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if src.commit != head || !src.time.Equal(time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)) {
		t.Errorf("commit %s at %v, want %s at 2001-02-03T04:05:06Z", src.commit, src.time, head)
	}
	if got := strings.Join(src.files, " "); got != "README.md contrib/acl/agent.hcl contrib/fleetd.service" {
		t.Errorf("files %q", got)
	}

	for _, change := range []struct{ name, body string }{{"main.go", "package main // changed\n"}, {"new.go", "package main\n"}} {
		write(change.name, change.body)
		_, err := readSource(ctx, dir, false)
		if err == nil || !strings.Contains(err.Error(), "ALLOW_DIRTY=1") || !strings.Contains(err.Error(), head+"-dirty") {
			t.Errorf("with %s changed: %v, want a refusal naming ALLOW_DIRTY=1 and %s-dirty", change.name, err, head)
		}
		if src, err := readSource(ctx, dir, true); err != nil || src.commit != head+"-dirty" {
			t.Errorf("with %s changed, allowed: commit %q, %v; want %s-dirty", change.name, src.commit, err, head)
		}
		gitIn("stash", "-q", "--include-untracked")
	}
	if _, err := readSource(ctx, t.TempDir(), true); err == nil {
		t.Error("a directory that is no git repository was read as a source")
	}
}

// TestReplaceRelease: the output directory's earlier release is replaced,
// and a directory holding anything else is refused with nothing removed.
func TestReplaceRelease(t *testing.T) {
	scratch, out := t.TempDir(), t.TempDir()
	put := func(dir, name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(out, "fleet-v0.9.0-linux-amd64.tar.gz", "old")
	put(out, sumsFile, "old sums")
	put(scratch, "fleet-v1.0.0-linux-amd64.tar.gz", "new")
	put(scratch, sumsFile, "new sums")
	if err := replaceRelease(out, scratch, []string{"fleet-v1.0.0-linux-amd64.tar.gz", sumsFile}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "SHA256SUMS fleet-v1.0.0-linux-amd64.tar.gz" {
		t.Errorf("out holds %s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(out, sumsFile)); string(b) != "new sums" {
		t.Errorf("SHA256SUMS is %q", b)
	}

	put(out, "notes.txt", "mine")
	put(scratch, "fleet-v1.0.1-linux-amd64.tar.gz", "newer")
	err := replaceRelease(out, scratch, []string{"fleet-v1.0.1-linux-amd64.tar.gz"})
	if err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("an output directory holding notes.txt: %v, want a refusal naming it", err)
	}
	if _, err := os.Stat(filepath.Join(out, "fleet-v1.0.0-linux-amd64.tar.gz")); err != nil {
		t.Errorf("the refused release removed the earlier one: %v", err)
	}
}
