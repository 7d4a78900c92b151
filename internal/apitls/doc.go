// Package apitls is the one home of the rule for TLS on fleetd's TCP
// endpoints, the two that receive a caller's Consul ACL token: --api-addr,
// where fleetctl status and journal reach a machine, and --fleet-api-addr,
// fleet's HTTP API over TCP.
//
//   - fleetd serves both over TLS when it reaches Consul over TLS, or when
//     given a certificate of its own (--api-cert-file and --api-key-file);
//     else over plain HTTP. Without a certificate of its own it serves its
//     Consul client certificate (CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY).
//     ServerConfig settles it, and refuses at start a certificate fleetctl
//     could not verify: one that does not name the machine's public IP,
//     does not allow server authentication, or is not signed by the CA
//     fleetd trusts for Consul (when it names one: CONSUL_CACERT or
//     CONSUL_CAPATH).
//   - Each machine publishes its endpoint's scheme in its fleet-agent
//     service in Consul (meta SchemeMeta); URL reads it back.
//   - fleetctl follows that scheme (Client). Over https it verifies the
//     machine with the CA it trusts for Consul (CONSUL_CACERT or
//     CONSUL_CAPATH, else the system's). Over http it refuses to send a
//     token when it reaches Consul over TLS: the token would cross the
//     network in clear text.
package apitls
