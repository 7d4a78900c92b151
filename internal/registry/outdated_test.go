package registry

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestOutdated: when the leader's watch of a subtree makes it read the
// subtree again.
func TestOutdated(t *testing.T) {
	some := api.KVPairs{{Key: "fleet/jobs/a.service"}}
	for _, c := range []struct {
		name   string
		read   read
		mark   mark
		seen   uint64
		reread bool
	}{
		{"a write after the read", read{some, 10}, mark{12, false}, 10, true},
		{"a write the read already holds", read{some, 15}, mark{12, false}, 10, false},
		{"the wait ended, nothing new", read{some, 10}, mark{10, false}, 10, false},
		{"Consul restored a snapshot", read{some, 10}, mark{7, false}, 10, true},
		{"never read", read{}, mark{5, true}, 0, true},
		{"empty, read empty, another subtree written", read{nil, 20}, mark{30, true}, 20, false},
		{"empty, read holding keys: they were deleted", read{some, 20}, mark{30, true}, 20, true},
		{"keys in a subtree read empty", read{nil, 20}, mark{30, false}, 20, true},
	} {
		if got := c.read.outdated(c.mark, c.seen); got != c.reread {
			t.Errorf("%s: outdated = %v, want %v", c.name, got, c.reread)
		}
	}
}
