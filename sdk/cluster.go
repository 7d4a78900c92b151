package sdk

import (
	"slices"
	"sort"

	"github.com/wasmfleet/fleet/sdk/wire"
)

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
