// Package execdriver runs units as child processes of fleetd: the driver for
// "fleetd dev" and for hosts without systemd.
//
// It understands the part of a service unit a supervisor can honour without
// systemd: ExecStartPre, ExecStart, ExecStop (with systemd's quoting and the
// "-" prefix), Environment, WorkingDirectory, Restart and RestartSec, and the
// specifiers %n %N %p %i %H %m %%. Each unit runs in its own process group and
// dies with fleetd (SIGKILL on parent death), so killing a dev machine's
// fleetd kills its units, as a real machine failure would.
package execdriver
