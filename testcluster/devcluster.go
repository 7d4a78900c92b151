package testcluster

import (
	"context"
	"os"

	"github.com/wasmfleet/fleet/internal/devcluster"
)

// The processes of a cluster (Consul, its client agents, fleetd machines,
// systemd boxes) are package devcluster's, which fleetd dev runs too. Tests
// name them through testcluster, so that a test imports this one package;
// what testcluster adds is only for tests: a testing.TB that fails the test
// and cleans up, and the Consul build.
type (
	Consul             = devcluster.Consul
	ConsulOptions      = devcluster.ConsulOptions
	ConsulAgent        = devcluster.ConsulAgent
	ConsulAgentOptions = devcluster.ConsulAgentOptions
	Machine            = devcluster.Machine
	MachineOptions     = devcluster.MachineOptions
	Box                = devcluster.Box
	BoxOptions         = devcluster.BoxOptions
	BoxProcess         = devcluster.BoxProcess
	TLSFiles           = devcluster.TLSFiles
)

// StartConsul is devcluster.StartConsul with ConsulBinary's consul when
// opts.Binary is empty: built first (progress on stderr) when there is none.
func StartConsul(ctx context.Context, opts ConsulOptions) (*Consul, error) {
	if err := ensureBinary(ctx, &opts.Binary); err != nil {
		return nil, err
	}
	return devcluster.StartConsul(ctx, opts)
}

// StartConsulAgent is devcluster.StartConsulAgent with ConsulBinary's
// consul when opts.Binary is empty, as StartConsul.
func StartConsulAgent(ctx context.Context, opts ConsulAgentOptions) (*ConsulAgent, error) {
	if err := ensureBinary(ctx, &opts.Binary); err != nil {
		return nil, err
	}
	return devcluster.StartConsulAgent(ctx, opts)
}

func ensureBinary(ctx context.Context, bin *string) error {
	if *bin != "" {
		return nil
	}
	p, err := ConsulBinary(ctx, os.Stderr)
	*bin = p
	return err
}

// StartMachine is devcluster.StartMachine: "fleetd agent" with the exec
// driver, as its own process.
func StartMachine(opts MachineOptions) (*Machine, error) { return devcluster.StartMachine(opts) }

// NewMachineID is devcluster.NewMachineID: a random /etc/machine-id.
func NewMachineID() string { return devcluster.NewMachineID() }

// FreePorts is devcluster.FreePorts: n TCP ports free on host.
func FreePorts(host string, n int) ([]int, error) { return devcluster.FreePorts(host, n) }

// GenerateTLS is devcluster.GenerateTLS: a throw-away PKI for a Consul with
// TLS on (ConsulOptions.TLS).
func GenerateTLS(dir string) (*TLSFiles, error) { return devcluster.GenerateTLS(dir) }
