// Package wire is the byte layout of fleet's policy ABI (docs/abi.md), shared
// by the host (fleetd) and guests written with the Go SDK. It uses only the
// standard library, so a policy never pulls in fleetd's dependencies.
//
// Every message is a flat little-endian record: integers are u32, strings are
// a u32 length followed by that many bytes. There is no JSON: decoding must
// cost little inside a WebAssembly guest.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the ABI version a guest reports from fleet_abi_version.
// Version 2 added the deferred choice (Deferred); a host speaks every
// version from OldestVersion to Version.
const Version = 2

// OldestVersion is the oldest ABI version a host still speaks.
const OldestVersion = 1

// Delta operations: how the host keeps the guest's resident cluster current.
const (
	OpReset         = 1 // forget everything
	OpMachine       = 2 // a machine joined or changed: id, ip, metadata
	OpMachineGone   = 3 // a machine left: id
	OpUnitPlaced    = 4 // a unit is on a machine: unit name, machine id
	OpUnitUnplaced  = 5 // a unit left a machine: unit name, machine id
	OpUnitDefined   = 6 // a unit's options (for rules between units): name, options
	OpUnitForgotten = 7 // a unit no longer exists: name
	OpUnitHandle    = 8 // a unit's options under a handle the host chose: u32 handle, name, options (fleet_place_defined)
)

// Writer appends records to a buffer.
type Writer struct{ B []byte }

// U32 appends v.
func (w *Writer) U32(v uint32) { w.B = binary.LittleEndian.AppendUint32(w.B, v) }

// U8 appends v.
func (w *Writer) U8(v uint8) { w.B = append(w.B, v) }

// Str appends s as length and bytes.
func (w *Writer) Str(s string) {
	w.U32(uint32(len(s)))
	w.B = append(w.B, s...)
}

// Reader reads records; the first error sticks and later reads return zero
// values, so a decoder checks Err once at the end.
type Reader struct {
	B   []byte
	err error
}

// ErrShort means a record ended early.
var ErrShort = errors.New("wire: record ends early")

// Err is the first error met.
func (r *Reader) Err() error { return r.err }

// Done reports whether every byte was read.
func (r *Reader) Done() bool { return len(r.B) == 0 }

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if r.err != nil || len(r.B) < 1 {
		r.fail()
		return 0
	}
	v := r.B[0]
	r.B = r.B[1:]
	return v
}

// U32 reads a u32.
func (r *Reader) U32() uint32 {
	if r.err != nil || len(r.B) < 4 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(r.B)
	r.B = r.B[4:]
	return v
}

// Str reads a string.
func (r *Reader) Str() string {
	n := r.U32()
	if r.err != nil || uint32(len(r.B)) < n {
		r.fail()
		return ""
	}
	s := string(r.B[:n])
	r.B = r.B[n:]
	return s
}

// Bytes reads a string's bytes without copying them: a view into B.
func (r *Reader) Bytes() []byte {
	n := r.U32()
	if r.err != nil || uint32(len(r.B)) < n {
		r.fail()
		return nil
	}
	b := r.B[:n:n]
	r.B = r.B[n:]
	return b
}

// Count reads a u32 count and checks it cannot exceed what is left, each
// item taking at least min bytes, so a hostile count cannot make a decoder
// allocate without bound.
func (r *Reader) Count(min int) int {
	n := r.U32()
	if r.err == nil && uint64(n)*uint64(min) > uint64(len(r.B)) {
		r.err = fmt.Errorf("wire: count %d larger than the record", n)
		return 0
	}
	return int(n)
}

func (r *Reader) fail() {
	if r.err == nil {
		r.err = ErrShort
	}
}

// Option is one line of a unit file.
type Option struct{ Section, Name, Value string }

// Request asks for one placement: the unit and its options.
type Request struct {
	Unit    string
	Options []Option
}

// Encode writes the request.
func (q *Request) Encode(w *Writer) {
	w.Str(q.Unit)
	w.U32(uint32(len(q.Options)))
	for _, o := range q.Options {
		w.Str(o.Section)
		w.Str(o.Name)
		w.Str(o.Value)
	}
}

// DecodeRequest reads a request that is the whole of b.
func DecodeRequest(b []byte) (Request, error) {
	q, rest, err := ReadRequest(b)
	if err == nil && len(rest) > 0 {
		err = errors.New("wire: bytes left after the request")
	}
	return q, err
}

// ReadRequest reads a request from the start of b and returns the rest.
func ReadRequest(b []byte) (Request, []byte, error) {
	r := &Reader{B: b}
	q := Request{Unit: r.Str()}
	if n := r.Count(12); n > 0 {
		q.Options = make([]Option, n)
		for i := range q.Options {
			q.Options[i] = Option{Section: r.Str(), Name: r.Str(), Value: r.Str()}
		}
	}
	return q, r.B, r.Err()
}

// Rejection is why one machine was not chosen.
type Rejection struct{ Machine, Reason string }

// Decision is a guest's answer: the chosen machine ("" for none) and why
// others were not chosen.
type Decision struct {
	Machine  string
	Rejected []Rejection
}

// Encode writes the decision.
func (d *Decision) Encode(w *Writer) {
	w.Str(d.Machine)
	w.U32(uint32(len(d.Rejected)))
	for _, x := range d.Rejected {
		w.Str(x.Machine)
		w.Str(x.Reason)
	}
}

// Deferred is a decision that leaves the choice to the host: the slot with
// the smallest key among the slots of a set, whose machine ID the guest
// keeps in a table (docs/abi.md, "A deferred choice"). Each field is an
// address in the guest's memory or a count.
type Deferred struct {
	Set   uint32 // Words little-endian u64s: a bitset over slots
	Words uint32
	Keys  uint32 // Slots u64s, one per slot
	Slots uint32
	IDs   uint32 // Slots u64s, one per slot: the ID's address << 32 | its length
}

// DeferredSize is the length of a deferred decision: the DeferredMark and
// Deferred's five fields, each a little-endian u32 (the Go SDK writes them
// in Runner.deferred, sdk/least_wasip1.go).
const DeferredSize = 24

// DeferredMark starts a deferred decision where a decision's machine ID
// length would be: no real answer is that long (answers are at most 1 MiB).
const DeferredMark = 0xFFFFFFFF

// DecodeDeferred reads a deferred decision; ok is false when b is not one.
func DecodeDeferred(b []byte) (d Deferred, ok bool) {
	if len(b) != DeferredSize || binary.LittleEndian.Uint32(b) != DeferredMark {
		return d, false
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	return Deferred{Set: u(1), Words: u(2), Keys: u(3), Slots: u(4), IDs: u(5)}, true
}

// DecodeDecision reads a decision.
func DecodeDecision(b []byte) (Decision, error) {
	r := &Reader{B: b}
	d := Decision{Machine: r.Str()}
	if n := r.Count(8); n > 0 {
		d.Rejected = make([]Rejection, n)
		for i := range d.Rejected {
			d.Rejected[i] = Rejection{Machine: r.Str(), Reason: r.Str()}
		}
	}
	if r.Err() == nil && !r.Done() {
		return d, errors.New("wire: bytes left after the decision")
	}
	return d, r.Err()
}
