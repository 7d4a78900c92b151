package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/leader"
	"github.com/wasmfleet/fleet/policies"
	"github.com/wasmfleet/fleet/sdk/xfleet"
	"github.com/wasmfleet/fleet/testcluster"
	"github.com/wasmfleet/fleet/testcluster/scale"
)

// TestSimulateMatchesLeader: fleetctl policy simulate predicts what the
// leader does. Over random clusters of simulated machines (real agents,
// a real Consul) and random units with Conflicts, MachineOf, MachineID,
// MachineMetadata, Replaces and global units, some running already: what
// simulate --next says, then what simulate says when every unit is placed
// anew, is compared with where a real leader then puts each unit, or why it
// leaves it waiting.
func TestSimulateMatchesLeader(t *testing.T) {
	// Every fleetctl run in this process has its own Consul client, whose
	// idle connections outlive it: more than Consul's default of 200 from
	// one address over the rounds.
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{HCL: []string{"limits { http_max_conns_per_client = 4096 }"}})
	client, err := api.NewClient(&api.Config{Address: strings.TrimPrefix(consul.URL(), "http://")})
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			w := newWorld(t, consul.URL(), client, seed)
			// Units already running, global ones among them, placed by
			// a leader that then stops.
			w.start(w.units(8, true))
			stop := w.lead()
			w.settle(true)
			stop()
			// More units wait; simulate --next, then a leader.
			w.start(w.units(14, false))
			w.settle(false) // the agents run what they were given
			predicted := w.simulate("--next")
			stop = w.lead()
			w.compare("--next", predicted, w.settle(true))
			// Placed anew: simulate, then a leader finds every
			// placement gone.
			predicted = w.simulate()
			stop()
			if _, err := client.KV().DeleteTree(w.prefix+"placement/", nil); err != nil {
				t.Fatal(err)
			}
			stop = w.lead()
			w.compare("anew", predicted, w.settle(true))
			stop()
		})
	}
}

// world is one random cluster under its own key prefix.
type world struct {
	t        *testing.T
	ep       string
	client   *api.Client
	prefix   string
	r        *rand.Rand
	machines []*scale.Machine
	reg      *registry.Registry
	dir      string
	names    []string        // the units started
	globals  map[string]bool // the global ones
	host     *policies.Host  // for the placer that tells when the leader is done
}

