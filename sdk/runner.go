package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wasmfleet/fleet/sdk/internal/hook"
	"github.com/wasmfleet/fleet/sdk/wire"
)

// apply decodes a batch of updates from the host and applies them.
func (c *Cluster) apply(b []byte) error {
	r := &wire.Reader{B: b}
	for !r.Done() && r.Err() == nil {
		switch op := r.U8(); op {
		case wire.OpReset:
			dropTallies(c.hosting)
			dropTallies(c.declaring)
			*c = *NewCluster()
		case wire.OpMachine:
			id, ip := r.Str(), r.Str()
			md := map[string]string{}
			for n := r.Count(8); n > 0; n-- {
				k := r.Str()
				md[k] = r.Str()
			}
			if r.Err() == nil {
				c.AddMachine(id, ip, md)
			}
		case wire.OpMachineGone:
			c.RemoveMachine(r.Str())
		case wire.OpUnitPlaced:
			u, id := r.Str(), r.Str()
			c.PlaceUnit(u, id)
		case wire.OpUnitUnplaced:
			u, id := r.Str(), r.Str()
			c.UnplaceUnit(u, id)
		case wire.OpUnitDefined:
			if _, err := c.define(r); err != nil {
				return err
			}
		case wire.OpUnitHandle:
			h := r.U32()
			if r.Err() == nil && h >= maxHandles {
				return fmt.Errorf("sdk: unit handle %d out of range", h)
			}
			u, err := c.define(r)
			if err != nil {
				return err
			}
			for int(h) >= len(c.handles) {
				c.handles = append(c.handles, nil)
			}
			c.handles[h], u.handle = u, h+1
		case wire.OpUnitForgotten:
			c.ForgetUnit(r.Str())
		default:
			return fmt.Errorf("sdk: unknown update op %d", op)
		}
	}
	return r.Err()
}

// maxHandles bounds the host's unit handles: it numbers the units it
// defines from zero and reuses the numbers of forgotten ones.
const maxHandles = 1 << 22

// define reads a unit's definition (name and options) from r and records
// it.
func (c *Cluster) define(r *wire.Reader) (*Unit, error) {
	start := r.B
	q, rest, err := wire.ReadRequest(start)
	if err != nil {
		return nil, err
	}
	r.B = rest
	name := &wire.Reader{B: start}
	name.Bytes()
	bd := c.bodyFor(name.B[:len(name.B)-len(rest)], func() ([]wire.Option, error) { return q.Options, nil })
	u := &Unit{Name: q.Unit, Options: bd.options, body: bd}
	c.DefineUnit(u)
	return u, nil
}

// runner holds a policy and its resident cluster, and answers the ABI's
// calls with bytes in, bytes out: the guest side of the ABI (docs/abi.md).
// The WebAssembly exports use the registered one; fleetd runs a policy
// natively through one (package native).
type runner struct {
	cluster *Cluster
	policy  Policy
	out     wire.Writer
	choice  [3]uint64 // a deferred choice's answer (wire.Deferred), written as words
}

// maxBodies bounds the cache of decoded unit bodies.
const maxBodies = 1024

// newRunner returns a runner with an empty cluster.
func newRunner(p Policy) *runner {
	return &runner{cluster: NewCluster(), policy: p}
}

// Apply applies a batch of updates.
func (r *runner) Apply(b []byte) error { return r.cluster.apply(b) }

func init() { hook.NewRunner = func(p any) hook.Runner { return newRunner(p.(Policy)) } }

// Place decides for one encoded request and returns the encoded decision.
// The result is valid until the next call.
//
// A unit the cluster knows with the same options (fleetd defines every unit
// before it asks where one goes) is passed as defined, so a decision
// allocates nothing for it.
func (r *runner) Place(b []byte) ([]byte, error) {
	rd := &wire.Reader{B: b}
	name := rd.Bytes()
	if rd.Err() != nil {
		return nil, rd.Err()
	}
	c := r.cluster
	u := c.units[string(name)]
	if u == nil || u.body == nil || !sameBytes(u.body.key, rd.B) {
		bd := c.bodyFor(rd.B, func() ([]wire.Option, error) {
			q, err := wire.DecodeRequest(b)
			return q.Options, err
		})
		if bd == nil {
			return nil, errors.New("sdk: the request does not decode")
		}
		u = &Unit{Name: string(name), Options: bd.options, body: bd}
	}
	return r.decide(u), nil
}

// PlaceDefined decides for the unit the host defined under handle h
// (wire.OpUnitHandle) and returns the encoded decision, valid until the next
// call. It is fleet_place for a unit whose options the guest holds already:
// nothing to send, decode or compare.
func (r *runner) PlaceDefined(h uint32) ([]byte, error) {
	if int(h) >= len(r.cluster.handles) || r.cluster.handles[h] == nil {
		return nil, fmt.Errorf("sdk: no unit defined under handle %d", h)
	}
	return r.decide(r.cluster.handles[h]), nil
}

func (r *runner) decide(u *Unit) []byte {
	d := r.policy(r.cluster, u)
	if d.leftToHost() {
		return r.deferred(d.among)
	}
	return r.answer(&d)
}

// answer encodes d, which names its machine (or none), in the Runner's
// buffer.
func (r *runner) answer(d *Decision) []byte {
	if len(d.Rejected) == 0 {
		// No reasons (a machine was chosen, the common case): the bytes
		// of wire.Decision.Encode, written in place, which in a
		// WebAssembly guest costs a fraction of the appends.
		n := len(d.Machine)
		if cap(r.out.B) < 8+n {
			r.out.B = make([]byte, 0, 8+n+64)
		}
		b := r.out.B[:8+n]
		binary.LittleEndian.PutUint32(b, uint32(n))
		copy(b[4:], d.Machine)
		binary.LittleEndian.PutUint32(b[4+n:], 0)
		r.out.B = b
		return b
	}
	wd := wire.Decision{Machine: d.Machine, Rejected: d.Rejected}
	r.out.B = r.out.B[:0]
	wd.Encode(&r.out)
	return r.out.B
}

// bodyFor returns the shared body of units whose options are encoded as
// key, decoding them with decode the first time; nil when they do not
// decode. Units with the same options share one body and its memos: a
// template's instances, or a unit offered again.
func (c *Cluster) bodyFor(key []byte, decode func() ([]wire.Option, error)) *body {
	if c.last != nil && sameBytes(c.last.key, key) {
		return c.last
	}
	bd := c.bodies[string(key)]
	if bd == nil {
		opts, err := decode()
		if err != nil {
			return nil
		}
		if len(c.bodies) >= maxBodies {
			clear(c.bodies)
		}
		bd = &body{key: bytes.Clone(key), options: opts}
		c.bodies[string(bd.key)] = bd
	}
	c.last = bd
	return bd
}

// sameBytes is bytes.Equal eight bytes at a time: in a WebAssembly guest
// the runtime's comparison goes byte by byte and costs more than the rest of
// a decision.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for len(a) >= 8 {
		if binary.LittleEndian.Uint64(a) != binary.LittleEndian.Uint64(b) {
			return false
		}
		a, b = a[8:], b[8:]
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
