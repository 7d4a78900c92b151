package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// DefaultPrefix is where fleet keeps its keys unless told otherwise.
const DefaultPrefix = "fleet/"

// Errors callers tell apart.
var (
	ErrNotFound = errors.New("unit not found")
	ErrExists   = errors.New("unit already exists")
	// ErrNotLeader means a fenced write was refused because the writer's
	// session no longer holds the leader lock.
	ErrNotLeader = errors.New("not the leader")
)

// Registry reads and writes fleet's keys in Consul.
type Registry struct {
	c      *api.Client
	prefix string

	mu     sync.Mutex
	bodies map[unitfile.Hash]*unitfile.File // bodies are immutable: parse each once

	schemaMu   sync.Mutex
	schema     Schema // the cluster's, as read before the first write (mayWrite)
	schemaRead bool

	unlogged atomic.Bool // a log entry was refused (changes.go): write without

	opsMu sync.Mutex
	ops   int // operations the agent takes in a transaction (txnops.go); 0 until learned
}

// New returns a Registry over client with keys under prefix ("" means
// DefaultPrefix). A prefix without a trailing slash gets one.
func New(client *api.Client, prefix string) *Registry {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &Registry{c: client, prefix: prefix, bodies: map[unitfile.Hash]*unitfile.File{}}
}

// Client is the Consul client the registry uses.
func (r *Registry) Client() *api.Client { return r.c }

// Prefix is the key prefix, with its trailing slash.
func (r *Registry) Prefix() string { return r.prefix }

func (r *Registry) unitKey(h unitfile.Hash) string  { return r.prefix + "units/" + h.String() }
func (r *Registry) jobKey(name string) string       { return r.prefix + "jobs/" + name }
func (r *Registry) placementKey(name string) string { return r.prefix + "placement/" + name }
func (r *Registry) stateKey(name, machine string) string {
	return r.prefix + "states/" + machine + "/" + name
}
func (r *Registry) machineKey(id string) string { return r.prefix + "machines/" + id }
func (r *Registry) scheduleKey(machine, name string) string {
	return r.prefix + "schedule/" + machine + "/" + name
}

// LeaderKey is the key of the leader lock.
func (r *Registry) LeaderKey() string { return r.prefix + "leader" }

// jobObject is a unit's job (jobs/<name>), which fleetctl writes.
type jobObject struct {
	Name    string       `json:"name"`
	Hash    string       `json:"hash"`
	Desired DesiredState `json:"desired"`
}

// placement is where the leader put a unit (placement/<name>), or why it
// could not. Job is the CreateIndex of the unit's job when the leader wrote
// it, so a placement left by an earlier unit of the same name is not
// taken for the new one's.
type placement struct {
	Machine  string `json:"machine,omitempty"`
	Unplaced string `json:"unplaced,omitempty"`
	Job      uint64 `json:"job"`
}

// Snapshot reads every key under the prefix in one request. With waitIndex
// above zero it is a blocking query: it returns once something under the
// prefix changed after waitIndex, or after wait.
func (r *Registry) Snapshot(ctx context.Context, waitIndex uint64, wait time.Duration) (*Snapshot, error) {
	q := (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx)
	pairs, meta, err := r.list(r.prefix, q)
	if err != nil {
		return nil, fmt.Errorf("read fleet state from Consul: %w", err)
	}
	return r.decode(pairs, meta.LastIndex), nil
}

