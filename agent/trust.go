package agent

import (
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
)

// rejectedMsg is the log line of a schedule entry the agent will not run.
const rejectedMsg = "schedule entry rejected"

// reportRejected logs each entry of the machine's schedule that s rejected
// (registry.MachineSchedule says which and why) once, and again only when
// the entry or the reason changes, and counts them in the metrics. An entry
// is rejected when the leader cannot have written it; the agent runs only
// what its schedule names with a valid name and a body it can check, so a
// rejected entry is as good as absent: nothing runs under it, and a unit
// this machine ran under that name is unloaded like any unit taken off its
// schedule.
func (a *Agent) reportRejected(rejected map[string]registry.Rejection) {
	dir := a.cfg.Registry.Prefix() + "schedule/" + a.cfg.Machine.ID + "/"
	keys := make([]string, 0, len(rejected))
	for key := range rejected {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		r := rejected[key]
		if old, ok := a.rejected[key]; ok && old == r {
			continue
		}
		did := "ignored, not run"
		if _, ran := a.have[strings.TrimPrefix(key, dir)]; ran {
			did = "ignored, not run; the unit of that name running here is unloaded"
		}
		a.cfg.Log.Warn(rejectedMsg, "key", key, "reason", r.Reason, "action", did)
		a.cfg.Metrics.rejection()
	}
	for key := range a.rejected {
		if _, ok := rejected[key]; !ok {
			a.cfg.Log.Info("rejected schedule entry is gone or now valid", "key", key)
		}
	}
	a.rejected = rejected
	a.cfg.Metrics.rejectedEntries(len(rejected))
}
