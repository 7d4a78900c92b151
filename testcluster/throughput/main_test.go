package throughput

import (
	"testing"

	"github.com/wasmfleet/fleet/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }
