package sdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
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

// Cluster is the policy's view of the cluster.
type Cluster struct {
	machines map[string]*Machine
	units    map[string]*Unit
	sorted   []*Machine // cache of Machines(), nil when stale

	slots    []*Machine // machine by slot; nil for a free slot
	ids      []uint64   // by slot: where the machine's ID is in a guest's memory (LeastLoadedOf)
	free     []int      // free slots
	all      Set        // every live machine
	keys     []uint64   // by slot: units<<32 | rank, what LeastLoaded compares
	scratch  Set        // Candidates
	working  Set        // Working, Narrowed
	padMinus []uint64   // Narrowed: a set shorter than the others, padded
	padWatch []uint64
	index    map[string]map[string]*Set // metadata key -> value -> machines
	indexGen int                        // counts the sets added to index

	declares []declared // X-Fleet option names of defined units: few, so a slice beats a map

	where     map[string][]int // unit -> the slots of the machines it runs on
	hosting   []*tally         // Hosting, by glob
	declaring []*tally         // HostingDeclaring, by options
	memberGen int              // counts changes of machines and their metadata (Filtered)

	bodies map[string]*body // by the encoded options
	last   *body            // the body last asked for: a template's instances come in a row

	handles []*Unit // defined units by the host's handle (OpUnitHandle), for fleet_place_defined
}

// declared is how many defined units have an [X-Fleet] option.
type declared struct {
	name  string
	units int
}

// NewCluster returns an empty cluster, for tests.
func NewCluster() *Cluster {
	return &Cluster{machines: map[string]*Machine{}, units: map[string]*Unit{}, index: map[string]map[string]*Set{},
		where: map[string][]int{}, bodies: map[string]*body{}}
}

func (c *Cluster) indexMachine(m *Machine, add bool) {
	for k, v := range m.Metadata {
		byValue := c.index[k]
		if byValue == nil {
			byValue = map[string]*Set{}
			c.index[k] = byValue
		}
		s := byValue[v]
		if s == nil {
			s = &Set{}
			byValue[v] = s
			c.indexGen++
		}
		if add {
			s.add(m.slot)
		} else {
			s.remove(m.slot)
		}
	}
}

// Machines returns the live machines sorted by ID. Do not modify the slice.
func (c *Cluster) Machines() []*Machine {
	if c.sorted == nil {
		c.sortMachines()
	}
	return c.sorted
}

// sortMachines is Machines when machines changed, kept out of it so that
// Machines is inlined: in a WebAssembly guest a call costs more than the
// check.
func (c *Cluster) sortMachines() {
	c.sorted = make([]*Machine, 0, len(c.machines))
	for _, m := range c.machines {
		c.sorted = append(c.sorted, m)
	}
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].ID < c.sorted[j].ID })
	for i, m := range c.sorted {
		m.rank = i
		c.rekey(m)
	}
}

// Machine returns the machine with id, or nil.
func (c *Cluster) Machine(id string) *Machine { return c.machines[id] }

// Unit returns a unit the cluster knows (its options), or nil.
func (c *Cluster) Unit(name string) *Unit { return c.units[name] }

// AddMachine adds or replaces a machine.
func (c *Cluster) AddMachine(id, ip string, metadata map[string]string) *Machine {
	m := c.machines[id]
	if m == nil {
		m = &Machine{ID: id, Units: map[string]bool{}, slot: len(c.slots)}
		if n := len(c.free); n > 0 {
			m.slot, c.free = c.free[n-1], c.free[:n-1]
			c.slots[m.slot] = m
		} else {
			c.slots = append(c.slots, m)
			c.keys = append(c.keys, 0)
			c.ids = append(c.ids, 0)
		}
		c.ids[m.slot] = idRef(m.ID)
		c.machines[id] = m
		c.all.add(m.slot)
		c.sorted = nil
	} else {
		c.indexMachine(m, false)
	}
	c.memberGen++
	m.IP, m.Metadata = ip, metadata
	if m.Metadata == nil {
		m.Metadata = map[string]string{}
	}
	c.indexMachine(m, true)
	return m
}

// rekey records m's load and rank for LeastLoaded.
func (c *Cluster) rekey(m *Machine) { c.keys[m.slot] = uint64(len(m.Units))<<32 | uint64(m.rank) }

// RemoveMachine removes a machine.
func (c *Cluster) RemoveMachine(id string) {
	if m, ok := c.machines[id]; ok {
		c.machineGone(m)
		c.memberGen++
		c.indexMachine(m, false)
		c.all.remove(m.slot)
		c.slots[m.slot] = nil
		c.keys[m.slot] = ^uint64(0)
		c.ids[m.slot] = 0
		c.free = append(c.free, m.slot)
		delete(c.machines, id)
		c.sorted = nil
	}
}

// PlaceUnit records that unit runs on machine id.
func (c *Cluster) PlaceUnit(unit, id string) {
	if m := c.machines[id]; m != nil && !m.Units[unit] {
		m.Units[unit] = true
		c.rekey(m)
		c.placed(unit, m, 1)
	}
}

