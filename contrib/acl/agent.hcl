# fleet agent: what fleetd needs to run the units scheduled to one machine
# and nothing else. One token per machine. Replace MACHINE_ID with the
# machine's ID (/etc/machine-id, or fleetd --machine-id) and NODE_NAME with
# the Consul node name of the agent fleetd talks to. With --key-prefix,
# replace "fleet/" and "fleet-chunks/" too. docs/acl.md explains each rule.

# Its own schedule, which only the leader writes, and the unit bodies it names.
key_prefix "fleet/schedule/MACHINE_ID/" { policy = "read" }
key_prefix "fleet/units/" { policy = "read" }

# The key schema version, read before fleetd writes anything
# (docs/keys.md, "Schema versions").
key "fleet/schema" { policy = "read" }

# The machine record and its units' states, held by its session.
key "fleet/machines/MACHINE_ID" { policy = "write" }
key_prefix "fleet/states/MACHINE_ID/" { policy = "write" }

# Its dynamic metadata (set by operators), and the empty directory key it
# creates so that a blocking read of it is not woken by other writes.
key_prefix "fleet/machine-metadata/MACHINE_ID/" { policy = "read" }
key "fleet/machine-metadata/MACHINE_ID/" { policy = "write" }

# The session that proves the machine alive, on its own Consul node, and the
# gossip member list the isolation check reads.
session "NODE_NAME" { policy = "write" }
agent "NODE_NAME" { policy = "read" }
node_prefix "" { policy = "read" }

# The fleet-agent service with the heartbeat check, registered on the
# machine's own Consul agent, and one service per unit, named after the unit
# (web@1.service registers "web"), on the machine's own node in Consul's
# catalog, which fleetd writes directly.
service_prefix "" { policy = "write" }
node "fleet-machine-MACHINE_ID" { policy = "write" }
