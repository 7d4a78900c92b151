# fleet leader: what a fleetd needs, beyond its agent policy, to compete for
# the leader lock and place units. Give it to the machines that may lead
# (fleetd without --disable-engine), on the same token as their agent
# policy, with the same MACHINE_ID.

# The whole cluster: units, jobs, states, machines, policies and their bytes.
key_prefix "fleet/" { policy = "read" }
key_prefix "fleet-chunks/" { policy = "read" }

# The lock, each unit's placement (placement/<unit>: its machine, or why it
# has none) and every machine's schedule. Every write is fenced on holding
# the lock. Units themselves (jobs/) are the operator's: read only here.
key "fleet/leader" { policy = "write" }
# The key schema version, stamped once when the leader has moved the keys
# to its version (docs/keys.md, "Schema versions").
key "fleet/schema" { policy = "write" }
key_prefix "fleet/placement/" { policy = "write" }
key_prefix "fleet/schedule/" { policy = "write" }
# The change log's entries it has read, which it removes (fenced too).
key_prefix "fleet/changes/" { policy = "write" }
# Consul applies a token's longest matching prefix: the agent policy's read of
# this machine's own schedule would otherwise win over the line above.
key_prefix "fleet/schedule/MACHINE_ID/" { policy = "write" }

# The catalog nodes where machines show their units: the leader removes the
# node of a machine that left.
node_prefix "fleet-machine-" { policy = "write" }
