package sdk

import "unsafe"

// The word loop of a policy's hot path. Go's WebAssembly code checks every
// index of a slice and dispatches every round of a loop, which costs several
// times the operation itself; Narrowed's loop takes four words a round
// through pointers whose bounds are checked once, before the loop.

// Narrowed is base without the machines hosting a unit each of avoid names,
// in the cluster's working set (as Working: valid until the next call of
// Working or Narrowed), with whether it is empty and whether it meets watch:
// whether a machine of it hosts a unit watch names. It is Working, a
// Subtract of each HostingKept(avoid[i]), Empty and a test against
// HostingKept(watch) in one pass over the words: in a WebAssembly guest a
// pass costs far more than the operations in it, so this is how a policy's
// hot path should compose where units run.
func (c *Cluster) Narrowed(base Set, watch *Hosted, avoid []Hosted) (s *Set, empty, meets bool) {
	n := len(base.words)
	w := c.working.words
	if cap(w) < n {
		w = make([]uint64, n)
	}
	w = w[:n]
	c.working.words = w
	a, o := base.words, []uint64(nil)
	switch len(avoid) {
	case 0:
	case 1:
		o = c.HostingKept(&avoid[0]).words
	default:
		copy(w, a)
		for i := range avoid[:len(avoid)-1] {
			c.working.Subtract(c.HostingKept(&avoid[i]))
		}
		a, o = w, c.HostingKept(&avoid[len(avoid)-1]).words
	}
	k := c.HostingKept(watch).words
	if len(o) < n {
		o = c.pad(&c.padMinus, o, n)
	}
	if len(k) < n {
		k = c.pad(&c.padWatch, k, n)
	}
	// The loop is here rather than in a function of its own: in a
	// WebAssembly guest a call costs what several words do.
	var any, met uint64
	if n > 0 {
		_, _, _ = a[n-1], o[n-1], k[n-1] // the only bounds checks
		pw, pa, po, pk := unsafe.Pointer(&w[0]), unsafe.Pointer(&a[0]), unsafe.Pointer(&o[0]), unsafe.Pointer(&k[0])
		i := 0
		for ; i+4 <= n; i += 4 {
			d := (*[4]uint64)(unsafe.Add(pw, i*8))
			x, y, z := (*[4]uint64)(unsafe.Add(pa, i*8)), (*[4]uint64)(unsafe.Add(po, i*8)), (*[4]uint64)(unsafe.Add(pk, i*8))
			w0, w1, w2, w3 := x[0]&^y[0], x[1]&^y[1], x[2]&^y[2], x[3]&^y[3]
			d[0], d[1], d[2], d[3] = w0, w1, w2, w3
			any |= w0 | w1 | w2 | w3
			met |= w0&z[0] | w1&z[1] | w2&z[2] | w3&z[3]
		}
		for ; i < n; i++ {
			x := a[i] &^ o[i]
			w[i] = x
			any |= x
			met |= x & k[i]
		}
	}
	return &c.working, any == 0, met != 0
}
