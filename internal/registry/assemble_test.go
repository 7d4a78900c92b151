package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
)

// chunked is a module split as PutPolicy stores it: its manifest and chunks.
func chunked(name string, module []byte) (*PolicyManifest, map[string][]byte) {
	sum := sha256.Sum256(module)
	m := &PolicyManifest{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: len(module)}
	store := map[string][]byte{}
	for off := 0; off < len(module); off += chunkSize {
		c := module[off:min(off+chunkSize, len(module))]
		cs := sha256.Sum256(c)
		k := hex.EncodeToString(cs[:])
		store[k] = c
		m.Chunks = append(m.Chunks, k)
	}
	return m, store
}

// FuzzAssemble: whatever manifest and chunks are in Consul, assembling a
// module returns exactly the bytes the manifest's checksum names, or an
// error, and never panics or allocates beyond the stated size.
func FuzzAssemble(f *testing.F) {
	module := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), chunkSize/8+100) // two chunks
	m, store := chunked("zones", module)
	mb, _ := json.Marshal(m)
	f.Add(mb, store[m.Chunks[0]], store[m.Chunks[1]])
	f.Add([]byte(`{"name":"x","sha256":"00","size":99999999999,"chunks":["../../leader"]}`), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, manifest, c0, c1 []byte) {
		var m PolicyManifest
		if json.Unmarshal(manifest, &m) != nil {
			return
		}
		chunks := [][]byte{c0, c1}
		reads := 0
		out, err := assemble(&m, func(sum string) ([]byte, error) {
			reads++
			for _, c := range chunks {
				if s := sha256.Sum256(c); hex.EncodeToString(s[:]) == sum {
					return c, nil
				}
			}
			return nil, nil
		})
		if reads > len(m.Chunks) {
			t.Fatalf("%d reads for %d chunks", reads, len(m.Chunks))
		}
		if err != nil {
			return
		}
		if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != m.SHA256 || len(out) != m.Size {
			t.Fatalf("assembled %d bytes that do not match the manifest", len(out))
		}
	})
}

func TestAssembleRefuses(t *testing.T) {
	module := bytes.Repeat([]byte("policy!!"), chunkSize/8+1)
	good, store := chunked("zones", module)
	get := func(sum string) ([]byte, error) { return store[sum], nil }
	if out, err := assemble(good, get); err != nil || !bytes.Equal(out, module) {
		t.Fatalf("a good module: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(m *PolicyManifest)
		want string
	}{
		"chunk name leaves the chunk prefix": {func(m *PolicyManifest) { m.Chunks[0] = "../policies/other" }, "not a SHA-256"},
		"huge size":                          {func(m *PolicyManifest) { m.Size = 1 << 40 }, "size of"},
		"too many chunks":                    {func(m *PolicyManifest) { m.Chunks = append(m.Chunks, m.Chunks...) }, "lists 4 chunks"},
		"swapped chunks":                     {func(m *PolicyManifest) { m.Chunks[0], m.Chunks[1] = m.Chunks[1], m.Chunks[0] }, "does not match its checksum"},
		"missing chunk":                      {func(m *PolicyManifest) { m.Chunks[1] = hex.EncodeToString(make([]byte, 32)) }, "chunk 1 is missing"},
		"bad name":                           {func(m *PolicyManifest) { m.Name = "../x" }, "invalid name"},
	} {
		t.Run(name, func(t *testing.T) {
			m := *good
			m.Chunks = append([]string(nil), good.Chunks...)
			tc.edit(&m)
			if _, err := assemble(&m, get); err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("assemble: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
