package unitfile

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// Option is one "Name=Value" line of a section.
type Option struct {
	Section, Name, Value string
}

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

// Parse reads a unit file.
//
// # Errors
//
// A file that systemd's syntax rejects (an option outside a section, an
// unterminated section header, a line over 2048 bytes) or that has no options
// at all gives an error saying which.
func Parse(body string) (*File, error) {
	opts, err := unit.DeserializeOptions(strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("unit file does not parse: %w", err)
	}
	if len(opts) == 0 {
		return nil, errors.New("unit file has no options: it needs at least one section with one option, such as [Service] ExecStart=...")
	}
	f := &File{Options: make([]Option, len(opts))}
	for i, o := range opts {
		f.Options[i] = Option{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	// A file that does not survive a round trip would be stored differently
	// from what the user wrote; fleet refused those too.
	if _, err := unit.DeserializeOptions(strings.NewReader(f.String())); err != nil {
		return nil, fmt.Errorf("unit file does not survive serialization: %w", err)
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
