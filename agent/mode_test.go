package agent

import "testing"

// TestMode: what the agent has read decides its mode.
func TestMode(t *testing.T) {
	some := map[string]Want{}
	for _, tc := range []struct {
		name    string
		want    map[string]Want
		dynamic map[string]string
		stale   bool
		fenced  bool
		mode    Mode
	}{
		{"nothing read", nil, nil, false, false, Starting},
		{"schedule without dynamic metadata", some, nil, false, false, Starting},
		{"dynamic metadata without schedule", nil, map[string]string{}, false, false, Starting},
		{"both read", some, map[string]string{}, false, false, Following},
		{"cut off", some, map[string]string{}, true, true, CutOff},
		{"cut off before the dynamic metadata", some, nil, true, true, CutOff},
		{"cut off before any schedule", nil, nil, true, true, Starting},
		{"back, schedule from before", some, map[string]string{}, true, false, Returning},
	} {
		a := &Agent{want: tc.want, dynamic: tc.dynamic, stale: tc.stale, fenced: tc.fenced}
		if got := a.mode(); got != tc.mode {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.mode)
		}
	}
}