// UnplaceUnit records that unit left machine id.
func (c *Cluster) UnplaceUnit(unit, id string) {
	if m := c.machines[id]; m != nil && m.Units[unit] {
		delete(m.Units, unit)
		c.rekey(m)
		c.placed(unit, m, -1)
	}
}

// DefineUnit records a unit's options.
func (c *Cluster) DefineUnit(u *Unit) {
	if u.body == nil {
		u.body = &body{options: u.Options}
	}
	c.ForgetUnit(u.Name)
	c.units[u.Name] = u
	u.defined, u.hosts = true, len(c.where[u.Name])
	c.count(u, 1)
	c.redefined(u.Name)
}

// ForgetUnit drops a unit's options.
func (c *Cluster) ForgetUnit(name string) {
	if old := c.units[name]; old != nil {
		if h := int(old.handle) - 1; h >= 0 && h < len(c.handles) && c.handles[h] == old {
			c.handles[h] = nil
		}
		old.defined = false
		c.count(old, -1)
		delete(c.units, name)
		c.redefined(name)
	}
}

func (c *Cluster) count(u *Unit, delta int) {
	for i, o := range u.Options {
		if o.Section != "X-Fleet" || slices.ContainsFunc(u.Options[:i], func(p wire.Option) bool {
			return p.Section == "X-Fleet" && p.Name == o.Name
		}) {
			continue // counted once per unit
		}
		j := slices.IndexFunc(c.declares, func(d declared) bool { return d.name == o.Name })
		if j < 0 {
			c.declares = append(c.declares, declared{name: o.Name})
			j = len(c.declares) - 1
		}
		c.declares[j].units += delta
	}
}

// AnyUnitDeclares reports whether any unit the cluster knows has one of the
// given [X-Fleet] options, so a policy can skip a rule nobody uses.
func (c *Cluster) AnyUnitDeclares(names ...string) bool {
	for _, d := range c.declares {
		if d.units > 0 && slices.Contains(names, d.name) {
			return true
		}
	}
	return false
}

// Apply decodes a batch of updates from the host and applies them.
func (c *Cluster) Apply(b []byte) error {
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

// Decision is where a policy puts a unit: Machine is the chosen machine's
// ID, "" when none fits; Reject records why a machine was not chosen, which
// fleetctl shows when a unit cannot be placed.
type Decision struct {
	Machine  string
	Rejected []wire.Rejection

	among []uint64 // LeastLoadedOf in a WebAssembly guest: the set fleetd chooses from
}

// leftToHost reports whether d is LeastLoadedOf's in a WebAssembly guest,
// untouched by the policy since: fleetd makes the choice (a deferred
// choice, docs/abi.md).
func (d *Decision) leftToHost() bool {
	return d.among != nil && d.Machine == "" && len(d.Rejected) == 0
}

// Reject records why m was not chosen.
func (d *Decision) Reject(m *Machine, reason string) {
	d.Rejected = append(d.Rejected, wire.Rejection{Machine: m.ID, Reason: reason})
}

// RejectAll turns every machine down for one reason: for a mistake in the
// unit itself, which no machine could fix.
func (d *Decision) RejectAll(c *Cluster, reason string) {
	for _, m := range c.Machines() {
		d.Reject(m, reason)
	}
}

// Policy chooses a machine for a unit.
type Policy func(c *Cluster, u *Unit) Decision

// Runner holds a policy and its resident cluster, and answers the ABI's
// calls with bytes in, bytes out. The wasm exports use one; fleetd uses one
// to run a policy natively (benchmarks, differential tests).
type Runner struct {
	Cluster *Cluster
	Policy  Policy
	out     wire.Writer
	choice  [3]uint64 // a deferred choice's answer (wire.Deferred), written as words
}

// maxBodies bounds the cache of decoded unit bodies.
const maxBodies = 1024

// NewRunner returns a Runner with an empty cluster.
func NewRunner(p Policy) *Runner {
	return &Runner{Cluster: NewCluster(), Policy: p}
}

// Apply applies a batch of updates.
func (r *Runner) Apply(b []byte) error { return r.Cluster.Apply(b) }

// Place decides for one encoded request and returns the encoded decision.
// The result is valid until the next call.
//
// A unit the cluster knows with the same options (fleetd defines every unit
// before it asks where one goes) is passed as defined, so a decision
// allocates nothing for it.
func (r *Runner) Place(b []byte) ([]byte, error) {
	rd := &wire.Reader{B: b}
	name := rd.Bytes()
	if rd.Err() != nil {
		return nil, rd.Err()
	}
	c := r.Cluster
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
func (r *Runner) PlaceDefined(h uint32) ([]byte, error) {
	if int(h) >= len(r.Cluster.handles) || r.Cluster.handles[h] == nil {
		return nil, fmt.Errorf("sdk: no unit defined under handle %d", h)
	}
	return r.decide(r.Cluster.handles[h]), nil
}

func (r *Runner) decide(u *Unit) []byte {
	d := r.Policy(r.Cluster, u)
	if d.leftToHost() {
		return r.deferred(d.among)
	}
	return r.answer(&d)
}

// answer encodes d, which names its machine (or none), in the Runner's
// buffer.
func (r *Runner) answer(d *Decision) []byte {
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
