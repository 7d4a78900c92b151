package registry

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// DesiredState is what the user asked fleet to do with a unit.
type DesiredState string

// Fleet's three desired states; units move between adjacent ones only.
const (
	Inactive DesiredState = "inactive" // known to fleet, on no machine
	Loaded   DesiredState = "loaded"   // on a machine, loaded into its init system, not started
	Launched DesiredState = "launched" // loaded and started
)

// ParseDesiredState checks s is one of fleet's desired states.
func ParseDesiredState(s string) (DesiredState, error) {
	switch d := DesiredState(s); d {
	case Inactive, Loaded, Launched:
		return d, nil
	}
	return "", fmt.Errorf("unknown desired state %q (want inactive, loaded or launched)", s)
}

// Job is one unit as fleet knows it.
type Job struct {
	Name    string
	Hash    unitfile.Hash
	Desired DesiredState
	Target  string         // machine ID the unit is scheduled to; "" when unscheduled
	Unit    *unitfile.File // the body; nil if it is missing from the store
	// Unplaced is why the leader could not place the unit, "" when placed
	// or not asked to run.
	Unplaced string

	objectIndex    uint64 // ModifyIndex of jobs/<name>
	created        uint64 // CreateIndex of jobs/<name>: this unit, not an earlier one of its name
	placementIndex uint64 // ModifyIndex of placement/<name>, 0 when absent
	// stale is a placement/<name> left by an earlier unit of the name
	// (destroyed, then submitted again before the leader removed it): it
	// says nothing of this unit, and the leader replaces or removes it.
	stale bool

	spec *xfleet.Spec // Spec, read on first use
}

// Spec is what the unit's [X-Fleet] section asks for (fleet's rules,
// package xfleet), read once; nil when its body is missing. Like the rest
// of a Snapshot, a Job is not for concurrent use.
func (j *Job) Spec() *xfleet.Spec {
	if j.spec == nil && j.Unit != nil {
		j.spec = xfleet.Read(j.Name, j.Unit.Options)
	}
	return j.spec
}

// Global reports whether the unit runs on every machine that satisfies it
// ([X-Fleet] Global): no leader places it.
func (j *Job) Global() bool { return j.Unit != nil && j.Spec().Global }

