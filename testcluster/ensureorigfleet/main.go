// Command ensureorigfleet prints the path of CoreOS fleet v1.0.0's own
// fleetctl, which the fleet API tests drive, building it from the Go module
// proxy into the user cache first if it is not there (progress on stderr).
// "make test" runs it so the build, when needed, happens once and visibly,
// not inside a test's timeout.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wasmfleet/fleet/testcluster"
)

func main() {
	o, err := testcluster.BuildOrigFleet(context.Background(), os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ensureorigfleet:", err)
		os.Exit(1)
	}
	fmt.Println(o.Fleetctl())
}