// MachineSchedule reads one machine's schedule (schedule/<machine>/), and
// the bodies it names: what that machine's agent needs, and nothing the
// rest of the cluster changes. Each entry comes back as a job targeted at the
// machine (Wanted tells global units apart by their body); the Snapshot
// holds Jobs and Rejected only. Like Snapshot it blocks when waitIndex is
// above zero.
//
// An entry the leader cannot have written is not a job: its key is no valid
// unit name, its value is not the JSON {"hash","desired"}, its hash or
// desired state does not parse, or the body it names is missing, does not
// parse or does not hash to that hash. It is listed in Rejected with the
// reason instead, and the other entries are read as usual: one bad entry
// never keeps the agent from its valid ones. Only a failed read from Consul
// is an error.
func (r *Registry) MachineSchedule(ctx context.Context, machine string, waitIndex uint64, wait time.Duration) (*Snapshot, error) {
	q := (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx)
	dir := r.prefix + "schedule/" + machine + "/"
	pairs, meta, err := r.list(dir, q)
	if err != nil {
		return nil, fmt.Errorf("read this machine's schedule from Consul: %w", err)
	}
	s := r.decode(nil, meta.LastIndex) // empty: each entry is read once, below
	s.Rejected = map[string]Rejection{}
	bodies := map[unitfile.Hash]scheduledBody{} // each body read and checked once
	for _, p := range pairs {
		name, ok := strings.CutPrefix(p.Key, dir)
		if !ok || name == "" {
			continue // the schedule's directory key (Kept)
		}
		j, why, err := r.scheduled(ctx, machine, name, p.Value, bodies)
		if err != nil {
			return nil, err
		}
		if why != "" {
			s.Rejected[p.Key] = Rejection{Reason: why, ModifyIndex: p.ModifyIndex}
			continue
		}
		s.Jobs[name] = j
	}
	return s, nil
}

// scheduledBody is a body a schedule entry names, and why it is refused
// ("" when it is not).
type scheduledBody struct {
	f   *unitfile.File
	why string
}

// scheduled checks the entry value of unit name in machine's schedule and
// returns the job it asks for, or why it is rejected. An error is a failed
// read from Consul.
func (r *Registry) scheduled(ctx context.Context, machine, name string, value []byte, bodies map[unitfile.Hash]scheduledBody) (*Job, string, error) {
	if err := unitfile.ValidateName(name); err != nil {
		return nil, err.Error(), nil
	}
	var e Entry
	if err := json.Unmarshal(value, &e); err != nil {
		return nil, fmt.Sprintf("the value is not a schedule entry (JSON {\"hash\",\"desired\"}): %v", err), nil
	}
	h, err := unitfile.ParseHash(e.Hash)
	if err != nil {
		return nil, err.Error(), nil
	}
	d, err := ParseDesiredState(string(e.Desired))
	if err != nil {
		return nil, err.Error(), nil
	}
	b, ok := bodies[h]
	if !ok {
		if b.f, b.why, err = r.checkedBody(ctx, h); err != nil {
			return nil, "", err
		}
		bodies[h] = b
	}
	if b.why != "" {
		return nil, b.why, nil
	}
	return &Job{Name: name, Hash: h, Desired: d, Target: machine, Unit: b.f}, "", nil
}

// checkedBody reads the body with hash h for an agent, which runs it only if
// it is there, parses and hashes to h; otherwise it returns why not.
func (r *Registry) checkedBody(ctx context.Context, h unitfile.Hash) (*unitfile.File, string, error) {
	f, bad, err := r.body(ctx, h)
	switch {
	case errors.Is(err, errBodyMissing):
		return nil, fmt.Sprintf("its body %s is missing from Consul", r.unitKey(h)), nil
	case err != nil:
		return nil, "", err
	case bad != nil:
		return nil, fmt.Sprintf("its body %s %v", r.unitKey(h), bad), nil
	}
	return f, "", nil
}

// decode reads the pairs of one List under the prefix into a Snapshot at
// index. A key that is none of fleet's is left out. It keeps no pair's
// Value: what it keeps it copies, so that values may lie in the answer
// (subtrees).
func (r *Registry) decode(pairs api.KVPairs, index uint64) *Snapshot {
	s, _ := r.decodeAs(pairs, index, false)
	return s
}

// decodeAs is decode that, flat, returns the states read in a list, in
// no order, instead of putting them in the snapshot's States.
func (r *Registry) decodeAs(pairs api.KVPairs, index uint64, flat bool) (*Snapshot, []*UnitState) {
	s := &Snapshot{
		Index:    index,
		Jobs:     map[string]*Job{},
		Machines: map[string]*Machine{},
		States:   map[string]map[string]*UnitState{},
		Policies: map[string]*PolicyManifest{},
		Schedule: map[string]map[string]Entry{},
		Kept:     map[string]bool{},
		Orphans:  map[string]uint64{},

		DefaultPolicy: BuiltinPolicy,
	}
	d := decoding{
		s:       s,
		bodies:  map[unitfile.Hash][]byte{},
		placed:  map[string]*api.KVPair{},
		dynamic: map[string]map[string]string{},
		flat:    flat,
	}
	for _, p := range pairs {
		parts, n := splitKey(strings.TrimPrefix(p.Key, r.prefix))
		d.pair(parts, n, p)
	}
	// What one key holds for another is joined once every key is read.
	d.mergeDynamic()
	d.joinPlacements()
	d.joinBodies(r)
	s.Schema = shapeSchema(d.fourKey)
	if d.schema != nil {
		if v, err := parseSchema(d.schema); err == nil {
			s.Schema = v
		}
	}
	return s, d.list
}

