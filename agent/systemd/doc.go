// Package systemd is the agent's driver for systemd, over D-Bus. It is the
// only package that imports go-systemd's dbus client.
//
// A unit is written to the units directory (/run/fleet/units), linked as a
// runtime unit, enabled when it has an [Install] section, and started and
// stopped with mode "replace", waiting for the job's result. Unloading stops
// the unit, disables it, resets its failed state and removes the file. One
// daemon-reload serves a whole batch of loads and unloads (Sync).
//
// States come from systemd's PropertiesChanged signals: a signal for a unit
// fleet manages marks it dirty, and one ListUnitsByNames call refreshes all
// dirty units. Nothing is polled, so an idle agent costs nothing however many
// units it runs. When the D-Bus connection drops (systemd re-executed) the
// driver reconnects, subscribes again and refreshes every unit.
package systemd
