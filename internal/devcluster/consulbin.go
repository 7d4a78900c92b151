package devcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ConsulVersion is the Consul release fleet tests and dev mode run: the
// newest MPL-2.0 release whose modules the Go module proxy serves.
const ConsulVersion = "v1.14.11"

// ErrNoConsul is FindConsul's error when there is no consul binary at all.
var ErrNoConsul = errors.New("no consul binary")

// FindConsul returns the path of a consul binary: $CONSUL_BIN, else consul
// on PATH, else the one cached for ConsulVersion (CachedConsul).
//
// # Errors
//
// When CONSUL_BIN names no file, FindConsul says so. When there is no
// consul anywhere, the error wraps ErrNoConsul and says how to get one:
// "make consul" builds the pinned release into the cache (fleetd itself
// never builds Consul).
func FindConsul() (string, error) {
	if p := os.Getenv("CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CONSUL_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	cached, err := CachedConsul()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(cached); err != nil {
		return "", fmt.Errorf("%w (CONSUL_BIN is unset, none on PATH, none at %s): run \"make consul\" in the fleet repository to build one there, or set CONSUL_BIN to a consul binary",
			ErrNoConsul, cached)
	}
	return cached, nil
}

// CachedConsul is where the ConsulVersion binary is kept in the user's
// cache: ~/.cache/fleet/consul-VERSION/consul on Linux.
func CachedConsul() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find a cache directory for the consul binary (set CONSUL_BIN instead): %w", err)
	}
	return filepath.Join(dir, "fleet", "consul-"+strings.TrimPrefix(ConsulVersion, "v"), "consul"), nil
}
