package registry

import (
	"fmt"

	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

// CheckActivatable refuses to load or start a template: only its instances
// run. fleetctl and fleetd's HTTP API both ask before they write.
func CheckActivatable(name string, desired DesiredState) error {
	ni := unitfile.ParseName(name)
	if ni.IsTemplate() && desired != Inactive {
		return fmt.Errorf("cannot activate template %q: a template can only be submitted; start an instance such as %s",
			name, ni.Prefix+"@1"+ni.Suffix)
	}
	return nil
}

// ValidateBody checks the [X-Fleet] section of the body f submitted as unit
// name (xfleet.Validate). Options fleet does not know are refused unless a
// custom policy places the unit: the one its Policy= names or, when it
// names none, the cluster's default. defaultPolicy is called only in that
// last case, so a caller checking many units reads it once, when needed.
func ValidateBody(name string, f *unitfile.File, defaultPolicy func() (string, error)) error {
	custom := xfleet.Read(name, f.Options).Policy != ""
	if !custom {
		d, err := defaultPolicy()
		if err != nil {
			return err
		}
		custom = d != BuiltinPolicy
	}
	return xfleet.Validate(name, f.Options, custom)
}
