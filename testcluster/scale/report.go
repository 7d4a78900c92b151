package scale

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Median is the middle of ds (the mean of the two middle ones for an even
// count); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Writes is Consul's raft writes during the run, less what the idle
// cluster would have written meanwhile.
func (r *Result) Writes() float64 {
	return r.Raft["total"] - r.baseline("consul_raft_apply")
}

// Reads is Consul's HTTP GETs during the run, less Run's own reads (the
// real fleetds' states, telemetry) and what the idle cluster would have
// read meanwhile.
func (r *Result) Reads() float64 {
	var n float64
	for k, v := range r.HTTP {
		if strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	for k, v := range r.Bench {
		if IsRead(k) {
			n -= float64(v)
		}
	}
	var idle float64
	for k := range r.Baseline {
		if strings.HasPrefix(k, "consul_api_http_count{") && Label(k, "method") == "GET" {
			idle += r.baseline(k)
		}
	}
	return n - idle
}

// baseline is what series k of the idle cluster adds up to over Window.
func (r *Result) baseline(k string) float64 {
	return r.Baseline[k] / r.BaselineWindow.Seconds() * r.Window.Seconds()
}

func split(counts map[string]float64) (reads, writes float64) {
	for k, v := range counts {
		if IsRead(k) {
			reads += v
		} else {
			writes += v
		}
	}
	return reads, writes
}

// floats converts counts, less idle (counted over the baseline window)
// scaled to the run's window.
func (r *Result) floats(counts, idle map[string]int64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range counts {
		out[k] = float64(v) - float64(idle[k])/r.BaselineWindow.Seconds()*r.Window.Seconds()
	}
	return out
}

// netHTTP is r.HTTP less the idle cluster's requests over the window and
// Run's own reads.
func (r *Result) netHTTP() map[string]float64 {
	out := map[string]float64{}
	for k, v := range r.HTTP {
		out[k] = v
	}
	for k := range r.Baseline {
		if strings.HasPrefix(k, "consul_api_http_count{") {
			out[Label(k, "method")+" "+Label(k, "path")] -= r.baseline(k)
		}
	}
	for k, v := range r.Bench {
		// Consul's label for a path: v1_kv_ for /v1/kv/<key>,
		// v1_agent_metrics for /v1/agent/metrics.
		method, ep, _ := strings.Cut(k, " ")
		label := method + " v1_" + strings.ReplaceAll(ep, "/", "_")
		if _, ok := out[label]; !ok {
			label += "_"
		}
		out[label] -= float64(v)
	}
	return out
}

// Print writes the figures, one per line, ending with
// "placements_per_second N".
func (r *Result) Print(w io.Writer, label string) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	p := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	r.printSetup(p, label)
	r.printConsul(p)
	r.printProcesses(p)
	tw.Flush()
	fmt.Fprintf(w, "placements_per_second %.0f\n", r.PlacementsPerSecond())
}

// printer writes one line of the report: its key, then its figures.
type printer func(k, format string, args ...any)

// printSetup writes what ran, which of it stands for other hosts, and how
// long the units took.
func (r *Result) printSetup(p printer, label string) {
	p("run", "%s: %d machines (%d simulated + leader + idle fleetd), %d units", label, r.Machines, r.Machines-2, r.Units)
	server := "1 server"
	if r.ConsulDev {
		server = "1 dev-mode server"
	}
	if r.ConsulAgents > 0 {
		p("consul topology", "%s (leader, idle fleetd) + %d client agents (simulated machines, ~%d each)", server, r.ConsulAgents, (r.Machines-2+r.ConsulAgents-1)/r.ConsulAgents)
	} else {
		p("consul topology", "%s agent for every machine", server)
	}
	local := fmt.Sprintf("the %d client agents", r.ConsulAgents)
	if r.ConsulAgents == 0 {
		local = "the server's agent"
	}
	p("other hosts", "the simulated machines (this process) stand for %d machines' fleetd agents and %s for their local Consul agents,", r.Machines-2, local)
	p("", "each on its own host in a real cluster; the Consul server and the leading fleetd pay what a real cluster's server and leader pay")
	p("first submit to all acknowledged", "%.2f s", r.Elapsed.Seconds())
	p("  seen", "%s", r.seen())
	how := "with --no-block"
	if r.Wait {
		how = "each waiting until its units run"
	}
	p("fleetctl submit+start", "%.2f s wall, %.2f s CPU: %.0f units/s (%s)", r.Submit.Seconds(), r.SubmitCPU.Seconds(), float64(r.Units)/r.Submit.Seconds(), how)
}

// printConsul writes what each unit cost, and Consul's operations per
// unit: every figure net of the idle cluster's (and of Run's own reads).
func (r *Result) printConsul(p printer) {
	u := float64(r.Units)
	p("cost per unit placed", "consul server %.2f ms CPU (goal <= 0.5), consul client agents %.2f ms, leader fleetd %.2f ms and %s read from Consul",
		r.UnitCPU("consul"), r.UnitCPU("agents"), r.UnitCPU("leader"), r.leaderReads())
	p("  harness", "%.2f ms CPU per unit: the simulated machines' agents, work done on those machines' own hosts in a real cluster", r.UnitCPU("harness"))
	p("  window", "%.1f s from the first submit until Consul settled, less the idle cluster's CPU and reads over as long", r.SettledWindow.Seconds())
	p("consul writes per unit", "%.2f raft entries (%s); catalog entries of their own (register, deregister) %.2f", r.Writes()/u, r.raftKinds(), r.catalog()/u)
	if r.Unsettled > 0 {
		p("  not settled", "the raft log still grew %.0f entries/s %.0f s after the first submit: figures per unit count what was written by then", r.Unsettled, r.Window.Seconds())
	}
	p("consul reads per unit", "%.2f HTTP GETs (%s)", r.Reads()/u, r.httpKinds("GET"))
	p("consul HTTP writes per unit", "%.2f (%s)", r.httpWrites()/u, r.httpKinds("PUT", "DELETE"))
	fr, fw := split(r.floats(r.Fleetctl, nil))
	agents := r.floats(r.Agents, r.AgentsBaseline)
	ar, aw := split(agents)
	p("  by fleetctl", "%.2f reads, %.2f writes per unit (%s)", fr/u, fw/u, countsLine(r.floats(r.Fleetctl, nil), u))
	p("  by simulated agents", "%.2f reads, %.2f writes per unit (%s)", ar/u, aw/u, countsLine(agents, u))
	var idleReads float64
	for k, v := range r.Baseline {
		if strings.HasPrefix(k, "consul_api_http_count{") && Label(k, "method") == "GET" {
			idleReads += v
		}
	}
	var idleRaft []string
	for _, k := range sortedKeys(r.Baseline) {
		if kind := raftKind(k); kind != "" {
			idleRaft = append(idleRaft, fmt.Sprintf("%s %.1f", kind, r.Baseline[k]/r.BaselineWindow.Seconds()))
		}
	}
	p("idle cluster (subtracted above)", "%.1f HTTP GETs/s, %.1f raft writes/s (%s)", idleReads/r.BaselineWindow.Seconds(),
		r.Baseline["consul_raft_apply"]/r.BaselineWindow.Seconds(), strings.Join(idleRaft, ", "))
}

// printProcesses writes the list commands' times, the processes' memory
// and CPU, the leader's passes and the units' spread.
func (r *Result) printProcesses(p printer) {
	p("list-units", "median %s of 5 (%s)", ms(Median(r.ListUnits)), msList(r.ListUnits))
	if len(r.ListUnitsCPU) > 0 {
		busy := slices.Clone(r.ListUnitsBusy)
		slices.Sort(busy)
		p("  while it ran", "fleetctl's CPU median %s (%s); the rest of the host used %.2f cores (median; %.2f-%.2f, to within 0.01 s of CPU a run)",
			ms(Median(r.ListUnitsCPU)), msList(r.ListUnitsCPU), busy[len(busy)/2], busy[0], busy[len(busy)-1])
	}
	p("list-unit-files", "median %s of 5 (%s)", ms(Median(r.ListUnitFiles)), msList(r.ListUnitFiles))
	if len(r.CompareListUnits) > 0 {
		p("  compared fleetctl", "list-units median %s (%s), list-unit-files median %s (%s); ratios %.2f, %.2f",
			ms(Median(r.CompareListUnits)), msList(r.CompareListUnits), ms(Median(r.CompareListUnitFiles)), msList(r.CompareListUnitFiles),
			float64(Median(r.ListUnits))/float64(Median(r.CompareListUnits)), float64(Median(r.ListUnitFiles))/float64(Median(r.CompareListUnitFiles)))
	}
	p("leader fleetd memory", "VmRSS %.1f MB, VmHWM %.1f MB", float64(r.LeaderRSS)/1024, float64(r.LeaderHWM)/1024)
	p("idle fleetd memory", "VmRSS %.1f MB, VmHWM %.1f MB", float64(r.IdleRSS)/1024, float64(r.IdleHWM)/1024)
	agentsRSS := ""
	if r.ConsulAgents > 0 {
		agentsRSS = fmt.Sprintf(", client agents %.0f MB (%.0f MB each)", float64(r.AgentsRSS)/1024, float64(r.AgentsRSS)/1024/float64(r.ConsulAgents))
	}
	p("the rest's memory", "VmRSS: consul server %.0f MB%s, harness %.0f MB with %d goroutines and %d open files",
		float64(r.ConsulRSS)/1024, agentsRSS, float64(r.HarnessRSS)/1024, r.Goroutines, r.OpenFiles)
	p("CPU s during placement", "consul server %.2f, consul client agents %.2f, leader %.2f, idle fleetd %.2f, harness %.2f, fleetctl %.2f",
		r.CPU["consul"], r.CPU["agents"], r.CPU["leader"], r.CPU["idle"], r.CPU["harness"], r.SubmitCPU.Seconds())
	if w := r.BaselineWindow.Seconds(); w > 0 {
		p("CPU while idle", "consul server %.0f%%, consul client agents %.0f%%, leader %.0f%%, idle fleetd %.0f%%, harness %.0f%% of a core",
			100*r.IdleCPU["consul"]/w, 100*r.IdleCPU["agents"]/w, 100*r.IdleCPU["leader"]/w, 100*r.IdleCPU["idle"]/w, 100*r.IdleCPU["harness"]/w)
	}
	if n := r.Leader.Sum("fleet_leader_reconcile_duration_seconds_count"); n > 0 {
		calls := r.Leader.Sum("fleet_leader_policy_call_duration_seconds_count")
		p("leader passes", "%.0f passes, %.2f s in passes (%.0f ms each), %.0f policy calls (%.2f s, %.1f µs each), %.0f placements",
			n, r.Leader.Sum("fleet_leader_reconcile_duration_seconds_sum"),
			1000*r.Leader.Sum("fleet_leader_reconcile_duration_seconds_sum")/n,
			calls, r.Leader.Sum("fleet_leader_policy_call_duration_seconds_sum"),
			1e6*r.Leader.Sum("fleet_leader_policy_call_duration_seconds_sum")/max(calls, 1),
			r.Leader.Sum("fleet_leader_placements_total"))
	}
	lo, hi := r.Units, 0
	for _, n := range r.PerMachine {
		lo, hi = min(lo, n), max(hi, n)
	}
	p("units per machine", "%d to %d on %d machines", lo, hi, len(r.PerMachine))
}

// UnitCPU is process k's CPU ("consul", "agents", "leader", "harness")
// in milliseconds per unit, from the first submit until Consul settled,
// less what it used while idle over as long.
func (r *Result) UnitCPU(k string) float64 {
	idle := r.IdleCPU[k] / r.BaselineWindow.Seconds() * r.SettledWindow.Seconds()
	return 1000 * (r.SettledCPU[k] - idle) / float64(r.Units)
}

// LeaderReadBytes is the bytes the leading fleetd read from Consul per
// unit (fleet_consul_read_bytes_total) over Window, less what it read
// while idle over as long; false when its fleetd does not count them.
func (r *Result) LeaderReadBytes() (float64, bool) {
	const name = "fleet_consul_read_bytes_total"
	if _, ok := r.Leader[name]; !ok {
		return 0, false
	}
	idle := r.LeaderBaseline.Sum(name) / r.BaselineWindow.Seconds() * r.Window.Seconds()
	return (r.Leader.Sum(name) - idle) / float64(r.Units), true
}

func (r *Result) leaderReads() string {
	b, ok := r.LeaderReadBytes()
	if !ok {
		return "an uncounted number of bytes (its fleetd has no fleet_consul_read_bytes_total)"
	}
	if b >= 10000 {
		return fmt.Sprintf("%.1f kB", b/1000)
	}
	return fmt.Sprintf("%.0f bytes", b)
}

// seen says how the end of Elapsed was seen.
func (r *Result) seen() string {
	var writes []string
	for _, k := range Sorted(r.Seen) {
		if k != "read" && k != "unreadable" && k != "states" {
			writes = append(writes, fmt.Sprintf("%d %s", r.Seen[k], k))
		}
	}
	s := fmt.Sprintf("in this process, as each simulated machine's state write returned (%s, setting %d states), and by %d blocking reads of the real fleetds' own states/<id>/ (at most every %s)",
		strings.Join(writes, ", "), r.Seen["states"], r.Seen["read"], followPause)
	if n := r.Seen["unreadable"]; n > 0 {
		s += fmt.Sprintf("; %d states unreadable", n)
	}
	return s
}

// netRaft is r.Raft by kind, less what the idle cluster would have
// written over Window.
func (r *Result) netRaft() map[string]float64 {
	out := map[string]float64{}
	for k, v := range r.Raft {
		if k != "total" {
			out[k] = v
		}
	}
	for k := range r.Baseline {
		if kind := raftKind(k); kind != "" {
			out[kind] -= r.baseline(k)
		}
	}
	return out
}

// catalog is the raft entries that change only Consul's catalog (a
// Consul agent's sync, Catalog.Register and Deregister), less the idle
// cluster's; catalog changes made in a transaction are in its entry.
func (r *Result) catalog() float64 {
	var n float64
	for k, v := range r.netRaft() {
		if slices.Contains(catalogKinds, k) {
			n += v
		}
	}
	return n
}

// raftKinds is the raft entries per unit by kind, less the idle
// cluster's.
func (r *Result) raftKinds() string {
	var parts []string
	net := r.netRaft()
	for _, k := range sortedKeys(net) {
		if v := net[k] / float64(r.Units); v >= 0.005 || v <= -0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Result) httpWrites() float64 {
	var n float64
	for k, v := range r.netHTTP() {
		if !strings.HasPrefix(k, "GET ") {
			n += v
		}
	}
	return n
}

func (r *Result) httpKinds(methods ...string) string {
	var parts []string
	net := r.netHTTP()
	for _, k := range sortedKeys(net) {
		m, _, _ := strings.Cut(k, " ")
		if slices.Contains(methods, m) && net[k]/float64(r.Units) >= 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, net[k]/float64(r.Units)))
		}
	}
	return strings.Join(parts, ", ")
}

func countsLine(c map[string]float64, units float64) string {
	var parts []string
	for _, k := range sortedKeys(c) {
		if c[k]/units >= 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, c[k]/units))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func msList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.0f", float64(d.Microseconds())/1000))
	}
	return strings.Join(parts, ", ")
}