// decoding is one decode under way: the Snapshot it fills, and what it
// keeps aside to join once every pair is read. It holds nothing that
// outlives the decode (decode returns s, not d.s): the compiler tracks a
// struct as a whole, and the maps kept aside would move to the heap.
type decoding struct {
	s       *Snapshot
	bodies  map[unitfile.Hash][]byte     // units/<hash>
	placed  map[string]*api.KVPair       // placement/<name>
	dynamic map[string]map[string]string // machine-metadata/<machine>/<key>
	schema  *api.KVPair                  // the schema key, if read
	intern  map[string]string            // values of machine keys, each kept once (unmarshalMachineStates)
	fourKey bool                         // a key of a unit in the four-key layout was read

	// Decoding flat, the states read go in list, not in the snapshot
	// (UnitStates); the states of lastMachine's key start at lastStart.
	flat        bool
	list        []*UnitState
	lastMachine string
	lastStart   int
}

// pair reads one pair by its key's parts (the prefix cut): n of them, 0
// when there are more than three, which no key of fleet's has.
func (d *decoding) pair(parts [3]string, n int, p *api.KVPair) {
	switch {
	case n == 2 && parts[0] == "units":
		if h, err := unitfile.ParseHash(parts[1]); err == nil {
			d.bodies[h] = p.Value
		}
	case n == 2 && parts[0] == "jobs":
		d.job(parts[1], p)
	case n == 2 && parts[0] == "placement":
		d.placed[parts[1]] = p
	case n == 3 && parts[0] == "states" && parts[2] == "":
		d.machineStates(parts[1], p.Value)
	case n == 3 && parts[0] == "states":
		d.state(parts[1], parts[2], p.Value)
	case n == 2 && parts[0] == "policies":
		var m PolicyManifest
		if json.Unmarshal(p.Value, &m) == nil {
			d.s.Policies[parts[1]] = &m
		}
	case n == 1 && parts[0] == "policy-default":
		if v := string(p.Value); v != "" {
			d.s.DefaultPolicy = v
		}
	case n == 1 && parts[0] == "schema":
		d.schema = p
	case n == 3 && parts[0] == "jobs":
		d.fourKey = true // a unit in schema version 1, which this build does not read
	case n == 1 && parts[0] == "leader":
		if p.Session != "" {
			d.s.Leader, d.s.LeaderSession = string(p.Value), p.Session
		}
	case n == 2 && parts[0] == "machines":
		var m Machine
		if json.Unmarshal(p.Value, &m) == nil {
			d.s.Machines[parts[1]] = &m
		}
	case n == 3 && parts[0] == "schedule":
		d.schedule(parts[1], parts[2], p.Value)
	case n == 3 && parts[0] == "machine-metadata" && parts[2] != "":
		if d.dynamic[parts[1]] == nil {
			d.dynamic[parts[1]] = map[string]string{}
		}
		d.dynamic[parts[1]][parts[2]] = string(p.Value)
	}
}

// splitKey splits key at its slashes, as strings.Split would, into its n
// parts when there are at most three; n is 0 when there are more. Unlike
// strings.Split it allocates nothing, and decode splits every key.
func splitKey(key string) (parts [3]string, n int) {
	for n = range len(parts) {
		var more bool
		if parts[n], key, more = strings.Cut(key, "/"); !more {
			return parts, n + 1
		}
	}
	return parts, 0
}

// job reads jobs/<name>. A unit is one key, so each name is seen once.
func (d *decoding) job(name string, p *api.KVPair) {
	j := &Job{Name: name, objectIndex: p.ModifyIndex, created: p.CreateIndex}
	d.s.Jobs[name] = j
	var o jobObject
	if unmarshalJob(p.Value, &o) == nil {
		j.Hash, _ = unitfile.ParseHash(o.Hash)
		j.Desired = o.Desired
	}
}

