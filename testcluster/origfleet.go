package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OrigFleetVersion is the release of CoreOS fleet whose own clients the
// tests drive against this fleet's HTTP API.
const OrigFleetVersion = "v1.0.0"

// origFleetPins are the modules fleet v1.0.0 builds with: each at the
// commit its glide.lock names, written as a Go pseudo-version. The one
// exception is google.golang.org/api, at the nearest later commit the
// module proxy serves.
var origFleetPins = []string{
	"github.com/beorn7/perks v0.0.0-20160804104726-4c0e84591b9a",
	"github.com/coreos/etcd v3.1.0-rc.1.0.20161123195148-c31b1ab8d18f+incompatible",
	"github.com/coreos/go-semver v0.2.0",
	"github.com/coreos/go-systemd v0.0.0-20161123113442-efa0506b99d3",
	"github.com/glacjay/goini v0.0.0-20161120062552-fd3024d87ee2",
	"github.com/godbus/dbus v4.0.1-0.20161118042915-097c117a8cd6+incompatible",
	"github.com/gogo/protobuf v0.0.0-20161105095113-8d70fb3182be",
	"github.com/golang/protobuf v0.0.0-20161117033126-8ee79997227b",
	"github.com/inconshreveable/mousetrap v1.0.0",
	"github.com/jonboulle/clockwork v0.1.1-0.20160907122059-bcac9884e750",
	"github.com/matttproud/golang_protobuf_extensions v1.0.1",
	"github.com/pborman/uuid v0.0.0-20161005151609-3d4f2ba23642",
	"github.com/prometheus/client_golang v0.8.1-0.20161124155732-575f371f7862",
	"github.com/prometheus/client_model v0.0.0-20150212101744-fa8ad6fec335",
	"github.com/prometheus/common v0.0.0-20161114134743-0d5de9d6d862",
	"github.com/prometheus/procfs v0.0.0-20160411190841-abf152e5f3e9",
	"github.com/rakyll/globalconf v0.0.0-20160919191948-7afbf15d8da4",
	"github.com/spf13/cobra v0.0.0-20161116132053-9495bc009a56",
	"github.com/spf13/pflag v0.0.0-20161024131444-5ccb023bc27d",
	"github.com/ugorji/go " + origUgorjiVersion,
	"github.com/vishvananda/netlink v0.0.0-20161123010705-a4f22d8ad232",
	"github.com/vishvananda/netns v0.0.0-20160430053723-8ba1072b58e0",
	"golang.org/x/crypto v0.0.0-20161122142712-ede567c8e044",
	"golang.org/x/net v0.0.0-20160225202940-6acef71eb696",
	"google.golang.org/api v0.0.0-20170214011559-bc20c61134e1",
	"google.golang.org/genproto v0.0.0-20161115011420-08f135d1a31b",
	"google.golang.org/grpc v1.0.4",
}

// origUgorjiVersion is fleet's ugorji/go, which needs one fix to run under
// a current Go (origUgorjiFix).
const origUgorjiVersion = "v0.0.0-20151028022000-f1f1a805ed36"

// origUgorjiFix is that fix, in codec/gen.go: the package builds, at init,
// a base64 alphabet with '_' twice, which encoding/base64 has refused with
// a panic since Go 1.9. The alphabet is only for generated identifiers;
// any other 64th character does.
var origUgorjiFix = [2]string{
	`base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789__")`,
	`base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")`,
}

// OrigFleet is the original fleet, built from the Go module proxy: its
// source as a module (Src, with the fixed ugorji/go beside it) and its
// fleetctl.
type OrigFleet struct {
	Dir string // os.UserCacheDir()/fleet/origfleet-v1.0.0
}

// Fleetctl is the original fleetctl binary.
func (o *OrigFleet) Fleetctl() string { return filepath.Join(o.Dir, "bin", "fleetctl") }

// Run runs the original fleetctl with its API driver against the
// fleet HTTP API at endpoint (unix:///path/fleet.sock), as an operator
// moving from fleet would, and returns what it printed and its exit code.
func (o *OrigFleet) Run(t testing.TB, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return FleetctlAt(t, o.Fleetctl(), endpoint, append([]string{"--driver", "API"}, args...)...)
}

// Src is fleet's source, a module (github.com/coreos/fleet) that builds.
func (o *OrigFleet) Src() string { return filepath.Join(o.Dir, "src") }

// ugorji is the fixed ugorji/go module.
func (o *OrigFleet) ugorji() string { return filepath.Join(o.Src(), "third_party", "ugorji-go") }

// OrigFleetT is BuildOrigFleet for a test, which fails when it cannot be
// built: the tests that need it are never skipped.
func OrigFleetT(t testing.TB) *OrigFleet {
	t.Helper()
	o, err := BuildOrigFleet(context.Background(), io.Discard)
	if err != nil {
		t.Fatalf("the original fleet %s: %v", OrigFleetVersion, err)
	}
	return o
}

