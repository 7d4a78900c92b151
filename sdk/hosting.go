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
	key     string            // the glob (Hosting)
	options []string          // the option names (HostingDeclaring)
	test    func(string) bool // does a unit count
	count   []int32           // by slot
	set     Set
	owner   *Cluster // the cluster keeping it; nil once dropped (Hosted)
	fresh   *Cluster // owner while set is current; nil when it must be rebuilt (a placed unit's definition changed) or was dropped
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
	t.fresh = t.owner
}

// current brings t up to date and returns it.
func (c *Cluster) current(t *tally) *tally {
	if t.fresh == nil {
		c.rebuild(t)
	}
	return t
}

// addTally builds t's set and keeps it in list.
func (c *Cluster) addTally(list *[]*tally, t *tally) *tally {
	if len(*list) >= maxTallies {
		dropTallies(*list)
		*list = (*list)[:0]
	}
	t.owner = c
	c.rebuild(t)
	*list = append(*list, t)
	return t
}

// dropTallies marks indexes the cluster no longer keeps current, so that a
// Hosted holding one looks it up again.
func dropTallies(list []*tally) {
	for _, t := range list {
		t.owner, t.fresh = nil, nil
	}
}

// Hosted is Hosting(Glob), or when Glob is empty HostingDeclaring(Options...),
// for a policy that keeps it between decisions (per unit body, with
// Unit.Memo, or in a variable): HostingKept finds the cluster's set once,
// and again only when the cluster dropped it, so a decision reads it
// without a lookup. Do not change Glob or Options after the first use.
type Hosted struct {
	Glob    string
	Options []string

	t *tally
}

// HostingKept is the set h names; like Hosting, it is kept current and must
// not be modified.
func (c *Cluster) HostingKept(h *Hosted) Set {
	if t := h.t; t != nil && t.fresh == c {
		return t.set // inlined: the common case costs no call
	}
	return c.hostingKept(h)
}

func (c *Cluster) hostingKept(h *Hosted) Set {
	if h.t == nil || h.t.owner != c {
		if h.Glob != "" {
			h.t = c.hostingTally(h.Glob)
		} else {
			h.t = c.declaringTally(h.Options)
		}
		return h.t.set
	}
	return c.current(h.t).set
}

// Hosting is the machines that run a unit whose name matches glob
// (path.Match syntax; a plain unit name matches itself). The first call for a
// glob looks at every placement; after that the set is kept current. The set
// belongs to the cluster: read it, combine it into a new set, do not modify
// it.
func (c *Cluster) Hosting(glob string) Set { return c.hostingTally(glob).set }

func (c *Cluster) hostingTally(glob string) *tally {
	for _, t := range c.hosting {
		if t.key == glob {
			return c.current(t)
		}
	}
	// Only now build the test: a closure allocates.
	return c.addTally(&c.hosting, &tally{key: glob, test: func(u string) bool {
		ok, _ := path.Match(glob, u)
		return ok
	}})
}

// HostingDeclaring is the machines that run a unit whose [X-Fleet] section
// has one of options (known from DefineUnit): one set for all of them, so a
// policy that treats several options alike (an option and its deprecated
// spelling, say) looks at those machines in one pass. Like Hosting, it is
// kept current and must not be modified.
func (c *Cluster) HostingDeclaring(options ...string) Set { return c.declaringTally(options).set }

func (c *Cluster) declaringTally(options []string) *tally {
	for _, t := range c.declaring {
		if slices.Equal(t.options, options) {
			return c.current(t)
		}
	}
	opts := slices.Clone(options)
	return c.addTally(&c.declaring, &tally{options: opts, test: func(u string) bool {
		d := c.units[u]
		return d != nil && slices.ContainsFunc(d.Options, func(o wire.Option) bool {
			return o.Section == "X-Fleet" && slices.Contains(opts, o.Name)
		})
	}})
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
			if t.fresh != nil && t.test(unit) {
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
			t.fresh = nil
		}
	}
}
