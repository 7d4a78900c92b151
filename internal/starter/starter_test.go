package starter

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/policies"
	"github.com/wasmfleet/fleet/sdk/wire"
)

var update = flag.Bool("update", false, "write sdk.txtar from the repository's sdk/")

// sdkSource is what a policy needs of the repository's sdk/: its go.mod
// and the non-test Go files of every package but the examples and the
// native runner, which only fleetd uses.
func sdkSource(t *testing.T) map[string][]byte {
	t.Helper()
	root := filepath.Join("..", "..", "sdk")
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() {
			if rel == "examples" || rel == "native" || e.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel != "go.mod" && (!strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go")) {
			return nil
		}
		b, err := os.ReadFile(p)
		files[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestSDKCopyCurrent: the SDK fleetctl writes is the repository's, file for
// file. go generate ./internal/starter writes it again.
func TestSDKCopyCurrent(t *testing.T) {
	want := sdkSource(t)
	if *update {
		if err := os.WriteFile("sdk.txtar", formatArchive(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := parseArchive(sdkArchive)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("sdk.txtar's %s differs from sdk/%s: run go generate ./internal/starter", name, name)
		}
	}
	for name := range got {
		if want[name] == nil {
			t.Errorf("sdk.txtar has %s, which sdk/ does not: run go generate ./internal/starter", name)
		}
	}
}

// goIn runs the go command in dir as an author outside this repository
// would, with no network: everything must come from the module itself.
func goIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=", "GOWORK=off")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestNewPolicyBuildsOffline: a new policy's tests pass, it builds into a
// module fleetd loads, and that module places as its test says.
func TestNewPolicyBuildsOffline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ssd")
	if err := New(dir, "ssd"); err != nil {
		t.Fatal(err)
	}
	if out := goIn(t, dir, nil, "test", "-count=1", "./..."); !strings.Contains(out, "ok  \tssd") {
		t.Fatalf("go test did not run the policy's tests:\n%s", out)
	}
	goIn(t, dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, "build", "-buildmode=c-shared", "-o", "ssd.wasm", ".")
	wasm, err := os.ReadFile(filepath.Join(dir, "ssd.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := policies.NewHost(ctx, policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	p, err := h.Load(ctx, "ssd", wasm, false)
	if err != nil {
		t.Fatalf("fleetd refuses the new policy: %v", err)
	}
	p.Sync([]policies.Machine{
		{ID: "m1", IP: "10.0.0.1", Metadata: map[string]string{"disk": "hdd"}},
		{ID: "m2", IP: "10.0.0.2", Metadata: map[string]string{"disk": "ssd"}},
	}, nil)
	needs := func(v string) wire.Request {
		return wire.Request{Unit: "web.service", Options: []wire.Option{{Section: "X-Fleet", Name: "Needs", Value: v}}}
	}
	if d, err := p.Place(ctx, needs("disk=ssd")); err != nil || d.Machine != "m2" {
		t.Fatalf("Needs=disk=ssd: %+v %v, want m2", d, err)
	}
	d, err := p.Place(ctx, needs("gpu=yes"))
	if err != nil || d.Machine != "" || len(d.Rejected) != 2 || d.Rejected[0].Reason != "no gpu=yes" {
		t.Fatalf("Needs=gpu=yes: %+v %v, want unplaced with \"no gpu=yes\" from both machines", d, err)
	}
}

// TestNewKeepsWhatIsThere: new refuses a directory with files in it and
// changes nothing there.
func TestNewKeepsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mine, []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := New(dir, "ssd")
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("New into a directory with files: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(mine); string(b) != "package main\n" {
		t.Fatalf("the author's main.go was changed: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("New wrote into the directory it refused: %d entries", len(entries))
	}
}

// TestWriteSDKReplacesOnlyItsCopy: sdk writes the SDK again over an older
// copy (a stale file goes), and refuses a fleet-sdk that is something else.
func TestWriteSDKReplacesOnlyItsCopy(t *testing.T) {
	dir := t.TempDir()
	if err := New(dir, "p"); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, SDKDir, "old_abi.go")
	if err := os.WriteFile(stale, []byte("package sdk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSDK(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a file of the older copy survived")
	}
	if b, err := os.ReadFile(filepath.Join(dir, SDKDir, "wire", "wire.go")); err != nil || !bytes.Contains(b, []byte("package wire")) {
		t.Errorf("the new copy lacks wire/wire.go: %v", err)
	}
	other := t.TempDir()
	theirs := filepath.Join(other, SDKDir, "go.mod")
	if err := os.MkdirAll(filepath.Dir(theirs), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(theirs, []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSDK(other); err == nil || !strings.Contains(err.Error(), "something other than fleet's SDK") {
		t.Fatalf("WriteSDK over another module: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(theirs); string(b) != "module example.com/other\n" {
		t.Fatalf("the other module's go.mod was changed: %q", b)
	}
}