// BuildOrigFleet returns the original fleet, building it first when the
// user cache does not hold it yet (a few minutes, once per machine, from
// the Go module proxy alone). Builds at once wait for each other; the
// finished directory is put in place with one rename, so a build cut short
// leaves nothing a later one would take for finished.
func BuildOrigFleet(ctx context.Context, progress io.Writer) (*OrigFleet, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	o := &OrigFleet{Dir: filepath.Join(cache, "fleet", "origfleet-"+OrigFleetVersion)}
	done := func() bool { _, err := os.Stat(o.Fleetctl()); return err == nil }
	err = buildOnce(o.Dir, done, func(work string) error {
		fmt.Fprintf(progress, "origfleet: building fleet %s into %s\n", OrigFleetVersion, o.Dir)
		return (&OrigFleet{Dir: work}).build(ctx)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// build lays out fleet's source with its pinned go.mod and the fixed
// ugorji/go in o.Dir, and builds fleetctl.
func (o *OrigFleet) build(ctx context.Context) error {
	src, err := moduleDir(ctx, "github.com/coreos/fleet@"+OrigFleetVersion)
	if err != nil {
		return err
	}
	if err := copyTree(src, o.Src()); err != nil {
		return err
	}
	ug, err := moduleDir(ctx, "github.com/ugorji/go@"+origUgorjiVersion)
	if err != nil {
		return err
	}
	if err := copyTree(ug, o.ugorji()); err != nil {
		return err
	}
	if err := o.fixUgorji(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Src(), "go.mod"), []byte(o.goMod("github.com/coreos/fleet", "./third_party/ugorji-go", "")), 0o644); err != nil {
		return err
	}
	os.Remove(filepath.Join(o.Src(), "go.sum"))
	ldflags := "-X github.com/coreos/fleet/version.Version=" + OrigFleetVersion
	if _, err := goCmd(ctx, o.Src(), "build", "-trimpath", "-ldflags", ldflags, "-o", o.Fleetctl(), "./fleetctl"); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, o.Fleetctl(), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), OrigFleetVersion) {
		return fmt.Errorf("the built fleetctl does not run: %v: %s", err, out)
	}
	return nil
}

// fixUgorji gives the copied ugorji/go a go.mod and its one fix.
func (o *OrigFleet) fixUgorji() error {
	if err := os.WriteFile(filepath.Join(o.ugorji(), "go.mod"), []byte("module github.com/ugorji/go\n\ngo 1.16\n"), 0o644); err != nil {
		return err
	}
	gen := filepath.Join(o.ugorji(), "codec", "gen.go")
	b, err := os.ReadFile(gen)
	if err != nil {
		return err
	}
	if bytes.Count(b, []byte(origUgorjiFix[0])) != 1 {
		return fmt.Errorf("%s: the line to fix is not there once", gen)
	}
	return os.WriteFile(gen, bytes.Replace(b, []byte(origUgorjiFix[0]), []byte(origUgorjiFix[1]), 1), 0o644)
}

// goMod is a go.mod for module that requires fleet's pins, with ugorji/go
// replaced by the fixed copy at ugorji and, when fleet is not "", fleet by
// the source at fleet.
func (o *OrigFleet) goMod(module, ugorji, fleet string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo 1.16\n\nrequire (\n", module)
	if fleet != "" {
		fmt.Fprintf(&b, "\tgithub.com/coreos/fleet %s\n", OrigFleetVersion)
	}
	for _, p := range origFleetPins {
		fmt.Fprintf(&b, "\t%s\n", p)
	}
	fmt.Fprintf(&b, ")\n\nreplace github.com/ugorji/go => %s\n", ugorji)
	if fleet != "" {
		fmt.Fprintf(&b, "\nreplace github.com/coreos/fleet => %s\n", fleet)
	}
	return b.String()
}

// moduleDir downloads module@version from the Go module proxy into the
// module cache and returns its directory there.
func moduleDir(ctx context.Context, modVersion string) (string, error) {
	out, err := goCmd(ctx, os.TempDir(), "mod", "download", "-json", modVersion)
	if err != nil {
		return "", err
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s", modVersion, err, m.Error)
	}
	return m.Dir, nil
}

// goCmd runs go in dir for an old module: no workspace, the module graph
// written as needed, no cgo (as fleet built itself), the local toolchain.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false", "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tail := stderr.String()
		if len(tail) > 3000 {
			tail = "..." + tail[len(tail)-3000:]
		}
		return out, fmt.Errorf("go %s (in %s): %w (is the Go module proxy reachable? GOPROXY)\n%s", strings.Join(args, " "), dir, err, tail)
	}
	return out, nil
}

// copyTree copies the files under src to dst, writable (the module cache
// is read-only).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// BuildProgram builds the Go program whose source is in dir (a main
// package) against the original fleet's packages, in a module of fleet's
// pinned dependencies, and returns the binary: for programs that use
// fleet's Go client (github.com/coreos/fleet/client). Its old dependencies
// never enter fleet's own go.mod.
func (o *OrigFleet) BuildProgram(t testing.TB, dir string) string {
	t.Helper()
	work := t.TempDir()
	if err := copyTree(dir, work); err != nil {
		t.Fatal(err)
	}
	mod := o.goMod("origfleet.test/"+filepath.Base(dir), o.ugorji(), o.Src())
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, filepath.Base(dir))
	if _, err := goCmd(context.Background(), work, "build", "-o", bin, "."); err != nil {
		t.Fatalf("build %s against fleet %s: %v", dir, OrigFleetVersion, err)
	}
	return bin
}