// state reads states/<machine>/<name>: a state is kept only if it names
// the machine and unit its key does.
func (d *decoding) state(machine, name string, value []byte) {
	var st UnitState
	if unmarshalState(value, &st) != nil || st.Name != name || st.Machine != machine {
		return
	}
	// A state read from a unit's own key replaces the one its machine's
	// key gave it, read just before: in the snapshot's map by overwriting
	// it, in a flat list here.
	if d.flat && machine == d.lastMachine {
		for i, had := range d.list[d.lastStart:] {
			if had.Name == name {
				d.list[d.lastStart+i] = &st
				return
			}
		}
	}
	d.addState(&st)
}

// addState puts st in the snapshot's states under its unit and machine,
// or when decoding flat in its list (UnitStates).
func (d *decoding) addState(st *UnitState) {
	if !d.flat {
		if d.s.States[st.Name] == nil {
			d.s.States[st.Name] = map[string]*UnitState{}
		}
		d.s.States[st.Name][st.Machine] = st
		return
	}
	d.list = append(d.list, st)
}

// schedule reads schedule/<machine>/<name>, and the schedule's directory
// key schedule/<machine>/ (name "").
func (d *decoding) schedule(machine, name string, value []byte) {
	if name == "" {
		d.s.Kept[machine] = true
		return
	}
	var e Entry
	if json.Unmarshal(value, &e) != nil {
		return
	}
	if d.s.Schedule[machine] == nil {
		d.s.Schedule[machine] = map[string]Entry{}
	}
	d.s.Schedule[machine][name] = e
}

// mergeDynamic merges each live machine's dynamic metadata over what its
// agent published. Metadata of a machine not live waits for it.
func (d *decoding) mergeDynamic() {
	for id, md := range d.dynamic {
		if m := d.s.Machines[id]; m != nil {
			m.Metadata, m.Dynamic = MergeMetadata(m.Metadata, md), md
		}
	}
}

// joinPlacements gives each job its placement. A placement of no job is an
// orphan; one written for an earlier job of the same name is stale.
func (d *decoding) joinPlacements() {
	for name, p := range d.placed {
		j := d.s.Jobs[name]
		if j == nil {
			d.s.Orphans[name] = p.ModifyIndex
			continue
		}
		j.placementIndex = p.ModifyIndex
		var pl placement
		if json.Unmarshal(p.Value, &pl) != nil || pl.Job != j.created {
			j.stale = true
			continue
		}
		j.Target, j.Unplaced = pl.Machine, pl.Unplaced
	}
}

// joinBodies gives each job its body, parsed by r (which parses each body
// once), and a job that names no desired state the default, inactive.
func (d *decoding) joinBodies(r *Registry) {
	for _, j := range d.s.Jobs {
		if j.Desired == "" {
			j.Desired = Inactive
		}
		if body, ok := d.bodies[j.Hash]; ok {
			j.Unit = r.parse(j.Hash, body)
		}
	}
}

func (r *Registry) parse(h unitfile.Hash, body []byte) *unitfile.File {
	f, err := r.parseBody(h, body)
	if err != nil {
		return nil // stored bodies were validated at submit; a bad one reads as missing
	}
	return f
}

