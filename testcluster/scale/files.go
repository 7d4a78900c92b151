package scale

import (
	"fmt"
	"os"
	"syscall"
)

// blockingPerMachine is how many blocking queries a simulated machine
// holds at once, each on a connection of its own while it waits: its
// agent's schedule and dynamic metadata, and its heartbeat's session.
const blockingPerMachine = 3

// connsFor is the most connections a client serving machines simulated
// machines holds (newClient's pool): one for each blocking query, and for
// the machines' other requests, which wait their turn when all are busy,
// one for every two machines (at least four). At 5,000 machines that is
// 17,500, under a common open-file limit of 20,000.
func connsFor(machines int) int { return blockingPerMachine*machines + max(machines/2, 4) }

// ensureFiles makes sure this process may open enough files for machines
// simulated machines spread over agents client agents (all on the server's
// agent with none) and what it needs besides (Consul agents' pipes,
// fleetctl), raising its limit when it may (as root, the hard limit too),
// and says what to do when it may not: out of files, a run fails at once
// in the middle, where a fleetctl command cannot get its pipes.
func ensureFiles(machines, agents int) error {
	conns := connsFor(machines)
	if agents > 0 {
		conns = agents * connsFor((machines+agents-1)/agents)
	}
	need := uint64(conns + 1024)
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
