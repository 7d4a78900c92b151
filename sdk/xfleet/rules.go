package xfleet

import (
	"iter"
	"path"
	"strings"
)

// Machine is a machine as the rules see it.
type Machine interface {
	// ID is the machine's ID.
	ID() string
	// Metadata is the machine's metadata.
	Metadata() map[string]string
	// Runs reports whether unit is on the machine: what MachineOf asks.
	// Every unit there counts, global units included.
	Runs(unit string) bool
	// Neighbours are the units on the machine that the rules between units
	// (Conflicts, Replaces) are checked against, each with its Spec (nil
	// when its options are unknown), in an order that does not change from
	// call to call, which decides the unit a rejection names. The unit
	// being checked may be among them; it is skipped.
	Neighbours() iter.Seq2[string, *Spec]
}

// Reason is why a machine is turned down: the check that failed.
type Reason uint8

// The reasons, one for each check of the Chain, and Other for the reasons
// of a policy's own.
const (
	PinnedElsewhere  Reason = iota + 1 // MachineID names another machine
	MetadataMismatch                   // the machine's metadata does not satisfy MachineMetadata
	PeerMissing                        // a unit of MachineOf is not on the machine
	ConflictsWith                      // a unit on the machine conflicts with it, declared on either side
	ReplacedBy                         // a unit on the machine replaces it
	Other                              // a policy's own reason, not one of fleet's rules
)

var reasonNames = [...]struct{ option, label, text string }{
	PinnedElsewhere:  {"MachineID", "machine_id", "unit is pinned to MachineID "},
	MetadataMismatch: {"MachineMetadata", "machine_metadata", "metadata does not match MachineMetadata "},
	PeerMissing:      {"MachineOf", "machine_of", "MachineOf "},
	ConflictsWith:    {"Conflicts", "conflicts", "conflicts with "},
	ReplacedBy:       {"Replaces", "replaces", "replaced here by "},
	Other:            {"", "policy", ""},
}

// Option is the [X-Fleet] option whose check gives r ("" for Other).
func (r Reason) Option() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r].option
	}
	return ""
}

// Label is r as a metric label: machine_id, machine_metadata, machine_of,
// conflicts, replaces, or policy for Other.
func (r Reason) Label() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r].label
	}
	return "unknown"
}

func (r Reason) String() string { return r.Label() }

// Rejection is why a machine may not run a unit.
type Rejection struct {
	Reason Reason
	// Detail is what the check found: the machine the unit is pinned to,
	// the MachineMetadata key and values not met ("disk=ssd|nvme"), the
	// MachineOf unit missing, the unit that conflicts or replaces; for
	// Other, the policy's whole text.
	Detail string
}

// String is the rejection as fleetctl shows it.
func (r Rejection) String() string {
	switch r.Reason {
	case PeerMissing:
		return reasonNames[PeerMissing].text + r.Detail + " is not on this machine"
	case PinnedElsewhere, MetadataMismatch, ConflictsWith, ReplacedBy:
		return reasonNames[r.Reason].text + r.Detail
	}
	return r.Detail
}

// ParseRejection reads a rejection back from its text (String): a policy
// hands its reasons to fleetd as text (docs/abi.md), and fleetd tells the
// rules' reasons apart from a policy's own (Other) with it.
func ParseRejection(text string) Rejection {
	if d, ok := strings.CutPrefix(text, reasonNames[PeerMissing].text); ok {
		if d, ok := strings.CutSuffix(d, " is not on this machine"); ok && d != "" {
			return Rejection{Reason: PeerMissing, Detail: d}
		}
	}
	for _, r := range []Reason{PinnedElsewhere, MetadataMismatch, ConflictsWith, ReplacedBy} {
		if d, ok := strings.CutPrefix(text, reasonNames[r].text); ok && d != "" {
			return Rejection{Reason: r, Detail: d}
		}
	}
	return Rejection{Reason: Other, Detail: text}
}

// Check is one of fleet's rules: a test of one machine for one unit.
type Check struct {
	Reason Reason
	fails  func(s *Spec, m Machine) (detail string, failed bool)
}

// Test applies the check: a rejection when m may not run the unit.
func (k Check) Test(s *Spec, m Machine) (Rejection, bool) {
	if d, failed := k.fails(s, m); failed {
		return Rejection{Reason: k.Reason, Detail: d}, true
	}
	return Rejection{}, false
}

// Chain is fleet's rules in fleet's order (its AgentState.AbleToRun): a
// machine is turned down by the first check it fails, so a unit's reason
// names the most fundamental obstacle.
var Chain = []Check{
	// The pin first: a pinned unit fits one machine, whatever else holds.
	{PinnedElsewhere, pinnedElsewhere},
	// Then what the machine is, which no placement changes.
	{MetadataMismatch, metadataMismatch},
	// Then what runs there: the units the unit must run beside,
	{PeerMissing, peerMissing},
	// the units it must not run beside (declared on either side),
	{ConflictsWith, conflictsWith},
	// and the units that take its place.
	{ReplacedBy, replacedBy},
}

// Check tests m against the whole Chain: the first rejection, or false when
// m may run the unit.
func (s *Spec) Check(m Machine) (Rejection, bool) {
	for _, k := range Chain {
		if r, failed := k.Test(s, m); failed {
			return r, true
		}
	}
	return Rejection{}, false
}

