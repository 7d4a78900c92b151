# fleet policy publisher: fleetctl policy upload, rm and default. Units then
# choose an uploaded policy with [X-Fleet] Policy=NAME (an operator's job).

key_prefix "fleet/" { policy = "read" }
key_prefix "fleet/policies/" { policy = "write" }
key "fleet/policy-default" { policy = "write" }
key_prefix "fleet-chunks/" { policy = "write" }
