package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/wasmfleet/fleet/testcluster"
)

// maxAgents bounds Options.ConsulAgents: agent k binds 127.0.10.k.
const maxAgents = 250

// startParallel is how many client agents start at once.
const startParallel = 25

// AgentIP is the loopback address Consul client agent k (from 1) binds:
// 127.0.10.k.
func AgentIP(k int) string { return fmt.Sprintf("127.0.10.%d", k) }

// startAgents starts n Consul client agents, startParallel at a time (a
// hundred at once on two cores do not all join within the 30 s an agent
// is given), joined to the server at join, and returns once every one has
// joined; on an error it stops those it started. Each logs to dir/consul-agent-K.log (discarded when
// dir is empty) and keeps its data in a temporary directory, in memory
// (/dev/shm) where there is one: a client agent writes and fsyncs a file
// for every service and check registered or updated, and a real machine's
// agent does so on its own disk, not on one disk shared by dozens.
func startAgents(ctx context.Context, n int, bin, join, dir string, hcl []string) ([]*testcluster.ConsulAgent, error) {
	if n > maxAgents {
		return nil, fmt.Errorf("scale: %d Consul agents: at most %d", n, maxAgents)
	}
	agents := make([]*testcluster.ConsulAgent, n)
	logs := make([]*os.File, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	slots := make(chan struct{}, startParallel)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			var log io.Writer = io.Discard
			if dir != "" {
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("consul-agent-%d.log", k+1)))
				if err != nil {
					errs[k] = err
					return
				}
				logs[k], log = f, f
			}
			agents[k], errs[k] = testcluster.StartConsulAgent(ctx, testcluster.ConsulAgentOptions{
				Binary: bin, Join: join, Bind: AgentIP(k + 1), NodeName: fmt.Sprintf("sim-consul-%d", k+1), Log: log, HCL: hcl,
				TempDir: memDir(),
			})
		}()
	}
	wg.Wait()
	// An agent's log stays open in its process; this process no longer
	// needs the file.
	for _, f := range logs {
		if f != nil {
			f.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		stopAgents(agents)
		return nil, err
	}
	return agents, nil
}

// stopAgents stops every agent (nil ones skipped) by PID, at once.
func stopAgents(agents []*testcluster.ConsulAgent) {
	var wg sync.WaitGroup
	for _, a := range agents {
		if a != nil {
			wg.Add(1)
			go func() { defer wg.Done(); a.Stop() }()
		}
	}
	wg.Wait()
}

// memDir is /dev/shm when it is a writable directory, else "" (the
// default temporary directory).
func memDir() string {
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err == nil && st.IsDir() {
		if f, err := os.CreateTemp(shm, "fleet-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return shm
		}
	}
	return ""
}
