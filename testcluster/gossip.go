package testcluster

import (
	"fmt"
	"os"
)

// Gossip settings for the test clusters that stand for real ones.
const (
	// ConsulDefaultGossip is Consul's own LAN gossip defaults: what every
	// agent runs with unless configured otherwise.
	ConsulDefaultGossip = `gossip_lan { gossip_interval = "200ms", probe_interval = "1s", probe_timeout = "500ms", suspicion_mult = 4 }`
	// FastGossip is the LAN gossip RELIABILITY.md recommends for fleet
	// clusters that want a dead machine's units moved within seconds.
	FastGossip = `gossip_lan { gossip_interval = "100ms", probe_interval = "200ms", probe_timeout = "100ms", suspicion_mult = 3 }`
)

// GossipFromEnv is the gossip the systemd test clusters run with, from
// FLEET_GOSSIP: "consul" (the default) gives the server Consul's defaults
// and the machines' agents their own defaults, as an untuned real cluster;
// "fast" gives every agent FastGossip; "dev" leaves the server in dev
// mode's gossip, which probes ten times as often as Consul's defaults. It
// returns the server's and the client agents' HCL.
func GossipFromEnv() (server, client string, err error) {
	switch g := os.Getenv("FLEET_GOSSIP"); g {
	case "", "consul":
		return ConsulDefaultGossip, "", nil
	case "fast":
		return FastGossip, FastGossip, nil
	case "dev":
		return "", "", nil
	default:
		return "", "", fmt.Errorf("FLEET_GOSSIP=%q: want consul, fast or dev", g)
	}
}
