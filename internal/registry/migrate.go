package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// Migration is what Migrate did.
type Migration struct {
	From, To int
	Units    int               // units moved to this build's layout
	Kept     map[string]string // keys it could not move, left where they are, each with why
	// Unstamped is Consul's refusal to write the schema key when no unit
	// was to move (the units are already in this build's layout): a
	// leader token from before schema versions (contrib/acl/leader.hcl)
	// may not write it. The leader leads all the same, and the agents go
	// on writing a key per unit's state; "" when stamped.
	Unstamped string
}

// errMigrationRaced is a migration step refused because a key changed
// under it; the next Migrate starts over from what is there.
var errMigrationRaced = errors.New("a key changed while the schema was being migrated; the leader tries again")

// Migrate brings the cluster's keys to SchemaVersion, once, under the
// leader lock session holds: every write is a transaction fenced on that
// lock (ErrNotLeader when it is lost). It returns nil when the keys are
// already there, and a *SchemaError when they are newer. The leader calls
// it only when no live machine's fleetd is too old to read the result
// (SchemaBlockers).
//
// A unit moves in two steps, each safe to repeat: its job is created
// (its placement names the job's CreateIndex, known once it exists), then
// its placement is written and its old keys deleted. An interrupted
// migration resumes from where it stopped. Keys that do not describe a
// unit it can move (no object, a value that does not parse, a job of the
// same name with another body) are left in place and listed in Kept; the
// schema key is stamped all the same, and the current layout ignores them.
func (r *Registry) Migrate(ctx context.Context, session string) (*Migration, error) {
	s, err := r.ReadSchema(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(s, false); err != nil {
		return nil, err
	}
	if s.Stamped && s.Version == SchemaVersion {
		return nil, nil
	}
	m := &Migration{From: s.Version, To: SchemaVersion, Kept: map[string]string{}}
	if s.Version == 1 {
		if err := r.migrateUnits(ctx, session, m); err != nil {
			return nil, err
		}
	}
	stamp, _ := json.Marshal(schemaValue{Version: SchemaVersion})
	ok, err := r.fenced(ctx, session, kv(api.KVCAS, r.schemaKey(), stamp, s.index))
	if pe, denied := AsPermissionError(err); denied && m.From >= jobsSince {
		m.Unstamped = pe.What
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("write the key schema version: %w", err)
	}
	if !ok {
		return nil, errMigrationRaced
	}
	r.setSchema(Schema{Version: SchemaVersion, Stamped: true})
	return m, nil
}

// fourKeyUnit is a unit in the four-key layout: its keys by leaf.
type fourKeyUnit map[string]*api.KVPair

// fourKeyLeaves are the keys of a unit in the four-key layout, under
// jobs/<name>/.
var fourKeyLeaves = []string{"object", "desired", "target", "unplaced"}

// migrateUnits moves every unit of the four-key layout to a job and a
// placement.
func (r *Registry) migrateUnits(ctx context.Context, session string, m *Migration) error {
	pairs, _, err := r.list(r.prefix+"jobs/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("read units to migrate: %w", err)
	}
	old, current := map[string]fourKeyUnit{}, map[string]*api.KVPair{}
	for _, p := range pairs {
		name, leaf, four := strings.Cut(strings.TrimPrefix(p.Key, r.prefix+"jobs/"), "/")
		if !four {
			current[name] = p
			continue
		}
		if !slices.Contains(fourKeyLeaves, leaf) {
			m.Kept[p.Key] = "not a key of the four-key layout"
			continue
		}
		if old[name] == nil {
			old[name] = fourKeyUnit{}
		}
		old[name][leaf] = p
	}
	jobs := map[string]jobObject{}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		o, why := fourKeyJob(name, old[name], current[name])
		if why != "" {
			for _, p := range old[name] {
				m.Kept[p.Key] = why
			}
			continue
		}
		jobs[name] = o
	}
	created, err := r.createMigrated(ctx, session, jobs, current)
	if err != nil {
		return err
	}
	var ws []Write
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		ws = append(ws, r.placeMigrated(name, old[name], created[name]))
	}
	done, _, err := r.writeAll(ctx, session, ws)
	if err != nil {
		return err
	}
	if slices.Contains(done, false) {
		return errMigrationRaced
	}
	m.Units = len(ws)
	return nil
}

