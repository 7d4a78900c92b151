# fleet operator: fleetctl's unit commands (submit, load, start, stop,
# unload, destroy, restart), machine-metadata, and everything a viewer does.
# Not: uploading policies, writing the schedule, or posing as a machine.

key_prefix "fleet/" { policy = "read" }
key_prefix "fleet/units/" { policy = "write" }
key_prefix "fleet/jobs/" { policy = "write" }
# The change log: each write of units names its keys there, so the leader
# reads those keys, not every unit. Without it fleetctl still works, and
# the leader reads every unit at each change (docs/keys.md).
key_prefix "fleet/changes/" { policy = "write" }
key_prefix "fleet/machine-metadata/" { policy = "write" }
key_prefix "fleet-chunks/" { policy = "read" }

# list-machines, status and journal find machines through the catalog.
service "fleet-agent" { policy = "read" }
node_prefix "" { policy = "read" }