func newWorld(t *testing.T, ep string, client *api.Client, seed uint64) *world {
	w := &world{t: t, ep: ep, client: client, prefix: fmt.Sprintf("sim%d/", seed), r: rand.New(rand.NewPCG(seed, 17)), dir: t.TempDir(),
		globals: map[string]bool{}}
	w.reg = registry.New(client, w.prefix)
	var err error
	if w.host, err = policies.NewHost(context.Background(), policies.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.host.Close(context.Background()) })
	zones, disks := []string{"a", "b", "c"}, []string{"ssd", "hdd"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := scale.Start(ctx, scale.Options{Endpoint: ep, Prefix: w.prefix, Machines: 2 + w.r.IntN(5), TTL: time.Minute,
		Metadata: func(int) map[string]string {
			return map[string]string{"zone": zones[w.r.IntN(3)], "disk": disks[w.r.IntN(2)]}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop(true) })
	if err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	w.machines = h.Machines
	return w
}

// units writes n random unit files, valid by fleet's rules, and returns
// their names: globals too when globals, and rules naming the units
// started before. Only the first units may replace others, and never a
// global unit: a machine that drops a global unit changes the load only
// once its agent has answered, which the leader's next pass may or may not
// see.
func (w *world) units(n int, globals bool) []string {
	var out []string
	for len(out) < n {
		name := fmt.Sprintf("u%d-%d.service", len(w.names)+len(out), w.r.IntN(3))
		var xf []string
		if w.r.IntN(3) == 0 {
			xf = append(xf, fmt.Sprintf("MachineMetadata=zone=%c", 'a'+w.r.IntN(3)))
		}
		switch w.r.IntN(8) {
		case 0:
			xf = append(xf, fmt.Sprintf("Conflicts=u*-%d.service", w.r.IntN(3)))
		case 1:
			xf = append(xf, "X-Conflicts="+w.any(out))
		case 2:
			xf = append(xf, "MachineOf="+w.any(out))
		case 3:
			xf = append(xf, "MachineID="+w.machines[w.r.IntN(len(w.machines))].ID[:8])
		case 4:
			if r := w.any(out); globals && !w.globals[r] {
				xf = append(xf, "Replaces="+r)
			}
		case 5:
			if globals {
				xf = append(xf, "Global=true")
			}
		}
		body := "[Service]\nExecStart=/bin/true\n"
		if len(xf) > 0 {
			body += "[X-Fleet]\n" + strings.Join(xf, "\n") + "\n"
		}
		f, err := unitfile.Parse(body)
		if err != nil || xfleet.Validate(name, f.Options, false) != nil {
			continue
		}
		if xfleet.Read(name, f.Options).Global {
			w.globals[name] = true
		}
		if err := os.WriteFile(filepath.Join(w.dir, name), []byte(body), 0o644); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

// any is a unit named before, among those started or those of this batch.
func (w *world) any(batch []string) string {
	all := append(append([]string{}, w.names...), batch...)
	if len(all) == 0 {
		return "nothing.service"
	}
	return all[w.r.IntN(len(all))]
}

func (w *world) start(names []string) {
	var files []string
	for _, n := range names {
		files = append(files, filepath.Join(w.dir, n))
	}
	mustCtl(w.t, w.ep, append([]string{"--key-prefix", w.prefix, "start", "--no-block"}, files...)...)
	w.names = append(w.names, names...)
}

// lead runs a leader in this process, as fleetd's, until the returned stop.
func (w *world) lead() (stop func()) {
	t := w.t
	session, _, err := w.client.Session().Create(&api.SessionEntry{Name: "simulate-test", TTL: "600s", Behavior: api.SessionBehaviorRelease}, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, err := policies.NewHost(context.Background(), policies.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- leader.Run(ctx, leader.Config{Registry: w.reg, MachineID: "simulate-test-leader", Session: func() string { return session },
			Placer: &policies.Placer{Builtin: policies.Builtin(host)}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		host.Close(context.Background())
		_, _ = w.client.Session().Destroy(session, nil)
	}
}

// settle waits until every machine's agent reports what fleet's rules have
// it run and, with leading, until the leader is done: each unit started has
// a machine or a reason to wait, and a pass over the cluster would write
// nothing. It returns the snapshot.
func (w *world) settle(leading bool) *registry.Snapshot {
	var s *registry.Snapshot
	placer := &policies.Placer{Builtin: policies.BuiltinNative(w.host)}
	testcluster.Eventually(w.t, 2*time.Minute, func() error {
		var err error
		if s, err = w.reg.Snapshot(context.Background(), 0, 0); err != nil {
			return err
		}
		for _, m := range w.machines {
			for n, want := range agent.Wanted(s, m.ID, m.Metadata) {
				if st := s.States[n][m.ID]; st == nil || st.Hash != want.Hash.String() {
					return fmt.Errorf("%s does not report %s yet", registry.ShortID(m.ID), n)
				}
			}
		}
		if !leading {
			return nil
		}
		for _, n := range w.names {
			if j := s.Jobs[n]; !j.Global() && j.Target == "" && j.Unplaced == "" {
				return fmt.Errorf("%s waits for the leader", n)
			}
		}
		if ws := leader.Writes(w.reg, s, leader.Reconcile(context.Background(), s, placer)); len(ws) > 0 {
			return fmt.Errorf("the leader's next pass would write %d keys", len(ws))
		}
		return nil
	})
	return s
}

func (w *world) simulate(args ...string) map[string]simulated {
	out := mustCtl(w.t, w.ep, append([]string{"--key-prefix", w.prefix, "policy", "simulate", "--all", "-o", "json"}, args...)...)
	var rows []simulated
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		w.t.Fatalf("simulate -o json: %v\n%s", err, out)
	}
	m := map[string]simulated{}
	for _, r := range rows {
		m[r.Unit] = r
	}
	return m
}

// compare checks that the leader put every unit where simulate said, or
// left it waiting for the reason simulate gave.
func (w *world) compare(mode string, predicted map[string]simulated, s *registry.Snapshot) {
	w.t.Helper()
	n := 0
	for _, name := range w.names {
		j := s.Jobs[name]
		if j.Global() {
			continue
		}
		n++
		p, ok := predicted[name]
		switch {
		case !ok:
			w.t.Errorf("%s: simulate %s says nothing of %s", mode, mode, name)
		case p.WouldBe != j.Target:
			w.t.Errorf("%s: %s: simulate said %q (%s), the leader put it on %q (%s)", mode, name, p.WouldBe, p.Why, j.Target, j.Unplaced)
		case p.WouldBe == "" && p.Why != j.Unplaced:
			w.t.Errorf("%s: %s waits: simulate said %q, the leader %q", mode, name, p.Why, j.Unplaced)
		}
	}
	if n == 0 || len(predicted) != n {
		w.t.Errorf("%s: simulate gave %d units, the leader has %d to place", mode, len(predicted), n)
	}
}
