package policies

import (
	"cmp"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Machine is what a policy knows of a machine.
type Machine struct {
	ID, IP   string
	Metadata map[string]string
}

// mirror is the host's copy of the cluster a policy's instances hold, with
// the updates since each generation, so an instance gets only what changed.
type mirror struct {
	machines map[string]*Machine
	placed   map[placement]bool
	units    map[string]UnitDef // defined units, for rules between units
	gen      uint64             // generation of the newest update
	log      [][]byte           // log[k] is the update to generation base+k+1
	base     uint64

	// Handles, for a module with fleet_place_defined: every defined unit
	// has a number, sent with its options (wire.OpUnitHandle), by which
	// the host then asks for its placement.
	handles bool
	handle  map[string]uint32
	free    []uint32 // numbers of forgotten units, to reuse
}

type placement struct{ unit, machine string }

// maxLog bounds the updates kept; an instance further behind gets the whole
// cluster again.
const maxLog = 256

func newMirror(handles bool) *mirror {
	return &mirror{machines: map[string]*Machine{}, placed: map[placement]bool{}, units: map[string]UnitDef{},
		handles: handles, handle: map[string]uint32{}}
}

// since returns the updates an instance at generation g needs, and the
// generation they bring it to.
func (m *mirror) since(g uint64) ([]byte, uint64) {
	if g == m.gen {
		return nil, g
	}
	if g < m.base || g == 0 {
		return m.full(), m.gen
	}
	var out []byte
	for _, u := range m.log[g-m.base:] {
		out = append(out, u...)
	}
	return out, m.gen
}

// full encodes the whole cluster, starting with a reset.
func (m *mirror) full() []byte {
	var w wire.Writer
	w.U8(wire.OpReset)
	for _, id := range slices.Sorted(maps.Keys(m.machines)) {
		encodeMachine(&w, m.machines[id])
	}
	for _, p := range sortedPlacements(maps.Keys(m.placed)) {
		w.U8(wire.OpUnitPlaced)
		w.Str(p.unit)
		w.Str(p.machine)
	}
	for _, name := range slices.Sorted(maps.Keys(m.units)) {
		m.encodeUnit(&w, name, m.units[name])
	}
	return w.B
}

// sortedPlacements is ps by unit, then machine: an instance is sent the
// same bytes for the same cluster, whatever the order of a Go map.
func sortedPlacements(ps iter.Seq[placement]) []placement {
	return slices.SortedFunc(ps, func(a, b placement) int {
		return cmp.Or(strings.Compare(a.unit, b.unit), strings.Compare(a.machine, b.machine))
	})
}

// UnitDef is a unit's options as a policy sees them, with the hash that
// identifies them.
type UnitDef struct {
	Hash    string
	Options []wire.Option
}

// encodeUnit writes a unit's definition, under its handle when the
// module takes handles (numbering a unit the first time).
func (m *mirror) encodeUnit(w *wire.Writer, name string, u UnitDef) {
	if m.handles {
		h, ok := m.handle[name]
		if !ok {
			h = uint32(len(m.handle))
			if n := len(m.free); n > 0 {
				h, m.free = m.free[n-1], m.free[:n-1]
			}
			m.handle[name] = h
		}
		w.U8(wire.OpUnitHandle)
		w.U32(h)
	} else {
		w.U8(wire.OpUnitDefined)
	}
	(&wire.Request{Unit: name, Options: u.Options}).Encode(w)
}

// handleFor is the handle under which the guest holds req's unit with
// req's options, if it does.
func (m *mirror) handleFor(req wire.Request) (uint32, bool) {
	if !m.handles {
		return 0, false
	}
	u, ok := m.units[req.Unit]
	if !ok || !slices.Equal(u.Options, req.Options) {
		return 0, false
	}
	h, ok := m.handle[req.Unit]
	return h, ok
}

// define brings the mirror's unit definitions to units and records the
// difference as one update.
func (m *mirror) define(units map[string]UnitDef) {
	var w wire.Writer
	for _, name := range slices.Sorted(maps.Keys(units)) {
		u := units[name]
		if old, ok := m.units[name]; ok && old.Hash == u.Hash {
			continue
		}
		m.units[name] = u
		m.encodeUnit(&w, name, u)
	}
	for _, name := range slices.Sorted(maps.Keys(m.units)) {
		if _, ok := units[name]; !ok {
			delete(m.units, name)
			w.U8(wire.OpUnitForgotten)
			w.Str(name)
			if h, ok := m.handle[name]; ok {
				delete(m.handle, name)
				m.free = append(m.free, h)
			}
		}
	}
	m.record(w.B)
}

// Define tells the policy which units exist and their options, for rules
// between units (Conflicts). Instances catch up on their next call.
func (p *Policy) Define(units map[string]UnitDef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mirror.define(units)
}

func encodeMachine(w *wire.Writer, mc *Machine) {
	w.U8(wire.OpMachine)
	w.Str(mc.ID)
	w.Str(mc.IP)
	keys := make([]string, 0, len(mc.Metadata))
	for k := range mc.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.U32(uint32(len(keys)))
	for _, k := range keys {
		w.Str(k)
		w.Str(mc.Metadata[k])
	}
}

// record appends one update, if it says anything.
func (m *mirror) record(b []byte) {
	if len(b) == 0 {
		return
	}
	m.gen++
	m.log = append(m.log, b)
	if len(m.log) > maxLog {
		drop := len(m.log) - maxLog
		m.log = m.log[drop:]
		m.base += uint64(drop)
	}
}

// sync brings the mirror to the given machines and placements and records
// the difference as one update.
func (m *mirror) sync(machines []Machine, placed map[string]string) {
	on := make(map[string][]string, len(placed))
	for u, id := range placed {
		on[u] = []string{id}
	}
	m.syncAll(machines, on)
}

// syncAll is sync where a unit may be on several machines (a global unit).
func (m *mirror) syncAll(machines []Machine, placed map[string][]string) {
	var w wire.Writer
	seen := map[string]bool{}
	for i := range machines {
		mc := machines[i]
		seen[mc.ID] = true
		old := m.machines[mc.ID]
		if old != nil && old.IP == mc.IP && maps.Equal(old.Metadata, mc.Metadata) {
			continue
		}
		cp := mc
		m.machines[mc.ID] = &cp
		encodeMachine(&w, &cp)
	}
	for _, id := range slices.Sorted(maps.Keys(m.machines)) {
		if !seen[id] {
			delete(m.machines, id)
			w.U8(wire.OpMachineGone)
			w.Str(id)
			for p := range m.placed {
				if p.machine == id {
					delete(m.placed, p)
				}
			}
		}
	}
	want := map[placement]bool{}
	for u, ids := range placed {
		for _, id := range ids {
			want[placement{u, id}] = true
		}
	}
	// Only the differences are sorted: most placements stay as they are.
	var gone, added []placement
	for p := range m.placed {
		if !want[p] {
			gone = append(gone, p)
		}
	}
	for p := range want {
		if !m.placed[p] && m.machines[p.machine] != nil {
			added = append(added, p)
		}
	}
	for _, p := range sortedPlacements(slices.Values(gone)) {
		delete(m.placed, p)
		w.U8(wire.OpUnitUnplaced)
		w.Str(p.unit)
		w.Str(p.machine)
	}
	for _, p := range sortedPlacements(slices.Values(added)) {
		m.placed[p] = true
		w.U8(wire.OpUnitPlaced)
		w.Str(p.unit)
		w.Str(p.machine)
	}
	m.record(w.B)
}

// place records, as one update, that unit is on machine too.
func (m *mirror) place(unit, machine string) {
	p := placement{unit, machine}
	if m.placed[p] || m.machines[machine] == nil {
		return
	}
	m.placed[p] = true
	var w wire.Writer
	w.U8(wire.OpUnitPlaced)
	w.Str(unit)
	w.Str(machine)
	m.record(w.B)
}

// Placed tells the policy that unit is now on machine, as well as where it
// already is: the one change a placement makes, sent instead of the whole
// cluster again (Placer.Begin).
func (p *Policy) Placed(unit, machine string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mirror.place(unit, machine)
}

// Sync tells the policy the cluster as it is: the live machines and which
// unit is on which machine. Instances catch up on their next call.
func (p *Policy) Sync(machines []Machine, placed map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mirror.sync(machines, placed)
	p.outgrown.Store(nil) // a new pass: an instance may fit what the cluster is now
}

// SyncAll is Sync where a unit may be on several machines: global units run
// on every machine that qualifies, and count on each.
func (p *Policy) SyncAll(machines []Machine, placed map[string][]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mirror.syncAll(machines, placed)
	p.outgrown.Store(nil) // a new pass: an instance may fit what the cluster is now
}
