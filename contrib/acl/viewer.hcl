# fleet viewer: fleetctl's read-only commands (list-units, list-unit-files,
# list-machines, cat, status, journal, policy list/show/simulate, verify).

key_prefix "fleet/" { policy = "read" }
key_prefix "fleet-chunks/" { policy = "read" }
service "fleet-agent" { policy = "read" }
node_prefix "" { policy = "read" }