func pinnedElsewhere(s *Spec, m Machine) (string, bool) {
	return s.MachineID, s.MachineID != "" && !MatchesID(m.ID(), s.MachineID)
}

func metadataMismatch(s *Spec, m Machine) (string, bool) {
	if len(s.Metadata) == 0 {
		return "", false
	}
	if k, ok := s.Unmet(m.Metadata()); ok {
		return k.Key + "=" + strings.Join(k.Values, "|"), true
	}
	return "", false
}

func peerMissing(s *Spec, m Machine) (string, bool) {
	for _, p := range s.Peers {
		if !m.Runs(p) {
			return p, true
		}
	}
	return "", false
}

func conflictsWith(s *Spec, m Machine) (string, bool) {
	for name, o := range m.Neighbours() {
		if name != s.Unit && Conflict(s, name, o) {
			return name, true
		}
	}
	return "", false
}

func replacedBy(s *Spec, m Machine) (string, bool) {
	for name, o := range m.Neighbours() {
		// Names as given, not o.Unit: a Spec may be shared by the
		// instances of a template (Spec.For).
		if name != s.Unit && o != nil && matchesAny(o.Replaces, s.Unit) && !matchesAny(s.Replaces, name) {
			return name, true
		}
	}
	return "", false
}

// MatchesID is MachineID's rule: id is the machine's full ID or its first 8
// characters.
func MatchesID(machine, id string) bool {
	return machine == id || (len(machine) >= 8 && machine[:8] == id)
}

// Unmet is the first key of s's MachineMetadata that md does not satisfy.
func (s *Spec) Unmet(md map[string]string) (Match, bool) {
	for _, k := range s.Metadata {
		have, ok := md[k.Key]
		if !ok || !contains(k.Values, have) {
			return k, true
		}
	}
	return Match{}, false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// Matches reports whether a Conflicts or Replaces glob matches a unit name
// (path.Match's syntax; a malformed glob matches nothing).
func Matches(glob, name string) bool {
	ok, _ := path.Match(glob, name)
	return ok
}

func matchesAny(globs []string, name string) bool {
	for _, g := range globs {
		if Matches(g, name) {
			return true
		}
	}
	return false
}

// Conflict reports whether the unit of s and the unit named other (with
// spec o, nil when unknown) conflict: a Conflicts glob of either matches the
// other's name. fleet enforces a conflict declared on one side both ways.
func Conflict(s *Spec, other string, o *Spec) bool {
	return matchesAny(s.Conflicts, other) || (o != nil && matchesAny(o.Conflicts, s.Unit))
}

// Replace reports whether the unit of s replaces the unit of o: a Replaces
// glob of s matches o's name and o does not replace s back (two units that
// replace each other are left alone, as in fleet). Each Spec's Unit must be
// its unit's name.
func (s *Spec) Replace(o *Spec) bool {
	return matchesAny(s.Replaces, o.Unit) && !matchesAny(o.Replaces, s.Unit)
}

// BindsNeighbours reports whether the rules between units (ConflictsWith,
// ReplacedBy) can reject another unit of the machine because of s's unit:
// it declares Conflicts or Replaces. A unit that declares no Conflicts of
// its own is rejected by those rules only because of such a neighbour, so
// a check of it may leave the other neighbours out (the leader's recheck
// does, to stay linear in a machine's units).
func BindsNeighbours(s *Spec) bool { return len(s.Conflicts) > 0 || len(s.Replaces) > 0 }

// Listed is a Machine given by its values: its ID, its metadata and the
// units on it, each with its Spec (a unit whose options are unknown is a
// Spec with only its name). Every unit counts for MachineOf and for the
// rules between units.
type Listed struct {
	MachineID string
	Meta      map[string]string
	Units     []*Spec
}

// ID implements Machine.
func (l *Listed) ID() string { return l.MachineID }

// Metadata implements Machine.
func (l *Listed) Metadata() map[string]string { return l.Meta }

// Runs implements Machine.
func (l *Listed) Runs(unit string) bool {
	for _, u := range l.Units {
		if u.Unit == unit {
			return true
		}
	}
	return false
}

// Neighbours implements Machine.
func (l *Listed) Neighbours() iter.Seq2[string, *Spec] {
	return func(yield func(string, *Spec) bool) {
		for _, u := range l.Units {
			if !yield(u.Unit, u) {
				return
			}
		}
	}
}

// Globals is which of the global units a machine runs, fleet's rule for
// them: taken in name order (globals must be sorted by Unit), each runs
// where the Chain lets it beside the units scheduled to the machine and the
// global units taken before it. The machine's agent decides this for
// itself; the leader decides the same to count the units where they run.
func Globals(machine string, metadata map[string]string, scheduled, globals []*Spec) []*Spec {
	here := &Listed{MachineID: machine, Meta: metadata, Units: append([]*Spec(nil), scheduled...)}
	var out []*Spec
	for _, g := range globals {
		if _, failed := g.Check(here); failed {
			continue
		}
		out = append(out, g)
		here.Units = append(here.Units, g)
	}
	return out
}
