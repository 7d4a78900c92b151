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
// the lower ID (fleet's rule), or nil when s is empty.
func (c *Cluster) LeastLoaded(s Set) *Machine {
	c.Machines() // ranks are current
	var best *Machine
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			m := c.slots[i*64+b]
			if m == nil {
				continue
			}
			if best == nil || len(m.Units) < len(best.Units) || (len(m.Units) == len(best.Units) && m.rank < best.rank) {
				best = m
			}
		}
	}
	return best
}
