package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTinyGoStopsWithAdvice: a build under TinyGo (which sets the tinygo
// build tag) fails with an error that says how to build instead.
func TestTinyGoStopsWithAdvice(t *testing.T) {
	out, err := exec.Command("go", "build", "-tags", "tinygo", ".").CombinedOutput()
	if err == nil {
		t.Fatal("the SDK builds with the tinygo tag; want an error naming the standard toolchain")
	}
	if !strings.Contains(string(out), "needs_the_standard_Go_toolchain__build_with__GOOS_wasip1_GOARCH_wasm_go_build_buildmode_c_shared") {
		t.Fatalf("the build's error does not say what to do:\n%s", out)
	}
}

func TestNewUnit(t *testing.T) {
	u := NewUnit("web.service", "Policy=ssd", "Needs = disk=ssd", "Needs=zone=a", "Flag")
	if u.Name != "web.service" {
		t.Fatalf("name %q", u.Name)
	}
	if got := u.XFleet("Needs"); len(got) != 2 || got[0] != "disk=ssd" || got[1] != "zone=a" {
		t.Fatalf("Needs = %q, want [disk=ssd zone=a] in order", got)
	}
	if got := u.XFleet("Policy"); len(got) != 1 || got[0] != "ssd" {
		t.Fatalf("Policy = %q", got)
	}
	if got := u.XFleet("Flag"); len(got) != 1 || got[0] != "" {
		t.Fatalf("Flag = %q, want one empty value", got)
	}
	if got := u.Values("Service", "Policy"); len(got) != 0 {
		t.Fatalf("options leaked out of [X-Fleet]: %q", got)
	}
}
