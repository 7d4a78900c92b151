package reliability

import (
	"testing"

	"github.com/wasmfleet/fleet/testcluster"
)

// TestMain builds the fleetd the machines run and the fleetctl the tests
// drive them with.
func TestMain(m *testing.M) { testcluster.Main(m) }
