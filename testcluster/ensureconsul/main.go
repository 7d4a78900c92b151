// Command ensureconsul prints the path of the consul binary fleet's tests and
// dev mode use, building the pinned release into the user cache first if
// there is none (progress on stderr). "make test" runs it so the build, when
// needed, happens once and visibly, not inside a test's timeout.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wasmfleet/fleet/testcluster"
)

func main() {
	p, err := testcluster.ConsulBinary(context.Background(), os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ensureconsul:", err)
		os.Exit(1)
	}
	fmt.Println(p)
}
