package fleetapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
)

// maxRequestBytes bounds a request body: a unit file at its limit, with
// room for JSON's quoting.
const maxRequestBytes = 4 * unitfile.MaxBodyBytes

// decodeJSON checks the request is JSON and decodes its body into v. It
// answers 415 unless there is one Content-Type and it is
// application/json, and 400 when the body does not decode.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Values("Content-Type")
	if len(ct) != 1 {
		return errNotJSON
	}
	if mt, _, err := mime.ParseMediaType(ct[0]); err != nil || mt != "application/json" {
		return errNotJSON
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "unable to decode body: "+err.Error())
	}
	return nil
}

// put creates, replaces, or sets the desired state of unit name, checking
// in fleet's order: the media type, the body, the names, then the unit as
// it is in the registry. A request with options for a unit that does not
// exist creates it (201), in the desired state the body gives (inactive
// when none); with options that make another body than the unit's, it
// replaces the body (201), keeping the desired state unless the body gives
// one; otherwise it sets the desired state (204).
func (s *Server) put(w http.ResponseWriter, r *http.Request, name string) error {
	var u Unit
	if err := decodeJSON(w, r, &u); err != nil {
		return err
	}
	if u.Name == "" {
		u.Name = name
	} else if u.Name != name {
		return errorf(http.StatusBadRequest, fmt.Sprintf("name in URL %q differs from unit name in request body %q", name, u.Name))
	}
	if err := unitfile.ValidateName(name); err != nil {
		return errorf(http.StatusBadRequest, err.Error())
	}
	var desired registry.DesiredState
	if u.DesiredState != "" {
		var err error
		if desired, err = registry.ParseDesiredState(u.DesiredState); err != nil {
			return errorf(http.StatusBadRequest, err.Error())
		}
	}
	reg := s.registry(r)
	j, err := reg.Job(r.Context(), name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return s.create(w, r, reg, &u, desired)
	case err != nil:
		return err
	}
	if len(u.Options) > 0 {
		f, err := s.body(r, reg, &u, desired)
		if err != nil {
			return err
		}
		if f.Hash() != j.Hash {
			return s.replace(w, r, reg, j, f, desired)
		}
	}
	if desired == "" {
		return errorf(http.StatusConflict, "must provide DesiredState to update existing unit")
	}
	if err := registry.CheckActivatable(name, desired); err != nil {
		return errorf(http.StatusBadRequest, err.Error())
	}
	if err := reg.SetDesired(r.Context(), name, desired); err != nil {
		return notFound(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// body is the unit file u's options make, checked as fleetctl checks a
// file it submits (400 when refused).
func (s *Server) body(r *http.Request, reg *registry.Registry, u *Unit, desired registry.DesiredState) (*unitfile.File, error) {
	f, err := u.file()
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid unit options: "+err.Error())
	}
	policy := func() (string, error) {
		d, err := reg.DefaultPolicy(r.Context())
		if err != nil {
			return "", &consulError{err}
		}
		return d, nil
	}
	if err := registry.ValidateBody(u.Name, f, policy); err != nil {
		if isConsul(err) {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, err.Error())
	}
	if desired != "" {
		if err := registry.CheckActivatable(u.Name, desired); err != nil {
			return nil, errorf(http.StatusBadRequest, err.Error())
		}
	}
	return f, nil
}

// isConsul reports whether err is the default policy's read failing rather
// than the unit being refused.
func isConsul(err error) bool {
	var ce *consulError
	return errors.As(err, &ce)
}

// consulError marks a failed read of Consul inside a check.
type consulError struct{ err error }

func (e *consulError) Error() string { return e.err.Error() }
func (e *consulError) Unwrap() error { return e.err }

func (s *Server) create(w http.ResponseWriter, r *http.Request, reg *registry.Registry, u *Unit, desired registry.DesiredState) error {
	if len(u.Options) == 0 {
		return errorf(http.StatusConflict, "unit does not exist and options field empty")
	}
	f, err := s.body(r, reg, u, desired)
	if err != nil {
		return err
	}
	if desired == "" {
		desired = registry.Inactive
	}
	err = reg.CreateJob(r.Context(), u.Name, f, desired)
	if errors.Is(err, registry.ErrExists) {
		return errorf(http.StatusConflict, "unit already exists: it was created meanwhile")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) replace(w http.ResponseWriter, r *http.Request, reg *registry.Registry, j *registry.Job, f *unitfile.File, desired registry.DesiredState) error {
	if err := reg.ReplaceJob(r.Context(), j, f); err != nil {
		return err
	}
	if desired != "" {
		if err := reg.SetDesired(r.Context(), j.Name, desired); err != nil {
			return notFound(err)
		}
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// notFound is err, or errUnitNotFound when it says the unit is gone.
func notFound(err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return errUnitNotFound
	}
	return err
}

func (s *Server) destroy(w http.ResponseWriter, r *http.Request, name string) error {
	reg := s.registry(r)
	if _, err := job(r, reg, name); err != nil {
		return err
	}
	if err := reg.DestroyJob(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// metadataOp is one operation of PATCH machines, on one machine's dynamic
// metadata: {"op":"add","path":"/<machine>/metadata/<key>","value":{"value":"v"}}.
type metadataOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value struct {
		Value string `json:"value"`
	} `json:"value"`

	machine, key string
}

// patchMachines sets and removes machines' dynamic metadata (what
// fleetctl machine-metadata does): every operation is checked, then they
// are applied in order.
func (s *Server) patchMachines(w http.ResponseWriter, r *http.Request) error {
	var ops []*metadataOp
	if err := decodeJSON(w, r, &ops); err != nil {
		return err
	}
	for _, op := range ops {
		if err := op.check(); err != nil {
			return err
		}
	}
	reg := s.registry(r)
	for _, op := range ops {
		var err error
		if op.Op == "remove" {
			err = reg.DeleteMachineMetadata(r.Context(), op.machine, []string{op.key})
		} else {
			err = reg.SetMachineMetadata(r.Context(), op.machine, map[string]string{op.key: op.Value.Value})
		}
		if err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (op *metadataOp) check() error {
	if op == nil {
		return errorf(http.StatusBadRequest, "an operation is null")
	}
	switch op.Op {
	case "add", "replace", "remove":
	default:
		return errorf(http.StatusBadRequest, fmt.Sprintf("invalid op %q: use add, replace or remove", op.Op))
	}
	parts := strings.Split(op.Path, "/")
	if len(parts) != 4 || parts[0] != "" || parts[1] == "" || parts[2] != "metadata" || !registry.ValidMetadataKey(parts[3]) {
		return errorf(http.StatusBadRequest, fmt.Sprintf("invalid path %q: want /<machine ID>/metadata/<key>, the key of letters, digits, '_', '.' and '-'", op.Path))
	}
	op.machine, op.key = parts[1], parts[3]
	if op.Op != "remove" {
		if why := registry.ValidMetadataValue(op.Value.Value); why != "" {
			return errorf(http.StatusBadRequest, fmt.Sprintf("invalid value for %s: %s", op.Path, why))
		}
	}
	return nil
}
