package scale

import (
	"fmt"
	"os"
	"syscall"
)

// filesPerMachine is what a simulated machine holds open at most
// (newClient's pool): a connection for each of its three blocking queries
// (its agent's schedule and dynamic metadata, its heartbeat's session) and
// one for its other requests.
const filesPerMachine = 4

// ensureFiles makes sure this process may open enough files for machines
// simulated machines and what it needs besides (Consul agents' pipes,
// fleetctl), raising its limit when it may (as root, the hard limit too),
// and says what to do when it may not: out of files, a run fails at once
// in the middle, where a fleetctl command cannot get its pipes.
func ensureFiles(machines int) error {
	need := uint64(filesPerMachine*machines + 1024)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= need {
		return nil
	}
	raised := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		return fmt.Errorf("scale: %d simulated machines need about %d open files, and this process may open %d: raise the limit (ulimit -n %d, as root for a hard limit that low)",
			machines, need, lim.Max, need)
	}
	return nil
}

// openFiles is how many files this process has open.
func openFiles() int {
	fds, _ := os.ReadDir("/proc/self/fd")
	return len(fds)
}
