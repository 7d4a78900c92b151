package fleetapi

import (
	"cmp"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

func (s *Server) machines(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPatch:
		return s.patchMachines(w, r)
	default:
		return errOnlyGetPatch
	}
	reg := s.registry(r)
	ms, err := reg.Machines(r.Context())
	if err != nil {
		return err
	}
	start, end, next, err := s.page(r, len(ms))
	if err != nil {
		return err
	}
	out := MachinePage{NextPageToken: next}
	for _, m := range ms[start:end] {
		out.Machines = append(out.Machines, machineOf(m))
	}
	s.send(w, http.StatusOK, out)
	return nil
}

func (s *Server) units(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return errOnlyGet
	}
	reg := s.registry(r)
	// What list-unit-files reads: no schedule entries, metadata or policies.
	snap, err := reg.Subtrees(r.Context(), "units/", "jobs/", "placement/", "states/")
	if err != nil {
		return err
	}
	names := snap.JobNames()
	start, end, next, err := s.page(r, len(names))
	if err != nil {
		return err
	}
	out := UnitPage{NextPageToken: next}
	for _, n := range names[start:end] {
		out.Units = append(out.Units, unitOf(snap.Jobs[n], snap))
	}
	s.send(w, http.StatusOK, out)
	return nil
}

// unit serves one unit: GET reads it, PUT writes it, DELETE destroys it.
func (s *Server) unit(w http.ResponseWriter, r *http.Request, name string) error {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		return s.put(w, r, name)
	case http.MethodDelete:
		return s.destroy(w, r, name)
	default:
		return errUnitMethods
	}
	reg := s.registry(r)
	j, err := job(r, reg, name)
	if err != nil {
		return err
	}
	states, err := statesOf(r, reg, j)
	if err != nil {
		return err
	}
	s.send(w, http.StatusOK, unitOf(j, states))
	return nil
}

// statesOf reads the states that can matter to j: those its machine
// reports (fleetctl polls a unit four times a second while it waits, so
// not every machine's), or every machine's for a global unit.
func statesOf(r *http.Request, reg *registry.Registry, j *registry.Job) (*registry.Snapshot, error) {
	switch {
	case j.Global():
		return reg.Subtrees(r.Context(), "states/")
	case j.Target == "":
		return &registry.Snapshot{}, nil
	}
	return reg.Subtrees(r.Context(), "states/"+j.Target+"/")
}

// job reads the unit name: errUnitNotFound when there is none, or when
// name could not be one.
func job(r *http.Request, reg *registry.Registry, name string) (*registry.Job, error) {
	if unitfile.ValidateName(name) != nil {
		return nil, errUnitNotFound
	}
	j, err := reg.Job(r.Context(), name)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, errUnitNotFound
	}
	return j, err
}

// states lists what the machines report, by unit name then machine ID;
// ?machineID= and ?unitName= keep those of one machine, one unit.
func (s *Server) states(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return errOnlyGet
	}
	reg := s.registry(r)
	snap, err := reg.Subtrees(r.Context(), "states/")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	machine, unit := q.Get("machineID"), q.Get("unitName")
	var all []*UnitState
	for _, st := range sortedStates(snap) {
		if (machine == "" || st.Machine == machine) && (unit == "" || st.Name == unit) {
			all = append(all, stateOf(st))
		}
	}
	start, end, next, err := s.page(r, len(all))
	if err != nil {
		return err
	}
	s.send(w, http.StatusOK, UnitStatePage{States: all[start:end], NextPageToken: next})
	return nil
}

// sortedStates is every state in snap, by unit name then machine ID.
func sortedStates(snap *registry.Snapshot) []*registry.UnitState {
	var out []*registry.UnitState
	for _, name := range sortedKeys(snap.States) {
		byMachine := snap.States[name]
		for _, m := range sortedKeys(byMachine) {
			out = append(out, byMachine[m])
		}
	}
	return out
}

// state is the state of one unit: the one the machine it is scheduled to
// reports, or for a global unit the first machine's. 404 when the unit does not exist or no
// machine reports it yet.
func (s *Server) state(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet {
		return errOnlyGet
	}
	reg := s.registry(r)
	j, err := job(r, reg, name)
	if err != nil {
		return err
	}
	snap, err := statesOf(r, reg, j)
	if err != nil {
		return err
	}
	byMachine := snap.States[name]
	st := byMachine[j.Target]
	if j.Global() {
		if ms := sortedKeys(byMachine); len(ms) > 0 {
			st = byMachine[ms[0]]
		}
	}
	if st == nil {
		return errStateNotFound
	}
	s.send(w, http.StatusOK, stateOf(st))
	return nil
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }
