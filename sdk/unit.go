package sdk

import (
	"strings"
	"unsafe"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Machine is a live machine of the cluster. Treat it as read-only.
type Machine struct {
	ID       string
	IP       string
	Metadata map[string]string
	Units    map[string]bool // names of the units placed on it

	slot int // position in the cluster's sets
	rank int // position in Machines(): comparing ranks is comparing IDs
}

// Option is one line of a unit file: Value of Name in [Section].
type Option = wire.Option

// Unit is a unit to place, or one already in the cluster. Treat it as
// read-only.
type Unit struct {
	Name    string
	Options []wire.Option

	body *body // shared by every unit with the same options (a template's instances)

	defined bool   // the cluster's definition of the unit: hosts is kept current
	hosts   int    // on how many machines the unit is placed
	handle  uint32 // the host's handle for the definition plus one; 0 for none
}

// NewUnit returns a unit named name with the given [X-Fleet] options, each
// written "Name=value" as in a unit file, for tests:
//
//	u := sdk.NewUnit("web.service", "Policy=ssd", "Needs=disk=ssd")
//
// An option without "=" has an empty value.
func NewUnit(name string, xfleet ...string) *Unit {
	u := &Unit{Name: name}
	for _, kv := range xfleet {
		k, v, _ := strings.Cut(kv, "=")
		u.Options = append(u.Options, Option{Section: "X-Fleet", Name: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	return u
}

// body is what units with identical options share: the options, decoded
// once, and what policies derived from them.
type body struct {
	key     []byte // the options as encoded on the wire
	options []wire.Option
	memo    map[string]any
	key1    string // the first key memoized, and its value: most policies use one
	val1    any
	key1p   *byte // key1's bytes, set with val1 (for a key that has some): Memo's test of a constant key
}

// Memo returns the value derived from the unit's options under key,
// computing it with f the first time. Units with the same options (the
// instances of one template, or a unit placed again) share it, so a policy
// parses its [X-Fleet] requirements once instead of on every decision.
// f must depend on the options only, not on the unit's name.
func (u *Unit) Memo(key string, f func() any) any {
	b := u.body
	if b == nil {
		return f()
	}
	if b.key1p != nil && b.key1p == unsafe.StringData(key) && len(b.key1) == len(key) {
		// The first key memoized, passed again as the same constant (the
		// common case), recognised by its address: in a WebAssembly guest
		// comparing the bytes is a call of its own.
		return b.val1
	}
	if b.val1 != nil && b.key1 == key {
		return b.val1
	}
	if v, ok := b.memo[key]; ok {
		return v
	}
	v := f()
	if b.val1 == nil && v != nil {
		b.key1, b.val1 = key, v
		if key != "" {
			b.key1p = unsafe.StringData(key)
		}
		return v
	}
	if b.memo == nil {
		b.memo = map[string]any{}
	}
	b.memo[key] = v
	return v
}

// Values returns the values of name in section, in file order.
func (u *Unit) Values(section, name string) []string {
	var vs []string
	for _, o := range u.Options {
		if o.Section == section && o.Name == name {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// XFleet returns the values of an [X-Fleet] option.
func (u *Unit) XFleet(name string) []string { return u.Values("X-Fleet", name) }
