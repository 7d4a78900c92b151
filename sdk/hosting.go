package sdk

import (
	"path"
	"slices"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Indexes of where units run, kept current as units are placed and
// machines leave, so that rules between units (conflicts, affinity) are set
// operations instead of a scan of every unit on every candidate machine.

// tally is a set of machines kept by counting, per machine, the units on it
// that pass a test.
type tally struct {
	key   string            // the glob or option name
	test  func(string) bool // does a unit count
	count []int32           // by slot
	set   Set
	dirty bool // rebuild before use: a placed unit's definition changed
}

// maxTallies bounds each kind of index; a policy asking for more (globs
// built per unit, say) makes the cluster drop and rebuild them as needed.
const maxTallies = 256

func (t *tally) inc(slot int, d int32) {
	for len(t.count) <= slot {
		t.count = append(t.count, 0)
	}
	t.count[slot] += d
	if t.count[slot] > 0 {
		t.set.add(slot)
	} else {
		t.set.remove(slot)
	}
}

func (t *tally) clearSlot(slot int) {
	if slot < len(t.count) {
		t.count[slot] = 0
	}
	t.set.remove(slot)
}

func (c *Cluster) rebuild(t *tally) {
	clear(t.count)
	clear(t.set.words)
	for _, m := range c.slots {
		if m == nil {
			continue
		}
		for u := range m.Units {
			if t.test(u) {
				t.inc(m.slot, 1)
			}
		}
	}
	t.dirty = false
}

// tallyFor finds the index under key in list, or builds one with the test
// newTest makes (only then: a test is a closure, and closures allocate).
func (c *Cluster) tallyFor(list *[]*tally, key string, newTest func() func(string) bool) *tally {
	for _, t := range *list {
		if t.key == key {
			if t.dirty {
				c.rebuild(t)
			}
			return t
		}
	}
	if len(*list) >= maxTallies {
		*list = (*list)[:0]
	}
	t := &tally{key: key, test: newTest()}
	c.rebuild(t)
	*list = append(*list, t)
	return t
}

// Hosting is the machines that run a unit whose name matches glob
// (path.Match syntax; a plain unit name matches itself). The first call for a
// glob looks at every placement; after that the set is kept current. The set
// belongs to the cluster: read it, combine it into a new set, do not modify
// it.
func (c *Cluster) Hosting(glob string) Set {
	return c.tallyFor(&c.hosting, glob, func() func(string) bool {
		return func(u string) bool {
			ok, _ := path.Match(glob, u)
			return ok
		}
	}).set
}

// HostingDeclaring is the machines that run a unit whose [X-Fleet] section
// has option (known from DefineUnit). Like Hosting, it is kept current and
// must not be modified.
func (c *Cluster) HostingDeclaring(option string) Set {
	return c.tallyFor(&c.declaring, option, func() func(string) bool {
		return func(u string) bool {
			d := c.units[u]
			return d != nil && slices.ContainsFunc(d.Options, func(o wire.Option) bool { return o.Section == "X-Fleet" && o.Name == option })
		}
	}).set
}

// Placed reports on how many machines the cluster has the unit.
func (c *Cluster) Placed(unit string) int { return len(c.where[unit]) }

// Hosts is Placed(u.Name), without a lookup when u is the cluster's own
// definition of the unit (what a policy is given for a defined unit).
func (c *Cluster) Hosts(u *Unit) int {
	if u.defined {
		return u.hosts
	}
	return c.Placed(u.Name)
}

// HostsOf is the machines that run unit: a new set the caller may modify.
func (c *Cluster) HostsOf(unit string) Set {
	var s Set
	for _, slot := range c.where[unit] {
		s.add(slot)
	}
	return s
}

// placed keeps the indexes current when unit arrives on m (d = 1) or leaves
// it (d = -1); m.Units is already updated.
func (c *Cluster) placed(unit string, m *Machine, d int32) {
	if d > 0 {
		c.where[unit] = append(c.where[unit], m.slot)
	} else {
		c.unwhere(unit, m.slot)
	}
	if u := c.units[unit]; u != nil {
		u.hosts = len(c.where[unit])
	}
	for _, list := range [][]*tally{c.hosting, c.declaring} {
		for _, t := range list {
			if !t.dirty && t.test(unit) {
				t.inc(m.slot, d)
			}
		}
	}
}

// machineGone forgets a departed machine's placements.
func (c *Cluster) machineGone(m *Machine) {
	for u := range m.Units {
		c.unwhere(u, m.slot)
		if d := c.units[u]; d != nil {
			d.hosts = len(c.where[u])
		}
	}
	for _, list := range [][]*tally{c.hosting, c.declaring} {
		for _, t := range list {
			t.clearSlot(m.slot)
		}
	}
}

func (c *Cluster) unwhere(unit string, slot int) {
	w := slices.DeleteFunc(c.where[unit], func(s int) bool { return s == slot })
	if len(w) == 0 {
		delete(c.where, unit)
	} else {
		c.where[unit] = w
	}
}

// redefined marks the option indexes stale when a placed unit's options
// change.
func (c *Cluster) redefined(unit string) {
	if len(c.where[unit]) > 0 {
		for _, t := range c.declaring {
			t.dirty = true
		}
	}
}
