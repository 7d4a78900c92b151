// Package devcluster runs the processes of a whole fleet cluster on one
// host: a real Consul server on loopback (StartConsul), Consul client agents
// (StartConsulAgent), fleetd machines as processes of their own with the exec
// driver (StartMachine), and real systemd machines, each systemd booted in a
// throw-away nspawn container over an overlay of the host's root (StartBox).
// "fleetd dev" is built from these, and so are the test clusters of package
// testcluster, which adds what only tests need.
//
// Every process is started in a process group of its own and dies with the
// process that started it (Pdeathsig); Stop and Kill end them by PID.
//
// FindConsul finds the consul binary (CONSUL_BIN, PATH, the user cache); it
// never builds one. "make consul" builds the pinned release into the cache.
package devcluster
