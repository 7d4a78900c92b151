package fleetapi

import (
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// The API's JSON objects. Fields are in alphabetical order, as fleet wrote
// them, and empty ones are left out: an empty page is {}.

// Machine is a live machine.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
}

// MachinePage is one page of machines.
type MachinePage struct {
	Machines      []*Machine `json:"machines,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// UnitOption is one option of a unit file.
type UnitOption struct {
	Name    string `json:"name"`
	Section string `json:"section"`
	Value   string `json:"value"`
}

// Unit is a unit: its body as options, its desired state, how far it got
// (currentState, left out for a global unit, which has one per machine) and
// the machine it is scheduled to.
type Unit struct {
	CurrentState string        `json:"currentState,omitempty"`
	DesiredState string        `json:"desiredState,omitempty"`
	MachineID    string        `json:"machineID,omitempty"`
	Name         string        `json:"name,omitempty"`
	Options      []*UnitOption `json:"options,omitempty"`
}

// UnitPage is one page of units.
type UnitPage struct {
	NextPageToken string  `json:"nextPageToken,omitempty"`
	Units         []*Unit `json:"units,omitempty"`
}

// UnitState is what one machine reports for one unit.
type UnitState struct {
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	Name               string `json:"name,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
}

// UnitStatePage is one page of unit states.
type UnitStatePage struct {
	NextPageToken string       `json:"nextPageToken,omitempty"`
	States        []*UnitState `json:"states,omitempty"`
}

func machineOf(m *registry.Machine) *Machine {
	return &Machine{ID: m.ID, Metadata: m.Metadata, PrimaryIP: m.IP}
}

// unitOf is the API's view of j; states holds at least the states of j
// (current state is what its machine reports).
func unitOf(j *registry.Job, states *registry.Snapshot) *Unit {
	u := &Unit{Name: j.Name, DesiredState: string(j.Desired)}
	if j.Unit != nil {
		u.Options = make([]*UnitOption, len(j.Unit.Options))
		for i, o := range j.Unit.Options {
			u.Options[i] = &UnitOption{Section: o.Section, Name: o.Name, Value: o.Value}
		}
	}
	if !j.Global() {
		u.MachineID = j.Target
		u.CurrentState = string(states.CurrentState(j))
	}
	return u
}

func stateOf(st *registry.UnitState) *UnitState {
	return &UnitState{Name: st.Name, Hash: st.Hash, MachineID: st.Machine,
		SystemdLoadState: st.Load, SystemdActiveState: st.Active, SystemdSubState: st.Sub}
}

// options is the unit file u's options make.
func (u *Unit) file() (*unitfile.File, error) {
	opts := make([]unitfile.Option, len(u.Options))
	for i, o := range u.Options {
		if o == nil {
			return nil, errNullOption
		}
		opts[i] = unitfile.Option{Section: o.Section, Name: o.Name, Value: o.Value}
	}
	return unitfile.FromOptions(opts)
}