// Machine is a live machine as its agent published it.
type Machine struct {
	ID       string            `json:"id"`
	IP       string            `json:"ip"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Version  string            `json:"version,omitempty"`
	// Schema is the newest key schema version the machine's fleetd
	// knows (SchemaVersion); 0 from a fleetd that publishes none.
	Schema int `json:"schema,omitempty"`
	// Dynamic is the part of Metadata set with fleetctl machine-metadata
	// (machine-metadata/<id>/ keys), merged over what the agent published;
	// nil when there is none. It is never published with the machine.
	Dynamic map[string]string `json:"-"`
}

// ShortID is the 8-character form fleetctl prints.
func (m *Machine) ShortID() string { return ShortID(m.ID) }

// ShortID cuts a machine ID to the 8 characters fleetctl prints.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// UnitState is what a machine reports for a unit it holds.
type UnitState struct {
	Name    string       `json:"name"`
	Machine string       `json:"machine"`
	Hash    string       `json:"hash"`
	State   DesiredState `json:"state"` // loaded or launched: how far the agent got
	Load    string       `json:"load"`  // systemd LoadState
	Active  string       `json:"active"`
	Sub     string       `json:"sub"`
	Error   string       `json:"error,omitempty"` // the init system's complaint, if any
}

// StateList is every unit's state on every machine, as list-units shows
// them.
type StateList struct {
	States   []*UnitState // sorted by SortStates
	Machines map[string]*Machine
	Index    uint64
}

// SortStates sorts states by unit, and a unit's by machine.
func SortStates(states []*UnitState) {
	slices.SortFunc(states, func(a, b *UnitState) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Machine, b.Machine)
	})
}

// StateList lists the snapshot's states as UnitStates reads them.
func (s *Snapshot) StateList() *StateList {
	var list []*UnitState
	for _, byMachine := range s.States {
		for _, st := range byMachine {
			list = append(list, st)
		}
	}
	SortStates(list)
	return &StateList{States: list, Machines: s.Machines, Index: s.Index}
}

// Snapshot is the whole cluster as one consistent read saw it.
type Snapshot struct {
	Index    uint64
	Jobs     map[string]*Job
	Machines map[string]*Machine
	States   map[string]map[string]*UnitState // unit -> machine -> state

	Leader        string // machine ID holding the leader lock; "" when none
	LeaderSession string // the session holding it

	Policies      map[string]*PolicyManifest // uploaded placement policies
	DefaultPolicy string                     // policy of units that name none; BuiltinPolicy when unset

	// Schedule is each machine's list of units, which its agent watches
	// (machine -> unit -> entry): the units scheduled to it and every
	// global unit, kept by the leader.
	Schedule map[string]map[string]Entry
	// Kept is the machines whose schedule has its directory key
	// (schedule/<machine>/), which the leader keeps for every live machine.
	Kept map[string]bool
	// Rejected is the entries of the machine's schedule that its agent
	// must not run, by Consul key, each with why (MachineSchedule only;
	// nil otherwise).
	Rejected map[string]Rejection
	// Orphans is the placement keys (placement/<name>) of units that no
	// longer exist, each with its ModifyIndex: the leader removes them
	// (fleetctl destroy removes only the unit's job). Read only when the
	// snapshot holds jobs/ too.
	Orphans map[string]uint64
	// Schema is the key schema the keys read are in: the schema key's, or
	// without one what their shape says (ReadSchema), which needs jobs/.
	Schema Schema
}

// Rejection is why a schedule entry is not run: a key that is no unit name,
// a value the leader cannot have written, a body missing or not its hash's.
type Rejection struct {
	Reason      string
	ModifyIndex uint64 // the entry's: a changed entry is a new rejection
}

// Entry is what a machine's agent reads of a unit it may run: which body,
// and how far to take it. The leader keeps entries in step with the jobs.
type Entry struct {
	Hash    string       `json:"hash"`
	Desired DesiredState `json:"desired"`
}

// PolicyOf is the name of the placement policy that places j: the one its
// [X-Fleet] Policy= names, else the cluster's default.
func (s *Snapshot) PolicyOf(j *Job) string {
	if sp := j.Spec(); sp != nil && sp.Policy != "" {
		return sp.Policy
	}
	if s.DefaultPolicy == "" {
		return BuiltinPolicy
	}
	return s.DefaultPolicy
}

// RunsOn is what a machine should run: the units scheduled to it, and the
// global units that fleet's rules let it run (xfleet.Globals: its metadata
// satisfies their MachineMetadata, and no unit it runs conflicts with them or
// replaces them), global units taken in name order, as fleet's agents did.
// Units whose desired state is inactive or whose body is missing are left out.
func (s *Snapshot) RunsOn(machine string, metadata map[string]string) []*Job {
	var out []*Job
	var scheduled, globals []*xfleet.Spec
	for _, name := range s.JobNames() {
		j := s.Jobs[name]
		switch {
		case j.Desired == Inactive || j.Unit == nil:
		case j.Global():
			globals = append(globals, j.Spec())
		case j.Target == machine:
			out = append(out, j)
			scheduled = append(scheduled, j.Spec())
		}
	}
	for _, g := range xfleet.Globals(machine, metadata, scheduled, globals) {
		out = append(out, s.Jobs[g.Unit])
	}
	return out
}

// JobNames returns the job names sorted.
func (s *Snapshot) JobNames() []string {
	names := make([]string, 0, len(s.Jobs))
	for n := range s.Jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// MachineIDs returns the live machine IDs sorted.
func (s *Snapshot) MachineIDs() []string {
	ids := make([]string, 0, len(s.Machines))
	for id := range s.Machines {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// CurrentState is fleet's view of how far a unit got: launched or loaded when
// the machine it is scheduled to reports so for the same body, else inactive.
func (s *Snapshot) CurrentState(j *Job) DesiredState {
	if j.Target == "" {
		return Inactive
	}
	st := s.States[j.Name][j.Target]
	if st == nil || st.Hash != j.Hash.String() {
		return Inactive
	}
	return st.State
}