// fourKeyJob is the job unit name's four keys describe, or why they
// cannot be moved. current is a job of that name already in this build's
// layout: an earlier, interrupted migration's, which must be the same.
func fourKeyJob(name string, keys fourKeyUnit, current *api.KVPair) (jobObject, string) {
	obj := keys["object"]
	if obj == nil {
		return jobObject{}, "no object key: what is left of a unit destroyed in the four-key layout, not a unit"
	}
	var o jobObject
	if err := json.Unmarshal(obj.Value, &o); err != nil || o.Name != name {
		return jobObject{}, fmt.Sprintf("the object key holds %q, not {\"name\":%q,\"hash\":...}", obj.Value, name)
	}
	if _, err := unitfile.ParseHash(o.Hash); err != nil {
		return jobObject{}, fmt.Sprintf("the object key's hash %q: %v", o.Hash, err)
	}
	o.Desired = Inactive // the four-key layout's reading of a unit without a desired key
	if d := keys["desired"]; d != nil {
		desired, err := ParseDesiredState(string(d.Value))
		if err != nil {
			return jobObject{}, "the desired key: " + err.Error()
		}
		o.Desired = desired
	}
	if current != nil {
		var c jobObject
		if json.Unmarshal(current.Value, &c) != nil || c != o {
			return jobObject{}, fmt.Sprintf("a unit %s in the current layout exists too, with another body or desired state; compare them and destroy one", name)
		}
	}
	return o, ""
}

// createMigrated creates the jobs not created yet (an interrupted
// migration may have created some) and returns every job's CreateIndex.
func (r *Registry) createMigrated(ctx context.Context, session string, jobs map[string]jobObject, current map[string]*api.KVPair) (map[string]uint64, error) {
	created := map[string]uint64{}
	var ws []Write
	for _, name := range slices.Sorted(maps.Keys(jobs)) {
		if c := current[name]; c != nil {
			created[name] = c.CreateIndex
			continue
		}
		b, _ := json.Marshal(jobs[name])
		ws = append(ws, Write{Name: name, ops: api.TxnOps{kv(api.KVCAS, r.jobKey(name), b, 0)}})
	}
	done, set, err := r.writeAll(ctx, session, ws)
	if err != nil {
		return nil, err
	}
	if slices.Contains(done, false) {
		return nil, errMigrationRaced
	}
	for _, w := range ws {
		p := set[r.jobKey(w.Name)]
		if p == nil {
			return nil, fmt.Errorf("Consul did not say where it created unit %s; the leader tries again", w.Name)
		}
		created[w.Name] = p.CreateIndex
	}
	return created, nil
}

// placeMigrated writes unit name's placement from its target or unplaced
// key, naming its job's CreateIndex, and deletes its four keys, each only
// as it was read.
func (r *Registry) placeMigrated(name string, keys fourKeyUnit, job uint64) Write {
	w := Write{Name: name}
	p := placement{Job: job}
	if t := keys["target"]; t != nil && len(t.Value) > 0 {
		p.Machine = string(t.Value)
	} else if u := keys["unplaced"]; u != nil && len(u.Value) > 0 {
		p.Unplaced = string(u.Value)
	}
	if p.Machine != "" || p.Unplaced != "" {
		b, _ := json.Marshal(p)
		w.ops = append(w.ops, kv(api.KVSet, r.placementKey(name), b, 0))
	}
	for _, leaf := range slices.Sorted(maps.Keys(keys)) {
		w.ops = append(w.ops, kv(api.KVDeleteCAS, keys[leaf].Key, nil, keys[leaf].ModifyIndex))
	}
	return w
}
