package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// unitArg is one unit named on the command line.
type unitArg struct {
	arg  string // as typed
	name string // mangled unit name
}

// parseUnitArgs mangles and validates every argument before anything is
// written, so one bad name leaves the cluster untouched.
func parseUnitArgs(args []string) ([]unitArg, error) {
	out := make([]unitArg, 0, len(args))
	for _, a := range args {
		name := unitfile.Mangle(a)
		if err := unitfile.ValidateName(name); err != nil {
			return nil, err
		}
		out = append(out, unitArg{arg: a, name: name})
	}
	return out, nil
}

// readLocal reads a unit file from local disk: the argument as a path, else
// the mangled name in the argument's directory. ok is false when neither
// exists.
func readLocal(u unitArg) (f *unitfile.File, path string, ok bool, err error) {
	for _, p := range []string{u.arg, filepath.Join(filepath.Dir(u.arg), u.name)} {
		st, serr := os.Stat(p)
		if serr != nil || st.IsDir() {
			continue
		}
		b, rerr := os.ReadFile(p)
		if rerr != nil {
			return nil, p, false, fmt.Errorf("read %s: %w", p, rerr)
		}
		f, perr := unitfile.Parse(string(b))
		if perr != nil {
			return nil, p, false, fmt.Errorf("%s: %w", p, perr)
		}
		return f, p, true, nil
	}
	return nil, "", false, nil
}

// resolved is a unit ready to be created or already in the registry.
type resolved struct {
	unitArg
	existing *registry.Job  // nil when the unit is new
	file     *unitfile.File // body to create or replace with; nil to leave as is
	replace  bool
}

// resolveUnits finds every unit in fleet's lookup order (the registry, a
// local file, the template in the registry, the template on local disk) and
// parses everything before anything is written.
//
// A unit already in the registry whose local file differs is replaced when
// replace is set and its desired state is in allowed; otherwise a warning
// says how to replace it.
func (c *cli) resolveUnits(ctx context.Context, args []unitArg, replace bool, allowed ...registry.DesiredState) ([]resolved, error) {
	var out []resolved
	defaultPolicy := "" // read once, when a unit names no policy
	policyOnce := func() (string, error) {
		if defaultPolicy == "" {
			r, err := c.reader()
			if err != nil {
				return "", err
			}
			d, err := r.DefaultPolicy(ctx)
			if err != nil {
				return "", c.consulErr(err)
			}
			defaultPolicy = d
		}
		return defaultPolicy, nil
	}
	restore, err := c.pinned(ctx, args)
	if err != nil {
		return nil, err
	}
	defer restore()
	for _, u := range args {
		j, err := c.job(ctx, u.name)
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, c.consulErr(err)
		}
		local, path, haveLocal, err := readLocal(u)
		if err != nil {
			return nil, err
		}
		r := resolved{unitArg: u, existing: j}
		switch {
		case j != nil && haveLocal && local.Hash() != j.Hash:
			if !replace {
				fmt.Fprintf(c.errOut, "WARNING: Unit %s in registry differs from local unit file %s. Add --replace to override.\n", u.name, path)
			} else if !stateIn(j.Desired, allowed) {
				fmt.Fprintf(c.errOut, "Warning: can not replace Unit(%s) in state '%s', use the appropriate command\n", u.name, j.Desired)
			} else {
				r.file, r.replace = local, true
			}
		case j != nil:
		case haveLocal:
			r.file = local
		default:
			if r.file, err = c.fromTemplate(ctx, u); err != nil {
				return nil, err
			}
		}
		if r.file != nil {
			if err := registry.ValidateBody(u.name, r.file, policyOnce); err != nil {
				return nil, err
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func stateIn(s registry.DesiredState, set []registry.DesiredState) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// fromTemplate finds the body of an instance: its template in the registry,
// else on local disk beside the argument.
func (c *cli) fromTemplate(ctx context.Context, u unitArg) (*unitfile.File, error) {
	ni := unitfile.ParseName(u.name)
	notFound := fmt.Errorf("unit %s not found: no such unit in the registry and no file %s on local disk", u.name, u.arg)
	if !ni.IsInstance() {
		return nil, notFound
	}
	tpl := ni.Template()
	if j, err := c.job(ctx, tpl); err == nil {
		return j.Unit, nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return nil, c.consulErr(err)
	}
	f, _, ok, err := readLocal(unitArg{arg: filepath.Join(filepath.Dir(u.arg), tpl), name: tpl})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("unit %s not found: not in the registry, no local file, and no template %s in the registry or on local disk", u.name, tpl)
	}
	return f, nil
}

// pinned makes the cluster's unit reads answer from one read of the given
// units' jobs and bodies, and their templates', while a command handles
// many of them (manyUnits): a few transactions instead of one or two reads
// per unit, and in proportion to the units named, not to the cluster.
// restore goes back to live reads.
func (c *cli) pinned(ctx context.Context, units []unitArg) (restore func(), err error) {
	if len(units) < manyUnits {
		return func() {}, nil
	}
	r, err := c.reader()
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, u := range units {
		for _, n := range []string{u.name, unitfile.ParseName(u.name).Template()} {
			if n != "" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	s, err := r.JobsNamed(ctx, names)
	if err != nil {
		return nil, c.consulErr(err)
	}
	live := c.state
	c.state = fixedCluster{s}
	return func() { c.state = live }, nil
}

// manyUnits is how many unit arguments make fleetctl read the whole cluster
// once rather than each unit on its own.
const manyUnits = 16

// job reads one unit; registry.ErrNotFound when there is no such unit.
func (c *cli) job(ctx context.Context, name string) (*registry.Job, error) {
	r, err := c.reader()
	if err != nil {
		return nil, err
	}
	return r.Job(ctx, name)
}

// create writes new units and replacements; new units get state desired.
func (c *cli) create(ctx context.Context, units []resolved, desired registry.DesiredState) error {
	reg, _ := c.registry()
	for _, u := range units {
		if err := registry.CheckActivatable(u.name, desired); err != nil {
			return err
		}
	}
	var fresh []registry.NewJob
	for _, u := range units {
		switch {
		case u.file == nil:
		case u.replace:
			if err := reg.ReplaceJob(ctx, u.existing, u.file); err != nil {
				return c.consulErr(err)
			}
		default:
			fresh = append(fresh, registry.NewJob{Name: u.name, Unit: u.file, Desired: desired})
		}
	}
	// New units go in shared transactions: one write per couple of dozen
	// units, not one per unit.
	return c.consulErr(reg.CreateJobs(ctx, fresh))
}
