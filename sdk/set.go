package sdk

import "math/bits"

// Set is a set of machines, as bits over the cluster's machine slots. Sets
// from With, All, And and Or make a policy's filtering a few word operations
// instead of a map lookup per machine, which matters inside WebAssembly.
type Set struct{ words []uint64 }

func (s Set) clone(n int) Set {
	w := make([]uint64, n)
	copy(w, s.words)
	return Set{words: w}
}

func (s *Set) add(slot int) {
	for len(s.words) <= slot/64 {
		s.words = append(s.words, 0)
	}
	s.words[slot/64] |= 1 << (slot % 64)
}

func (s *Set) remove(slot int) {
	if slot/64 < len(s.words) {
		s.words[slot/64] &^= 1 << (slot % 64)
	}
}

// Add puts m in s.
func (s *Set) Add(m *Machine) { s.add(m.slot) }

// And is the machines in both s and o.
func (s Set) And(o Set) Set {
	n := min(len(s.words), len(o.words))
	out := make([]uint64, n)
	for i := 0; i < n; i++ {
		out[i] = s.words[i] & o.words[i]
	}
	return Set{words: out}
}

// Or is the machines in s or o.
func (s Set) Or(o Set) Set {
	if len(o.words) > len(s.words) {
		s, o = o, s
	}
	out := s.clone(len(s.words))
	for i, w := range o.words {
		out.words[i] |= w
	}
	return out
}

// Clone is a copy of s that can be modified.
func (s Set) Clone() Set { return s.clone(len(s.words)) }

// Intersect keeps in s, in place, only the machines also in o.
func (s *Set) Intersect(o Set) {
	for i := range s.words {
		if i < len(o.words) {
			s.words[i] &= o.words[i]
		} else {
			s.words[i] = 0
		}
	}
}

// Subtract removes from s, in place, the machines in o.
func (s *Set) Subtract(o Set) {
	a, b := s.words, o.words
	// Four words a round: in a WebAssembly guest each round of a loop
	// costs a dispatch and checks that cost more than the words.
	for len(a) >= 4 && len(b) >= 4 {
		a[0], a[1], a[2], a[3] = a[0]&^b[0], a[1]&^b[1], a[2]&^b[2], a[3]&^b[3]
		a, b = a[4:], b[4:]
	}
	for i := range min(len(a), len(b)) {
		a[i] &^= b[i]
	}
}

// Delete removes m from s.
func (s *Set) Delete(m *Machine) { s.remove(m.slot) }

// Has reports whether m is in s.
func (s Set) Has(m *Machine) bool {
	return m.slot/64 < len(s.words) && s.words[m.slot/64]&(1<<(m.slot%64)) != 0
}

// Empty reports whether s has no machine.
func (s Set) Empty() bool {
	for _, w := range s.words {
		if w != 0 {
			return false
		}
	}
	return true
}

// Len is the number of machines in s.
func (s Set) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// All is every live machine.
func (c *Cluster) All() Set { return c.all.clone(len(c.all.words)) }

// Working is a copy of s in a set the cluster owns and reuses, to narrow in
// place without allocating. It is valid until the next call of Working.
func (c *Cluster) Working(s Set) *Set {
	c.working.words = append(c.working.words[:0], s.words...)
	return &c.working
}

// pad is s, shorter than n words, copied into *buf with zeros up to n:
// sets grow only as far as their highest machine.
func (c *Cluster) pad(buf *[]uint64, s []uint64, n int) []uint64 {
	if cap(*buf) < n {
		*buf = make([]uint64, n)
	}
	p := (*buf)[:n]
	clear(p[copy(p, s):])
	return p
}

// EachIn calls f for every machine in both a and b, without building their
// intersection. f may remove machines from a.
func (c *Cluster) EachIn(a, b Set, f func(*Machine)) {
	for i := range min(len(a.words), len(b.words)) {
		w := a.words[i] & b.words[i]
		for w != 0 {
			bit := bits.TrailingZeros64(w)
			w &= w - 1
			if m := c.slots[i*64+bit]; m != nil {
				f(m)
			}
		}
	}
}

