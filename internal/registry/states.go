package registry

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/hashicorp/consul/api"
)

// From schema version 3 a machine reports its units' states in one key,
// its machine key states/<machine>/: an object of each unit's state by
// unit name, without the names the key gives. One key per machine is what
// a reader of the whole cluster lists (5,000 keys at 100,000 units instead
// of 100,000) and what an agent rewrites in one operation however many of
// its units changed. A machine with more units than MachineStatesMax
// reports the rest as before, one key each (states/<machine>/<unit>), and
// every reader reads both.

// MachineStatesMax is how many units' states a machine key holds: at
// most about 250 KiB with long names and errors, under Consul's 512 KiB
// for a value and for a transaction.
const MachineStatesMax = 500

// statesByMachine is the first schema version whose agents write machine
// keys.
const statesByMachine = 3

// machineState is a unit's state in its machine key.
type machineState struct {
	Hash   string       `json:"hash"`
	State  DesiredState `json:"state"`
	Load   string       `json:"load"`
	Active string       `json:"active"`
	Sub    string       `json:"sub"`
	Error  string       `json:"error,omitempty"`
}

func (r *Registry) machineStatesKey(machine string) string {
	return r.prefix + "states/" + machine + "/"
}

// MachineStatesWrite makes machine's key hold states, units of that
// machine, and nothing else: held by the machine's session (Consul
// deletes it with the session), and removed when states is empty. ops go
// with it, all or none (the units' entries in Consul's catalog).
func (r *Registry) MachineStatesWrite(machine string, states []UnitState, session string, ops ...*api.TxnOp) Write {
	name := "states of " + machine
	if len(states) == 0 {
		return Write{Name: name, ops: append(api.TxnOps{kv(api.KVDelete, r.machineStatesKey(machine), nil, 0)}, ops...)}
	}
	v := make(map[string]machineState, len(states))
	for _, st := range states {
		v[st.Name] = machineState{Hash: st.Hash, State: st.State, Load: st.Load, Active: st.Active, Sub: st.Sub, Error: st.Error}
	}
	b, _ := json.Marshal(v)
	lock := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: r.machineStatesKey(machine), Value: b, Session: session}}
	return Write{Name: name, ops: append(api.TxnOps{lock}, ops...)}
}

// CatalogWrite is ops alone: a unit's entry in Consul's catalog whose
// state went, or goes, in its machine key.
func CatalogWrite(unit string, ops ...*api.TxnOp) Write { return Write{Name: unit, ops: ops} }

// StatesByMachine reports whether this machine's agent writes its units'
// states in its machine key: whether the cluster's keys are stamped in a
// schema version that has them, which the leader stamps only once every
// live machine's fleetd reads them. It reads the schema key each time.
func (r *Registry) StatesByMachine(ctx context.Context) (bool, error) {
	s, stamped, err := r.stampedSchema(ctx)
	return stamped && s.Version >= statesByMachine, err
}

// machineStates reads machine's key into the snapshot's states. A unit
// also reported in a key of its own keeps the state read last.
func (d *decoding) machineStates(machine string, value []byte) {
	if d.intern == nil {
		d.intern = map[string]string{}
	}
	states, err := unmarshalMachineStates(value, d.intern)
	if err != nil {
		return
	}
	d.lastMachine, d.lastStart = machine, len(d.list)
	for i := range states {
		states[i].Machine = machine
		d.addState(&states[i])
	}
}

// unmarshalMachineStates is json.Unmarshal of a machine key into states
// by unit name, each state named, in one pass when it is the object
// agents write. Values other than names come from intern when they are
// there, and are kept there (up to internMax): most are a few words and
// the hashes of a few templates, and at 100,000 units their copies were a
// tenth of what list-units allocated. A name the object gives twice keeps
// its last state, as with json.Unmarshal.
func unmarshalMachineStates(b []byte, intern map[string]string) ([]UnitState, error) {
	// Each state is an object of strings: as many as its closing braces
	// but the key's own, or fewer when a string holds one.
	out := make([]UnitState, 0, max(bytes.Count(b, []byte{'}'})-1, 0))
	s := scanner{b: b}
	if s.object(func(name string) bool {
		out = append(out, UnitState{Name: name})
		st := &out[len(out)-1]
		return s.object(func(field string) bool {
			v, ok := s.interned(intern)
			return ok && st.set(field, v) && field != "name" && field != "machine"
		})
	}) && s.end() {
		return lastOfEachName(out), nil
	}
	var v map[string]machineState
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	out = out[:0]
	for name, m := range v {
		out = append(out, UnitState{Name: name, Hash: m.Hash, State: m.State, Load: m.Load, Active: m.Active, Sub: m.Sub, Error: m.Error})
	}
	return out, nil
}

// lastOfEachName drops from states each state whose name a later one
// has. Agents write the names in order, with none twice, which it checks
// first.
func lastOfEachName(states []UnitState) []UnitState {
	sorted := true
	for i := 1; i < len(states) && sorted; i++ {
		sorted = states[i-1].Name < states[i].Name
	}
	if sorted {
		return states
	}
	last := make(map[string]int, len(states))
	for i, st := range states {
		last[st.Name] = i
	}
	kept := states[:0]
	for i, st := range states {
		if last[st.Name] == i {
			kept = append(kept, st)
		}
	}
	return kept
}

// internMax bounds the values a decode keeps for reuse.
const internMax = 1024

// interned reads a JSON string as str does, reusing an equal string of
// intern, which it adds to while intern holds fewer than internMax.
func (s *scanner) interned(intern map[string]string) (string, bool) {
	start := s.i
	raw, escaped, ok := s.rawString()
	if !ok || escaped {
		s.i = start
		return s.str()
	}
	if v, ok := intern[string(raw[1:len(raw)-1])]; ok {
		return v, true
	}
	v := string(raw[1 : len(raw)-1])
	if intern != nil && len(intern) < internMax {
		intern[v] = v
	}
	return v, true
}
