package unitfile

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Option is one "Name=Value" line of a section: the type the policy ABI
// carries, so a unit's options go to a policy and to fleet's rules
// (sdk/xfleet) as they are.
type Option = wire.Option

// File is a parsed unit file. Its options keep the order of the source.
type File struct {
	Options []Option
}

// Hash identifies a unit body: SHA-1 of its canonical serialization.
type Hash [sha1.Size]byte

// String is the full 40-character hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the 7-character form fleetctl prints.
func (h Hash) Short() string { return h.String()[:7] }

// IsZero reports whether h is the zero hash (no unit).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash reads the 40-character hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("invalid unit hash %q: want 40 hex characters", s)
	}
	copy(h[:], b)
	return h, nil
}

// Limits of a unit file. A body is stored as one Consul value (at most
// 512 KiB); real unit files are a few KiB with a few dozen options.
const (
	MaxBodyBytes = 256 << 10
	MaxOptions   = 1024
)

// Parse reads a unit file.
//
// # Errors
//
// A file that systemd's syntax rejects (an option outside a section, an
// unterminated section header, a line over 2048 bytes), that is not UTF-8 or
// holds a NUL byte, that is larger than MaxBodyBytes or has more than
// MaxOptions options, or that has no options at all gives an error saying
// which.
func Parse(body string) (*File, error) {
	switch {
	case len(body) > MaxBodyBytes:
		return nil, fmt.Errorf("unit file is %d bytes; the limit is %d", len(body), MaxBodyBytes)
	case !utf8.ValidString(body):
		return nil, errors.New("unit file is not valid UTF-8, which systemd requires")
	case strings.ContainsRune(body, 0):
		return nil, errors.New("unit file contains a NUL byte")
	}
	opts, err := unit.DeserializeOptions(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("unit file does not parse: %w", err)
	}
	if len(opts) == 0 {
		return nil, errors.New("unit file has no options: it needs at least one section with one option, such as [Service] ExecStart=...")
	}
	if len(opts) > MaxOptions {
		return nil, fmt.Errorf("unit file has %d options; the limit is %d", len(opts), MaxOptions)
	}
	f := &File{Options: make([]Option, len(opts))}
	for i, o := range opts {
		f.Options[i] = Option{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	// A file that does not survive a round trip would be stored differently
	// from what the user wrote; fleet refused those too.
	again, err := unit.DeserializeOptions(strings.NewReader(f.String()))
	if err != nil {
		return nil, fmt.Errorf("unit file does not survive serialization: %w", err)
	}
	if len(again) != len(f.Options) {
		return nil, fmt.Errorf("unit file does not survive serialization: %d options read back as %d", len(f.Options), len(again))
	}
	for i, o := range again {
		if w := f.Options[i]; o.Section != w.Section || o.Name != w.Name || o.Value != w.Value {
			return nil, fmt.Errorf("unit file does not survive serialization: [%s] %s=%q would be stored as %s=%q (a value ending in a backslash?)",
				w.Section, w.Name, w.Value, o.Name, o.Value)
		}
	}
	return f, nil
}

// String is the canonical serialization: sections in first-seen order, one
// option a line, no comments.
func (f *File) String() string {
	opts := make([]*unit.UnitOption, len(f.Options))
	for i, o := range f.Options {
		opts[i] = unit.NewUnitOption(o.Section, o.Name, o.Value)
	}
	b, _ := io.ReadAll(unit.Serialize(opts)) // reading a bytes.Buffer cannot fail
	return string(b)
}

// Hash is the SHA-1 of the canonical serialization.
func (f *File) Hash() Hash { return sha1.Sum([]byte(f.String())) }

// Values returns every value of name in section, in file order.
func (f *File) Values(section, name string) []string {
	var vs []string
	for _, o := range f.Options {
		if o.Section == section && o.Name == name {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// HasSection reports whether the file has at least one option in section.
func (f *File) HasSection(section string) bool {
	for _, o := range f.Options {
		if o.Section == section {
			return true
		}
	}
	return false
}

// FromOptions makes a File of options given one by one, as fleet's HTTP API
// sends a unit, with Parse's checks of the file they make: an option that
// would be stored differently from what was sent (a value with surrounding
// blanks, a name holding '=') is refused.
func FromOptions(opts []Option) (*File, error) {
	if len(opts) > MaxOptions {
		return nil, fmt.Errorf("unit has %d options; the limit is %d", len(opts), MaxOptions)
	}
	f, err := Parse((&File{Options: opts}).String())
	if err != nil {
		return nil, err
	}
	if len(f.Options) != len(opts) {
		return nil, fmt.Errorf("unit's %d options read back as %d from its unit file", len(opts), len(f.Options))
	}
	for i, o := range f.Options {
		if w := opts[i]; o != w {
			return nil, fmt.Errorf("option [%s] %s=%q would be stored as [%s] %s=%q", w.Section, w.Name, w.Value, o.Section, o.Name, o.Value)
		}
	}
	return f, nil
}