// Candidates is every live machine in a set the cluster owns and reuses:
// All without allocating, for a policy's hot path. Narrow it with KeepWith.
// It is valid until the next call of Candidates; keep a copy with Or if the
// policy needs it longer.
func (c *Cluster) Candidates() *Set {
	c.scratch.words = append(c.scratch.words[:0], c.all.words...)
	return &c.scratch
}

// With is the machines whose metadata key has one of values.
func (c *Cluster) With(key string, values ...string) Set {
	var out Set
	for _, v := range values {
		if s, ok := c.index[key][v]; ok {
			out = out.Or(*s)
		}
	}
	return out
}

// KeepWith removes from s, in place, the machines whose metadata key has
// none of values: s.And(c.With(key, values...)) without allocating, for the
// hot path of a policy.
func (c *Cluster) KeepWith(s *Set, key string, values ...string) {
	var buf [4]*Set
	sets := buf[:0]
	byValue := c.index[key]
	for _, v := range values {
		if vs := byValue[v]; vs != nil {
			sets = append(sets, vs)
		}
	}
	keep(s, sets)
}

// Match is a requirement on one metadata key: the machine's value must be
// one of Values. Keep resolves it against the cluster's index once and again
// only when the index has grown, so a policy that keeps its Matches (per
// unit body, with Unit.Memo) narrows a set without a map lookup.
type Match struct {
	Key    string
	Values []string

	c    *Cluster
	gen  int
	sets []*Set
}

// Keep removes from s, in place, the machines that do not satisfy m: the
// same as KeepWith(s, m.Key, m.Values...).
func (c *Cluster) Keep(s *Set, m *Match) {
	if m.c != c || m.gen != c.indexGen {
		m.c, m.gen, m.sets = c, c.indexGen, m.sets[:0]
		for _, v := range m.Values {
			if vs := c.index[m.Key][v]; vs != nil {
				m.sets = append(m.sets, vs)
			}
		}
	}
	keep(s, m.sets)
}

func keep(s *Set, sets []*Set) {
	for i := range s.words {
		var acc uint64
		for _, vs := range sets {
			if i < len(vs.words) {
				acc |= vs.words[i]
			}
		}
		s.words[i] &= acc
	}
}

// Filter is a set of metadata requirements whose result the cluster keeps:
// Filtered recomputes it only when machines or their metadata changed, so a
// policy that keeps its Filter (per unit body, with Unit.Memo) pays nothing
// for unchanged requirements between decisions.
type Filter struct {
	Matches []Match

	c   *Cluster
	gen int
	set Set
}

// Filtered is the live machines that satisfy every Match of f. The set is
// f's: read it, or Clone it to modify.
func (c *Cluster) Filtered(f *Filter) Set {
	if f.c != c || f.gen != c.memberGen || f.set.words == nil {
		c.filter(f)
	}
	return f.set
}

func (c *Cluster) filter(f *Filter) {
	f.c, f.gen = c, c.memberGen
	f.set.words = append(f.set.words[:0], c.all.words...)
	for i := range f.Matches {
		c.Keep(&f.set, &f.Matches[i])
	}
}

// Each calls f for every machine in s, in no particular order.
func (c *Cluster) Each(s Set, f func(*Machine)) {
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			if m := c.slots[i*64+b]; m != nil {
				f(m)
			}
		}
	}
}

// LeastLoaded returns the machine of s with the fewest units, ties broken by
// the lower ID (fleet's rule), or nil when s is empty. In a WebAssembly
// policy the scan runs natively in fleetd (package kernel).
func (c *Cluster) LeastLoaded(s Set) *Machine {
	c.Machines() // ranks are current
	if slot := least(s.words, c.keys); slot >= 0 {
		return c.slots[slot] // nil for a slot whose machine left (its key is the largest)
	}
	return nil
}
