package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
	"github.com/wasmfleet/fleet/testcluster/scale"
)

// cutOffSwitch is an agent.IsolationWatch a test throws: the agent hears
// what the test sends, as from a watch that found the machine cut off
// (true) or back (false).
type cutOffSwitch chan bool

func (s cutOffSwitch) Watch(ctx context.Context, out chan<- bool) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-s:
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}
}

// TestAgentFencesWhileCutOff runs an agent with the isolation watch it was
// given: told its machine is cut off, it stops its unit and keeps it
// loaded; told the machine is back, it reads its schedule again and starts
// the unit.
func TestAgentFencesWhileCutOff(t *testing.T) {
	const id = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := startTestMachine(t, ctx, id, "127.0.0.8", nil)
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/sleep 60\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.reg.CreateJob(ctx, "web.service", f, registry.Launched); err != nil {
		t.Fatal(err)
	}
	lock, _, err := m.client.Session().Create(&api.SessionEntry{LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.client.Session().Destroy(lock, nil)
	if ok, err := m.reg.AcquireLeader(ctx, lock, "test-leader"); !ok || err != nil {
		t.Fatalf("leader lock: %v %v", ok, err)
	}
	j, err := m.reg.Job(ctx, "web.service")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.reg.Schedule(ctx, j, id, lock); !ok || err != nil {
		t.Fatalf("schedule web.service: %v %v", ok, err)
	}

	drv := scale.NewMemDriver()
	cut := make(cutOffSwitch)
	a := agent.New(agent.Config{Registry: m.reg, Machine: registry.Machine{ID: id, IP: m.ip}, Driver: drv,
		Heartbeat: m.hb, Log: m.log, Isolation: cut})
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	unitIs := func(load, active string) func() error {
		return func() error {
			if st := drv.State("web.service"); st.Load != load || st.Active != active {
				return fmt.Errorf("web.service is %s/%s, want %s/%s", st.Load, st.Active, load, active)
			}
			return nil
		}
	}
	throw := func(cutOff bool) {
		t.Helper()
		select {
		case cut <- cutOff:
		case <-time.After(20 * time.Second):
			t.Fatal("the agent is not running the isolation watch it was given")
		}
	}
	testcluster.Eventually(t, 20*time.Second, unitIs("loaded", "active"))
	throw(true)
	testcluster.Eventually(t, 20*time.Second, unitIs("loaded", "inactive"))
	throw(false)
	testcluster.Eventually(t, 20*time.Second, unitIs("loaded", "active"))
}
