package policy

import (
	"iter"
	"sort"

	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// machine is an SDK machine as fleet's rules see it (xfleet.Machine): every
// unit on it counts, with the spec the policy keeps for it.
type machine struct {
	c *sdk.Cluster
	m *sdk.Machine
}

func on(c *sdk.Cluster, m *sdk.Machine) xfleet.Machine { return machine{c, m} }

func (v machine) ID() string                  { return v.m.ID }
func (v machine) Metadata() map[string]string { return v.m.Metadata }
func (v machine) Runs(unit string) bool       { return v.m.Units[unit] }

// Neighbours are the units on the machine in name order, so that a
// rejection names the same unit every time.
func (v machine) Neighbours() iter.Seq2[string, *xfleet.Spec] {
	return func(yield func(string, *xfleet.Spec) bool) {
		names := make([]string, 0, len(v.m.Units))
		for n := range v.m.Units {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			var s *xfleet.Spec
			if u := v.c.Unit(n); u != nil {
				s = specOf(u).Spec
			}
			if !yield(n, s) {
				return
			}
		}
	}
}
