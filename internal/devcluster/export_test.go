package devcluster

// What a killed box could leave behind on the host, for the box tests
// (package devcluster_test) to check that it left nothing.

// Cgroups is the box's fleet-box-NAME cgroup in every hierarchy.
func (b *Box) Cgroups() []string { return b.cgroups }

// UnsharePID is the PID of unshare, which holds the box's namespaces.
func (b *Box) UnsharePID() int { return b.cmd.Process.Pid }

// MountPoint is the host directory the box's tmpfs is mounted on.
func (b *Box) MountPoint() string { return b.dir }
