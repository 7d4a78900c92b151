package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// BuiltinPolicy is the name of the policy fleetd ships; it cannot be
// uploaded or removed.
const BuiltinPolicy = "default"

// chunkSize keeps each stored piece of a module well under Consul's 512 KiB
// value limit.
const chunkSize = 256 << 10

// ErrPolicyNotFound means no policy of that name was uploaded.
var ErrPolicyNotFound = errors.New("policy not found")

// PolicyManifest describes an uploaded policy module. It is written after
// the module's chunks, so a reader that finds it finds every chunk.
type PolicyManifest struct {
	Name     string    `json:"name"`
	SHA256   string    `json:"sha256"`
	Size     int       `json:"size"`
	Chunks   []string  `json:"chunks"` // sha256 of each chunk, in order
	Uploaded time.Time `json:"uploaded"`
}

var policyName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidatePolicyName checks a policy name.
func ValidatePolicyName(name string) error {
	if !policyName.MatchString(name) {
		return fmt.Errorf("invalid policy name %q: use 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit", name)
	}
	return nil
}

func (r *Registry) policyKey(name string) string { return r.prefix + "policies/" + name }
func (r *Registry) defaultPolicyKey() string     { return r.prefix + "policy-default" }

// chunkKey is outside the prefix the leader watches, so module bytes are not
// re-read on every change in the cluster.
func (r *Registry) chunkKey(sum string) string {
	return strings.TrimSuffix(r.prefix, "/") + "-chunks/" + sum
}

// PutPolicy stores a module under name: its chunks first, then the manifest.
// The module must have been validated; this only stores it.
func (r *Registry) PutPolicy(ctx context.Context, name string, wasm []byte) (*PolicyManifest, error) {
	if err := r.mayWrite(ctx, false); err != nil {
		return nil, err
	}
	if err := ValidatePolicyName(name); err != nil {
		return nil, err
	}
	if name == BuiltinPolicy {
		return nil, fmt.Errorf("%q is the built-in policy; upload under another name and make it the default with fleetctl policy default", name)
	}
	sum := sha256.Sum256(wasm)
	m := &PolicyManifest{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: len(wasm), Uploaded: time.Now().UTC()}
	wo := (&api.WriteOptions{}).WithContext(ctx)
	for off := 0; off < len(wasm); off += chunkSize {
		chunk := wasm[off:min(off+chunkSize, len(wasm))]
		cs := sha256.Sum256(chunk)
		key := hex.EncodeToString(cs[:])
		if _, err := r.c.KV().Put(&api.KVPair{Key: r.chunkKey(key), Value: chunk}, wo); err != nil {
			return nil, fmt.Errorf("store policy %s: %w", name, err)
		}
		m.Chunks = append(m.Chunks, key)
	}
	b, _ := json.Marshal(m)
	if _, err := r.c.KV().Put(&api.KVPair{Key: r.policyKey(name), Value: b}, wo); err != nil {
		return nil, fmt.Errorf("store policy %s: %w", name, err)
	}
	return m, nil
}

// Policy reads one manifest, or returns ErrPolicyNotFound.
func (r *Registry) Policy(ctx context.Context, name string) (*PolicyManifest, error) {
	p, _, err := r.c.KV().Get(r.policyKey(name), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", name, err)
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrPolicyNotFound, name)
	}
	var m PolicyManifest
	if err := json.Unmarshal(p.Value, &m); err != nil {
		return nil, fmt.Errorf("policy %s has a broken manifest: %w", name, err)
	}
	return &m, nil
}

// DefaultPolicy is the policy of units that name none: BuiltinPolicy unless
// an operator chose another with SetDefaultPolicy.
func (r *Registry) DefaultPolicy(ctx context.Context) (string, error) {
	p, _, err := r.c.KV().Get(r.defaultPolicyKey(), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("read the default policy: %w", err)
	}
	if p == nil || len(p.Value) == 0 {
		return BuiltinPolicy, nil
	}
	return string(p.Value), nil
}

