package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wasmfleet/fleet/internal/devcluster"
)

// ConsulBinary returns the path of a consul binary as
// devcluster.FindConsul finds it; when there is none, it builds the pinned
// release (devcluster.ConsulVersion) into the user cache first, reporting
// progress on progress. Tests and "make consul" get Consul this way; fleetd
// only ever finds one.
func ConsulBinary(ctx context.Context, progress io.Writer) (string, error) {
	p, err := devcluster.FindConsul()
	if !errors.Is(err, devcluster.ErrNoConsul) {
		return p, err
	}
	cached, err := devcluster.CachedConsul()
	if err != nil {
		return "", err
	}
	if err := buildConsul(ctx, cached, progress); err != nil {
		return "", err
	}
	return cached, nil
}

// buildConsul builds Consul from a throw-away module that requires it, so
// fleet's own go.mod never pulls Consul's hundreds of dependencies, and
// Consul's replace directives (which go install refuses) do not apply.
func buildConsul(ctx context.Context, dest string, progress io.Writer) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("consul is not installed and Go is not on PATH to build it: install Go, or set CONSUL_BIN to a consul binary")
	}
	work, err := os.MkdirTemp("", "fleet-consul-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	files := map[string]string{
		"go.mod":   "module fleet.local/consulbuild\n\ngo 1.26\n",
		"tools.go": "//go:build tools\n\npackage tools\n\nimport _ \"github.com/hashicorp/consul\"\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp := dest + ".tmp"
	steps := []struct {
		what string
		args []string
	}{
		{"fetching Consul " + devcluster.ConsulVersion + " modules from the Go module proxy", []string{"get", "github.com/hashicorp/consul@" + devcluster.ConsulVersion}},
		{"compiling Consul " + devcluster.ConsulVersion + " (about 3 minutes on 2 cores)", []string{"build", "-ldflags=-s -w", "-o", tmp, "github.com/hashicorp/consul"}},
	}
	fmt.Fprintf(progress, "consul: not found (CONSUL_BIN, PATH, %s); building it once\n", dest)
	for i, s := range steps {
		fmt.Fprintf(progress, "consul: [%d/%d] %s\n", i+1, len(steps), s.what)
		cmd := exec.CommandContext(ctx, gobin, s.args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			tail := string(out)
			if len(tail) > 2000 {
				tail = "..." + tail[len(tail)-2000:]
			}
			hint := ""
			if strings.Contains(tail, "proxy") || strings.Contains(tail, "dial tcp") || strings.Contains(tail, "lookup") {
				hint = " (is the Go module proxy reachable? check GOPROXY)"
			}
			return fmt.Errorf("build consul: go %s failed%s: %v\n%s", s.args[0], hint, err, tail)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	fmt.Fprintf(progress, "consul: built %s\n", dest)
	return nil
}