// parseBody parses the body stored under hash h, once: it keeps the result.
// A body must hash to its key, as every body fleetctl writes does.
func (r *Registry) parseBody(h unitfile.Hash, body []byte) (*unitfile.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.bodies[h]; ok {
		return f, nil
	}
	f, err := unitfile.Parse(string(body))
	if err != nil {
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	if got := f.Hash(); got != h {
		return nil, fmt.Errorf("is not the body of that hash (it hashes to %s)", got)
	}
	r.bodies[h] = f
	return f, nil
}

// errBodyMissing is a body Consul does not hold.
var errBodyMissing = errors.New("missing from Consul")

// body reads the body with hash h, from the bodies read before (they are
// immutable) or from Consul, parsed and kept. err is a failed read or
// errBodyMissing; bad is why a body Consul holds is refused (parseBody).
func (r *Registry) body(ctx context.Context, h unitfile.Hash) (f *unitfile.File, bad, err error) {
	r.mu.Lock()
	f, ok := r.bodies[h]
	r.mu.Unlock()
	if ok {
		return f, nil, nil
	}
	p, _, err := r.c.KV().Get(r.unitKey(h), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("read unit body %s from Consul: %w", h.Short(), err)
	}
	if p == nil {
		return nil, nil, fmt.Errorf("unit body %s is %w", h.Short(), errBodyMissing)
	}
	f, bad = r.parseBody(h, p.Value)
	return f, bad, nil
}

// UnitBody reads the body with hash h. A body that is refused (parseBody)
// reads as nil, as in a Snapshot.
func (r *Registry) UnitBody(ctx context.Context, h unitfile.Hash) (*unitfile.File, error) {
	f, _, err := r.body(ctx, h)
	return f, err
}

// Job reads one unit, or returns ErrNotFound.
func (r *Registry) Job(ctx context.Context, name string) (*Job, error) {
	var pairs api.KVPairs
	for _, key := range []string{r.jobKey(name), r.placementKey(name)} {
		p, _, err := r.c.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("read unit %s from Consul: %w", name, err)
		}
		if p != nil {
			pairs = append(pairs, p)
		}
	}
	s := r.decode(pairs, 0)
	j := s.Jobs[name]
	if j == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	unit, err := r.UnitBody(ctx, j.Hash)
	if err != nil {
		return nil, err
	}
	j.Unit = unit
	return j, nil
}

// Subtrees reads only the named subtrees of the prefix ("states/",
// "machines/", ...), one read each, into a Snapshot holding just what they
// contain: for a command that needs a part of the cluster, such as
// list-units, which at 10,000 units need not fetch every unit's body, job
// and schedule entry. The reads run at once, so that Consul encodes one
// subtree while fleetctl decodes another; they are not one consistent
// view, and Index is the first one's.
func (r *Registry) Subtrees(ctx context.Context, names ...string) (*Snapshot, error) {
	pairs, index, err := r.subtrees(ctx, names)
	if err != nil {
		return nil, err
	}
	return r.decode(pairs, index), nil
}

// UnitStates reads every unit's state on every machine, sorted by unit and
// then machine, with the machines: what list-units prints. It reads what
// Subtrees("states/", "machines/") reads, into a list instead of the
// snapshot's map of states by unit, which at 100,000 units was a fifth of
// what list-units allocated.
func (r *Registry) UnitStates(ctx context.Context) (*StateList, error) {
	pairs, index, err := r.subtrees(ctx, []string{"states/", "machines/"})
	if err != nil {
		return nil, err
	}
	s, list := r.decodeAs(pairs, index, true)
	SortStates(list)
	return &StateList{States: list, Machines: s.Machines, Index: index}, nil
}

// subtrees lists the named parts of the cluster at once, and returns
// their pairs with the index of the first. The values are decoded in
// place (listAs): what reads them is a decode, which keeps none.
func (r *Registry) subtrees(ctx context.Context, names []string) (api.KVPairs, uint64, error) {
	parts := make([]api.KVPairs, len(names))
	errs := make([]error, len(names))
	var index uint64
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pairs, meta, err := r.listAs(r.prefix+n, (&api.QueryOptions{}).WithContext(ctx), true)
			if err != nil {
				errs[i] = fmt.Errorf("read fleet state from Consul: %w", err)
				return
			}
			parts[i] = pairs
			if i == 0 {
				index = meta.LastIndex
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, 0, err // the first; the others are most likely the same
		}
	}
	return slices.Concat(parts...), index, nil
}

// Machines lists the live machines, sorted by ID, each with its dynamic
// metadata merged over what it was configured with.
func (r *Registry) Machines(ctx context.Context) ([]*Machine, error) {
	pairs, meta, err := r.list(r.prefix+"machines/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read machines from Consul: %w", err)
	}
	dynamic, _, err := r.list(r.prefix+"machine-metadata/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read machine metadata from Consul: %w", err)
	}
	s := r.decode(append(pairs, dynamic...), meta.LastIndex)
	out := make([]*Machine, 0, len(s.Machines))
	for _, id := range s.MachineIDs() {
		out = append(out, s.Machines[id])
	}
	return out, nil
}
