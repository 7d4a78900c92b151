package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/version"
)

// SchemaVersion is the layout of fleet's keys this build reads and writes
// (docs/keys.md, "Schema versions"):
//
//	1  a unit is four keys under jobs/<name>/: object, desired, target, unplaced
//	2  a unit is its job, jobs/<name>, and its placement, placement/<name>
//	3  a machine reports its units' states in one key, states/<machine>/
//	   (states.go); units are as in 2
//
// The schema key (<prefix>schema) holds the version from 2 on. A cluster
// without it is read from its keys' shape: version 1 if any unit is in
// the four-key layout, else 2.
const SchemaVersion = 3

// unstamped is the last version whose clusters may have no schema key.
const unstamped = 2

// jobsSince is the first version whose units (jobs/, placement/) are laid
// out as this build writes them.
const jobsSince = 2

// Schema is the layout a cluster's keys are in.
type Schema struct {
	Version int
	// Stamped is true when the schema key holds Version, false when
	// there is no schema key and Version was read from the keys' shape.
	Stamped bool
	index   uint64 // the schema key's ModifyIndex; 0 when there is none
}

type schemaValue struct {
	Version int `json:"version"`
}

func (r *Registry) schemaKey() string { return r.prefix + "schema" }

// parseSchema reads the schema key's value.
func parseSchema(p *api.KVPair) (Schema, error) {
	var v schemaValue
	if err := json.Unmarshal(p.Value, &v); err != nil || v.Version < 1 {
		return Schema{}, fmt.Errorf("key %s holds %q, not a schema version such as {\"version\":%d}: restore it, or delete it and fleet reads the version from the keys' shape (docs/keys.md)", p.Key, p.Value, SchemaVersion)
	}
	return Schema{Version: v.Version, Stamped: true, index: p.ModifyIndex}, nil
}

// shapeSchema is the version of a cluster without a schema key: 1 when
// fourKey, some unit being in the four-key layout.
func shapeSchema(fourKey bool) Schema {
	if fourKey {
		return Schema{Version: 1}
	}
	return Schema{Version: unstamped}
}

// ReadSchema reads which schema the cluster's keys are in.
func (r *Registry) ReadSchema(ctx context.Context) (Schema, error) {
	s, stamped, err := r.stampedSchema(ctx)
	if err != nil || stamped {
		return s, err
	}
	return r.shapeOf(ctx)
}

// stampedSchema reads the schema key; stamped is false when there is none.
func (r *Registry) stampedSchema(ctx context.Context) (s Schema, stamped bool, err error) {
	p, _, err := r.c.KV().Get(r.schemaKey(), (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return Schema{}, false, fmt.Errorf("read the key schema version from Consul: %w", err)
	}
	if p == nil {
		return Schema{}, false, nil
	}
	s, err = parseSchema(p)
	return s, true, err
}

// shapeOf is the schema of a cluster without a schema key, from its keys'
// shape: a unit in the four-key layout shows as a directory under jobs/.
func (r *Registry) shapeOf(ctx context.Context) (Schema, error) {
	keys, _, err := r.c.KV().Keys(r.prefix+"jobs/", "/", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return Schema{}, fmt.Errorf("read the key schema from Consul: %w", err)
	}
	return shapeSchema(slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/") })), nil
}

// SchemaError is a write refused because the cluster's keys are in a
// schema this build does not write.
type SchemaError struct {
	Found int // the cluster's version
	Known int // SchemaVersion
}

func (e *SchemaError) Error() string {
	if e.Found > e.Known {
		return fmt.Sprintf("fleet's keys in Consul are in schema version %d, and this fleet %s knows versions up to %d, so it writes nothing to them: install the fleet release the cluster's other machines run (docs/keys.md, \"Schema versions\")",
			e.Found, version.Version, e.Known)
	}
	return fmt.Sprintf("fleet's units in Consul are still in schema version %d, which this fleet %s reads only once they are moved to version %d: the leader moves them as soon as every machine's fleetd knows version %d (see the version field of fleetctl list-machines); until then use the fleetctl of the release the machines run (docs/keys.md, \"Schema versions\")",
		e.Found, version.Version, e.Known, e.Known)
}

// checkSchema is the rule for writing to a cluster in schema s: never to a
// newer schema than this build knows, and a unit (jobs/) only in a schema
// whose units are laid out as this build writes them.
func checkSchema(s Schema, jobs bool) error {
	if s.Version > SchemaVersion || jobs && s.Version < jobsSince {
		return &SchemaError{Found: s.Version, Known: SchemaVersion}
	}
	return nil
}

// Writable reports whether this registry may write to the cluster at all:
// nil, or a *SchemaError when the cluster's keys are in a newer schema. A
// fleetd asks before it joins, and fleetctl's writes ask (mayWrite). The
// schema is read once per Registry; a failed read is not kept.
func (r *Registry) Writable(ctx context.Context) error { return r.mayWrite(ctx, false) }

// mayWrite is Writable, and with jobs also that units may be written:
// the cluster is in this build's schema.
func (r *Registry) mayWrite(ctx context.Context, jobs bool) error {
	r.schemaMu.Lock()
	s, ok := r.schema, r.schemaRead
	r.schemaMu.Unlock()
	if ok {
		return checkSchema(s, jobs)
	}
	s, stamped, err := r.stampedSchema(ctx)
	switch {
	case err != nil:
		return err
	case !stamped && !jobs:
		// Without the key the keys are in a version this build knows; a
		// machine's agent may read no more (contrib/acl/agent.hcl).
		return nil
	case !stamped:
		if s, err = r.shapeOf(ctx); err != nil {
			return err
		}
	}
	r.setSchema(s)
	return checkSchema(s, jobs)
}

func (r *Registry) setSchema(s Schema) {
	r.schemaMu.Lock()
	r.schema, r.schemaRead = s, true
	r.schemaMu.Unlock()
}

// SchemaBlockers are the live machines that keep a cluster in schema s
// from moving to SchemaVersion: those whose fleetd does not know it (an
// earlier fleetd publishes no schema), and would not read what the
// others write once it is stamped (the units' states in machine keys).
func SchemaBlockers(s Schema, machines map[string]*Machine) []string {
	if s.Version >= SchemaVersion {
		return nil
	}
	var ids []string
	for id, m := range machines {
		if m.Schema < SchemaVersion {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
