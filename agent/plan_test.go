package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

func hashOf(t *testing.T, cmd string) unitfile.Hash {
	t.Helper()
	f, err := unitfile.Parse("[Service]\nExecStart=" + cmd + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return f.Hash()
}

func TestPlan(t *testing.T) {
	a, b := hashOf(t, "/bin/a"), hashOf(t, "/bin/b")
	for _, tc := range []struct {
		name string
		want map[string]Want
		have map[string]Have
		plan string
	}{
		{"nothing", nil, nil, ""},
		{"new launched unit", map[string]Want{"x.service": {Hash: a, Launched: true}}, nil, "load x.service, start x.service"},
		{"new loaded unit", map[string]Want{"x.service": {Hash: a}}, nil, "load x.service"},
		{"start loaded", map[string]Want{"x.service": {Hash: a, Launched: true}}, map[string]Have{"x.service": {Hash: a}}, "start x.service"},
		{"stop launched", map[string]Want{"x.service": {Hash: a}}, map[string]Have{"x.service": {Hash: a, Launched: true}}, "stop x.service"},
		{"in place", map[string]Want{"x.service": {Hash: a, Launched: true}}, map[string]Have{"x.service": {Hash: a, Launched: true}}, ""},
		{"gone", nil, map[string]Have{"x.service": {Hash: a, Launched: true}}, "unload x.service"},
		{"new body", map[string]Want{"x.service": {Hash: b, Launched: true}}, map[string]Have{"x.service": {Hash: a, Launched: true}},
			"unload x.service, load x.service, start x.service"},
		{"unloads first", map[string]Want{"a.service": {Hash: a, Launched: true}}, map[string]Have{"z.service": {Hash: a, Launched: true}},
			"unload z.service, load a.service, start a.service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, task := range Plan(tc.want, tc.have) {
				got = append(got, fmt.Sprintf("%s %s", task.Kind, task.Name))
			}
			if s := strings.Join(got, ", "); s != tc.plan {
				t.Errorf("Plan = %q, want %q", s, tc.plan)
			}
		})
	}
}