// PolicyModule reads a module's chunks and checks them against the manifest.
func (r *Registry) PolicyModule(ctx context.Context, m *PolicyManifest) ([]byte, error) {
	return assemble(m, func(sum string) ([]byte, error) {
		p, _, err := r.c.KV().Get(r.chunkKey(sum), (&api.QueryOptions{}).WithContext(ctx))
		if err != nil || p == nil {
			return nil, err
		}
		return p.Value, nil
	})
}

// MaxPolicyBytes bounds a module's size as a manifest states it, before
// anything is read: a manifest is only as trusted as whoever could write it.
const MaxPolicyBytes = 64 << 20

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// assemble checks manifest m and puts its module together from chunks read
// with get (nil for a missing chunk). Nothing is read unless the manifest is
// consistent: a valid name, checksums that are SHA-256s, a size within
// MaxPolicyBytes and exactly the chunks that size needs; each chunk must
// match its own checksum and the whole the manifest's.
func assemble(m *PolicyManifest, get func(sum string) ([]byte, error)) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("policy %s: "+format+"; upload it again", append([]any{m.Name}, args...)...)
	}
	switch {
	case ValidatePolicyName(m.Name) != nil:
		return nil, fmt.Errorf("policy manifest has an invalid name %q", m.Name)
	case !sha256Hex.MatchString(m.SHA256):
		return nil, bad("its manifest's checksum is not a SHA-256")
	case m.Size <= 0 || m.Size > MaxPolicyBytes:
		return nil, bad("its manifest gives a size of %d bytes (1 to %d allowed)", m.Size, MaxPolicyBytes)
	case len(m.Chunks) != (m.Size+chunkSize-1)/chunkSize:
		return nil, bad("its manifest lists %d chunks for %d bytes", len(m.Chunks), m.Size)
	}
	out := make([]byte, 0, m.Size)
	for i, c := range m.Chunks {
		if !sha256Hex.MatchString(c) {
			return nil, bad("its manifest names chunk %d %q, not a SHA-256", i, c)
		}
		b, err := get(c)
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %w", m.Name, err)
		}
		want := min(chunkSize, m.Size-len(out))
		if b == nil {
			return nil, bad("chunk %d is missing", i)
		}
		if sum := sha256.Sum256(b); len(b) != want || hex.EncodeToString(sum[:]) != c {
			return nil, bad("chunk %d does not match its checksum", i)
		}
		out = append(out, b...)
	}
	if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, bad("the module does not match its checksum")
	}
	return out, nil
}

// DeletePolicy removes a policy and the chunks no other policy uses.
func (r *Registry) DeletePolicy(ctx context.Context, name string) error {
	if err := r.mayWrite(ctx, false); err != nil {
		return err
	}
	m, err := r.Policy(ctx, name)
	if err != nil {
		return err
	}
	wo := (&api.WriteOptions{}).WithContext(ctx)
	if _, err := r.c.KV().Delete(r.policyKey(name), wo); err != nil {
		return fmt.Errorf("remove policy %s: %w", name, err)
	}
	s, err := r.Snapshot(ctx, 0, 0)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, other := range s.Policies {
		for _, c := range other.Chunks {
			used[c] = true
		}
	}
	for _, c := range m.Chunks {
		if !used[c] {
			_, _ = r.c.KV().Delete(r.chunkKey(c), wo) // an orphan chunk is harmless
		}
	}
	return nil
}

// SetDefaultPolicy makes name the policy of units that name none;
// BuiltinPolicy restores fleet's own.
func (r *Registry) SetDefaultPolicy(ctx context.Context, name string) error {
	if err := r.mayWrite(ctx, false); err != nil {
		return err
	}
	wo := (&api.WriteOptions{}).WithContext(ctx)
	if name == BuiltinPolicy {
		_, err := r.c.KV().Delete(r.defaultPolicyKey(), wo)
		return err
	}
	_, err := r.c.KV().Put(&api.KVPair{Key: r.defaultPolicyKey(), Value: []byte(name)}, wo)
	return err
}
