package unitfile

import (
	"strings"

	"github.com/wasmfleet/fleet/sdk"
)

// XFleetSection is the section fleet reads its scheduling options from.
const XFleetSection = "X-Fleet"

// MachineMetadata returns the MachineMetadata requirements of a unit: for each
// key the values any one of which satisfies it. Different keys must all be
// satisfied. A value may hold several space-separated, optionally quoted
// "key=value" pairs; pairs that are not exactly one non-empty key and one
// non-empty value are ignored, as fleet did.
func (f *File) MachineMetadata() map[string][]string {
	req := map[string][]string{}
	for _, name := range []string{"MachineMetadata", "X-ConditionMachineMetadata"} {
		for _, v := range f.Values(XFleetSection, name) {
			for _, pair := range sdk.SplitQuoted(v) {
				k, val, ok := strings.Cut(pair, "=")
				k, val = strings.TrimSpace(k), strings.TrimSpace(val)
				if !ok || k == "" || val == "" || strings.Contains(val, "=") {
					continue
				}
				req[k] = append(req[k], val)
			}
		}
	}
	return req
}

// MachineMetadataFor is MachineMetadata with specifiers expanded for the
// unit named unit.
func (f *File) MachineMetadataFor(unit string) map[string][]string {
	req := f.MachineMetadata()
	for k, vs := range req {
		for i, v := range vs {
			req[k][i] = sdk.ExpandSpecifiers(v, unit)
		}
	}
	return req
}

// MatchesMetadata reports whether machine metadata md satisfies req: every key
// of req present in md with one of its listed values.
func MatchesMetadata(req map[string][]string, md map[string]string) bool {
	for k, vals := range req {
		have, ok := md[k]
		if !ok {
			return false
		}
		found := false
		for _, v := range vals {
			if v == have {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
