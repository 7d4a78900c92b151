package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
)

// txn applies ops atomically. It returns false, with Consul's reasons, when
// the transaction was rolled back because a check failed.
func (r *Registry) txn(ctx context.Context, ops api.TxnOps) (bool, string, error) {
	ok, why, _, err := r.txnAt(ctx, ops)
	return ok, why, err
}

// txnAt is txn that also returns, by key, what Consul says of the keys the
// transaction set (their indexes; not their values).
//
// A write of units' jobs or bodies goes with its entry in the change log
// (logged); when the client may not write the log (an ACL policy from
// before it), the write goes again without it, and so do all after.
func (r *Registry) txnAt(ctx context.Context, ops api.TxnOps) (bool, string, map[string]*api.KVPair, error) {
	ops, entry := r.logged(ops)
	ok, resp, err := r.sendTxn(ctx, ops)
	if err != nil {
		return false, "", nil, fmt.Errorf("write to Consul: %w", err)
	}
	if entry >= 0 && !ok && deniedAt(resp, entry) {
		r.unlogged.Store(true)
		return r.txnAt(ctx, ops[:entry])
	}
	if ok {
		set := make(map[string]*api.KVPair, len(resp.Results))
		for _, res := range resp.Results {
			if res.KV != nil {
				set[res.KV.Key] = res.KV
			}
		}
		return true, "", set, nil
	}
	why, denied := rolledBack(resp)
	if denied != nil {
		return false, "", nil, fmt.Errorf("write to Consul: %w", denied)
	}
	return false, why, nil, nil
}

// deniedAt reports whether Consul refused operation i of a transaction
// by ACL.
func deniedAt(resp *api.TxnResponse, i int) bool {
	for _, e := range resp.Errors {
		if e.OpIndex == i && isPermissionDenied(e.What) {
			return true
		}
	}
	return false
}

// rolledBack is why Consul rolled a transaction back: its reasons, or a
// refusal by ACL, which is no conflict, and retrying cannot help.
func rolledBack(resp *api.TxnResponse) (why string, denied *PermissionError) {
	var whys []string
	for _, e := range resp.Errors {
		if isPermissionDenied(e.What) {
			return "", &PermissionError{What: e.What}
		}
		whys = append(whys, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
	}
	return strings.Join(whys, "; "), nil
}

func kv(verb api.KVOp, key string, value []byte, index uint64) *api.TxnOp {
	return &api.TxnOp{KV: &api.KVTxnOp{Verb: verb, Key: key, Value: value, Index: index}}
}

// objectOps write unit name's body and its job, if the job's ModifyIndex is
// still objectIndex (0: if there is none).
func (r *Registry) objectOps(name string, f *unitfile.File, desired DesiredState, objectIndex uint64) api.TxnOps {
	h := f.Hash()
	obj, _ := json.Marshal(jobObject{Name: name, Hash: h.String(), Desired: desired})
	return api.TxnOps{
		// The body goes in the same transaction as the job that points to
		// it, so no reader ever sees a job whose body is missing.
		kv(api.KVSet, r.unitKey(h), []byte(f.String()), 0),
		kv(api.KVCAS, r.jobKey(name), obj, objectIndex),
	}
}

// CreateJob stores a new unit in the given desired state. It fails with
// ErrExists if a unit of that name is already there.
func (r *Registry) CreateJob(ctx context.Context, name string, f *unitfile.File, desired DesiredState) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	ok, why, err := r.txn(ctx, r.objectOps(name, f, desired, 0))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s (%s)", ErrExists, name, why)
	}
	return nil
}

// NewJob is a unit to create.
type NewJob struct {
	Name    string
	Unit    *unitfile.File
	Desired DesiredState
}

// CreateJobs creates units as CreateJob does, many to a transaction (a body
// shared by several, a template's, is written once per transaction) and up
// to txnsAtOnce transactions at once. A transaction refused because one of
// its units already exists is retried unit by unit, and the first such unit
// is reported with ErrExists; the others are created.
func (r *Registry) CreateJobs(ctx context.Context, jobs []NewJob) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	batches := r.createBatches(jobs, r.writeOps())
	errs := atOnce(len(batches), txnsAtOnce, func(k int) error { return r.create(ctx, batches[k]) })
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrExists) {
			return err // Consul could not be written: the first such error
		}
	}
	for _, err := range errs {
		if err != nil {
			return err // the first unit that exists, in the order given
		}
	}
	return nil
}

// create applies one transaction of CreateJobs, cut smaller when the agent
// takes fewer operations (tooMany), or unit by unit when one exists.
func (r *Registry) create(ctx context.Context, b createBatch) error {
	ok, _, err := r.txn(ctx, b.ops)
	if r.tooMany(err, len(b.ops)+1) {
		for _, b := range r.createBatches(b.jobs, r.writeOps()) {
			if err := r.create(ctx, b); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil || ok {
		return err
	}
	var first error
	for _, j := range b.jobs {
		if err := r.CreateJob(ctx, j.Name, j.Unit, j.Desired); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// createBatch is one transaction of CreateJobs: its operations and the
// units they create.
type createBatch struct {
	ops  api.TxnOps
	jobs []NewJob
}

// createBatches packs jobs into transactions, in order, each of up to
// room operations and within Consul's bound on bytes.
func (r *Registry) createBatches(jobs []NewJob, room int) []createBatch {
	var out []createBatch
	for start := 0; start < len(jobs); {
		var ops api.TxnOps
		bodies := map[unitfile.Hash]bool{}
		size := 0
		end := start
		for ; end < len(jobs); end++ {
			j := jobs[end]
			h := j.Unit.Hash()
			// body and job; the body once per transaction
			jobOps := r.objectOps(j.Name, j.Unit, j.Desired, 0)
			b := len(jobOps[0].KV.Value)
			if bodies[h] {
				jobOps, b = jobOps[1:], 0
			}
			if len(ops) > 0 && (len(ops)+len(jobOps) > room || size+b > txnBytes) {
				break
			}
			bodies[h] = true
			size += b
			ops = append(ops, jobOps...)
		}
		out = append(out, createBatch{ops: ops, jobs: jobs[start:end]})
		start = end
	}
	return out
}

// ReplaceJob gives the existing unit j a new body, keeping its desired state.
// It fails if j changed since it was read.
func (r *Registry) ReplaceJob(ctx context.Context, j *Job, f *unitfile.File) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	ok, why, err := r.txn(ctx, r.objectOps(j.Name, f, j.Desired, j.objectIndex))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("unit %s changed while it was being replaced, try again (%s)", j.Name, why)
	}
	return nil
}

// SetDesired sets the desired state of an existing unit, or returns
// ErrNotFound. The job is read and written back with check-and-set, again
// if it changed in between.
func (r *Registry) SetDesired(ctx context.Context, name string, d DesiredState) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	for {
		p, _, err := r.c.KV().Get(r.jobKey(name), (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("read unit %s from Consul: %w", name, err)
		}
		var o jobObject
		if p == nil || json.Unmarshal(p.Value, &o) != nil {
			return fmt.Errorf("%w: %s", ErrNotFound, name)
		}
		if o.Desired == d {
			return nil
		}
		o.Desired = d
		b, _ := json.Marshal(o)
		ok, _, err := r.txn(ctx, api.TxnOps{kv(api.KVCAS, r.jobKey(name), b, p.ModifyIndex)})
		if err != nil || ok {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// SetDesiredAll sets the desired state of jobs, as they were read, to d:
// many to a transaction and several transactions at once (applyAll), each
// job written back with check-and-set. A job that changed since it was read
// is done again on its own (SetDesired), and ErrNotFound is its answer if it
// is gone. Jobs already in d are left alone.
func (r *Registry) SetDesiredAll(ctx context.Context, jobs []*Job, d DesiredState) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	var ws []Write
	for _, j := range jobs {
		if j.Desired == d {
			continue
		}
		obj, _ := json.Marshal(jobObject{Name: j.Name, Hash: j.Hash.String(), Desired: d})
		ws = append(ws, Write{Name: j.Name, ops: api.TxnOps{kv(api.KVCAS, r.jobKey(j.Name), obj, j.objectIndex)}})
	}
	why, _, err := r.applyAll(ctx, nil, ws, txnsAtOnce, nil)
	if err != nil {
		return err
	}
	for i, w := range why {
		if w != "" {
			if err := r.SetDesired(ctx, ws[i].Name, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// DestroyJobs is DestroyJob for many units, many to a transaction and
// several transactions at once.
func (r *Registry) DestroyJobs(ctx context.Context, names []string) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	ws := make([]Write, len(names))
	for i, n := range names {
		ws[i] = Write{Name: n, ops: api.TxnOps{kv(api.KVDelete, r.jobKey(n), nil, 0)}}
	}
	why, _, err := r.applyAll(ctx, nil, ws, txnsAtOnce, nil)
	if err != nil {
		return fmt.Errorf("destroy units in Consul: %w", err)
	}
	for i, w := range why {
		if w != "" {
			return fmt.Errorf("destroy unit %s in Consul: %s", names[i], w)
		}
	}
	return nil
}

// DestroyJob removes a unit's job. The leader then takes it off its machine
// and removes its placement; the machine sees the unit gone and unloads it.
// The body stays, as other units (instances of one template) may share it.
func (r *Registry) DestroyJob(ctx context.Context, name string) error {
	if err := r.mayWrite(ctx, true); err != nil {
		return err
	}
	ok, why, err := r.txn(ctx, api.TxnOps{kv(api.KVDelete, r.jobKey(name), nil, 0)})
	switch {
	case err != nil:
		return fmt.Errorf("destroy unit %s in Consul: %w", name, err)
	case !ok:
		return fmt.Errorf("destroy unit %s in Consul: %s", name, why)
	}
	return nil
}

// Schedule places unit j on machine (ScheduleWrite) on its own, if the
// unit is unscheduled and session still holds the leader lock. It returns
// ErrNotLeader when the lock is lost; false when the unit was destroyed or
// scheduled meanwhile.
func (r *Registry) Schedule(ctx context.Context, j *Job, machine, session string) (bool, error) {
	return r.fenced(ctx, session, r.ScheduleWrite(j, machine, Entry{Hash: j.Hash.String(), Desired: j.Desired}).ops...)
}

// Unschedule takes unit j off its machine (UnscheduleWrite) on its own, if
// the schedule is still the one read and session still holds the leader
// lock.
func (r *Registry) Unschedule(ctx context.Context, j *Job, session string) (bool, error) {
	return r.fenced(ctx, session, r.UnscheduleWrite(j, "").ops...)
}

// fenced applies ops only if session holds the leader lock, so a deposed
// leader can never write a schedule.
func (r *Registry) fenced(ctx context.Context, session string, ops ...*api.TxnOp) (bool, error) {
	check := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: r.LeaderKey(), Session: session}}
	ok, why, err := r.txn(ctx, append(api.TxnOps{check}, ops...))
	if err != nil {
		return false, err
	}
	if !ok && strings.HasPrefix(why, "op 0:") {
		return false, ErrNotLeader
	}
	return ok, nil
}

// AcquireLeader tries to take the leader lock for session. The lock's value
// names the leading machine.
func (r *Registry) AcquireLeader(ctx context.Context, session, machineID string) (bool, error) {
	ok, _, err := r.c.KV().Acquire(&api.KVPair{Key: r.LeaderKey(), Value: []byte(machineID), Session: session},
		(&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("acquire leader lock: %w", err)
	}
	return ok, nil
}

// ReleaseLeader gives the leader lock up so another machine can take it at once.
func (r *Registry) ReleaseLeader(ctx context.Context, session string) error {
	_, _, err := r.c.KV().Release(&api.KVPair{Key: r.LeaderKey(), Session: session}, (&api.WriteOptions{}).WithContext(ctx))
	return err
}

// Leader returns the machine ID holding the leader lock, and the lock key's
// ModifyIndex for a blocking wait; "" when nobody holds it.
func (r *Registry) Leader(ctx context.Context, waitIndex uint64) (string, uint64, error) {
	p, meta, err := r.c.KV().Get(r.LeaderKey(), (&api.QueryOptions{WaitIndex: waitIndex}).WithContext(ctx))
	if err != nil {
		return "", 0, fmt.Errorf("read leader lock: %w", err)
	}
	if p == nil || p.Session == "" {
		return "", meta.LastIndex, nil
	}
	return string(p.Value), meta.LastIndex, nil
}

// PublishMachine writes m, with the schema version this build knows, held
// by session so it vanishes when the session dies. It fails if another
// live session holds the key: two machines with one ID.
func (r *Registry) PublishMachine(ctx context.Context, m *Machine, session string) error {
	published := *m
	published.Schema = SchemaVersion
	b, _ := json.Marshal(&published)
	ok, _, err := r.c.KV().Acquire(&api.KVPair{Key: r.machineKey(m.ID), Value: b, Session: session},
		(&api.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("publish machine %s: %w", m.ID, err)
	}
	if !ok {
		return r.held(ctx, r.machineKey(m.ID), fmt.Sprintf("publish machine %s: another live fleetd holds this machine ID; give each machine its own /etc/machine-id or --machine-id", m.ID))
	}
	return nil
}

// HeldError is an acquire refused because another session holds the key.
type HeldError struct {
	Key    string
	Holder string // the session holding Key, "" if it could not be read
	msg    string
}

func (e *HeldError) Error() string { return e.msg }

// held reads who holds key, for a HeldError with message msg.
func (r *Registry) held(ctx context.Context, key, msg string) error {
	e := &HeldError{Key: key, msg: msg}
	if p, _, err := r.c.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx)); err == nil && p != nil {
		e.Holder = p.Session
	}
	return e
}

// Write is one change to fleet's state, applied whole or not at all: the
// leader's (WriteAll packs many into few transactions) or a machine's
// report of a unit (Publish).
type Write struct {
	Name    string // the unit it concerns, for logs
	ops     api.TxnOps
	machine string // the machine whose schedule it changes, if any
}

// ScheduleWrite places unit j on machine, if j still exists and its
// placement is still the one read (nobody placed it meanwhile), and adds it
// to the machine's schedule with entry e. A unit read on a machine is being
// moved: the UnscheduleWrite before this one in the same WriteAll removed
// its placement, which must then be absent.
func (r *Registry) ScheduleWrite(j *Job, machine string, e Entry) Write {
	index := j.placementIndex
	if j.Target != "" {
		index = 0
	}
	return Write{Name: j.Name, machine: machine, ops: api.TxnOps{
		kv(api.KVGet, r.jobKey(j.Name), nil, 0), // fails the transaction if the unit is gone
		r.placementOp(j, index, placement{Machine: machine}),
		r.entryOp(machine, j.Name, &e),
	}}
}

// UnscheduleWrite takes unit j off its machine, if its placement is still
// the one read, and off that machine's schedule. A reason other than ""
// records why the unit is now unplaced.
func (r *Registry) UnscheduleWrite(j *Job, reason string) Write {
	return Write{Name: j.Name, machine: j.Target, ops: api.TxnOps{
		r.placementOp(j, j.placementIndex, placement{Unplaced: reason}),
		r.entryOp(j.Target, j.Name, nil),
	}}
}

// placementOp sets unit j's placement to p, or removes it when p is empty,
// if the placement's ModifyIndex is still index (0: if there is none).
func (r *Registry) placementOp(j *Job, index uint64, p placement) *api.TxnOp {
	if p.Machine == "" && p.Unplaced == "" {
		if index == 0 {
			// Nothing to remove; fail if a placement appeared meanwhile.
			return kv(api.KVCheckNotExists, r.placementKey(j.Name), nil, 0)
		}
		return kv(api.KVDeleteCAS, r.placementKey(j.Name), nil, index)
	}
	p.Job = j.created
	b, _ := json.Marshal(p)
	return kv(api.KVCAS, r.placementKey(j.Name), b, index)
}

// OrphanWrite removes the placement of unit name, which no longer exists,
// if it is still the one read (index: its ModifyIndex). Should the unit
// have been submitted again meanwhile, the placement removed was the
// earlier unit's all the same. (It does not check that the job is absent:
// Consul asks key:write of a check-not-exists, and the leader may only read
// jobs.)
func (r *Registry) OrphanWrite(name string, index uint64) Write {
	return Write{Name: name, ops: api.TxnOps{kv(api.KVDeleteCAS, r.placementKey(name), nil, index)}}
}

// KeepWrite writes machine's schedule directory key (schedule/<machine>/),
// or with keep false removes it, and with it the machine's node in Consul's
// catalog, where its units were shown (CatalogNode): the machine left. The
// key gives the agent's blocking query on its schedule an index of its own
// even while the schedule is empty (keepDir says why).
func (r *Registry) KeepWrite(machine string, keep bool) Write {
	if keep {
		return Write{Name: "schedule of " + machine, machine: machine, ops: api.TxnOps{kv(api.KVSet, r.scheduleKey(machine, ""), nil, 0)}}
	}
	return Write{Name: "schedule of " + machine, machine: machine, ops: api.TxnOps{kv(api.KVDelete, r.scheduleKey(machine, ""), nil, 0), NodeDeleteOp(machine)}}
}

// EntryWrite sets unit name's entry in machine's schedule; nil removes it.
func (r *Registry) EntryWrite(machine, name string, e *Entry) Write {
	return Write{Name: name, machine: machine, ops: api.TxnOps{r.entryOp(machine, name, e)}}
}

func (r *Registry) entryOp(machine, name string, e *Entry) *api.TxnOp {
	if e == nil {
		return kv(api.KVDelete, r.scheduleKey(machine, name), nil, 0)
	}
	b, _ := json.Marshal(e)
	return kv(api.KVSet, r.scheduleKey(machine, name), b, 0)
}

// UnplacedWrite records why the leader cannot place unit j, which is on no
// machine ("" clears it), if j still exists and its placement is the one
// read. It also replaces or removes a placement an earlier unit of the name
// left.
func (r *Registry) UnplacedWrite(j *Job, reason string) Write {
	return Write{Name: j.Name, ops: api.TxnOps{
		kv(api.KVGet, r.jobKey(j.Name), nil, 0), // fails the transaction if the unit is gone
		r.placementOp(j, j.placementIndex, placement{Unplaced: reason}),
	}}
}

// Stale reports whether j's placement key was left by an earlier unit of
// its name: UnplacedWrite replaces it.
func (j *Job) Stale() bool { return j.stale }

// txnBytes bounds the unit bodies in one transaction, under Consul's
// default txn_max_req_len of 512 KiB.
const txnBytes = 384 << 10

// WriteAll applies ws, each fenced on session holding the leader lock, in as
// few transactions as Consul allows. A transaction that fails because one
// write's unit changed since it was read is retried write by write, so only
// that write fails. It reports which writes applied, and ErrNotLeader as
// soon as the lock is found lost.
func (r *Registry) WriteAll(ctx context.Context, session string, ws []Write) ([]bool, error) {
	done, _, err := r.writeAll(ctx, session, ws)
	return done, err
}

// writeAll is WriteAll that also returns what Consul says of the keys set
// (txnAt).
func (r *Registry) writeAll(ctx context.Context, session string, ws []Write) ([]bool, map[string]*api.KVPair, error) {
	check := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: r.LeaderKey(), Session: session}}
	why, set, err := r.applyAll(ctx, api.TxnOps{check}, ws, txnsAtOnce, func(why string) error {
		if strings.HasPrefix(why, "op 0:") {
			return ErrNotLeader
		}
		return nil
	})
	done := make([]bool, len(ws))
	for i := range why {
		done[i] = why[i] == ""
	}
	return done, set, err
}

// applyAll applies ws in as few transactions as Consul takes, each
// beginning with head and holding whole writes, up to inFlight of them at
// once; a write that follows another of the same name (a unit unscheduled,
// then scheduled) waits for it. A transaction that fails is retried write by
// write, so only the writes that fail fail. It returns for each write ""
// when it applied, else Consul's reasons, and what Consul said of the keys
// the writes that applied set (txnAt); it stops with an error when Consul
// cannot be written (unreachable, a refusal) or when stop (if not nil)
// makes one of a failed transaction's reasons.
func (r *Registry) applyAll(ctx context.Context, head api.TxnOps, ws []Write, inFlight int, stop func(why string) error) ([]string, map[string]*api.KVPair, error) {
	a := &applying{r: r, head: head, ws: ws, stop: stop, why: make([]string, len(ws)), set: map[string]*api.KVPair{}}
	for i := range a.why {
		a.why[i] = "not written"
	}
	for _, wave := range waves(ws) {
		chunks, err := a.chunks(wave)
		if err != nil {
			return a.why, a.set, err
		}
		for _, err := range atOnce(len(chunks), inFlight, func(k int) error { return a.apply(ctx, chunks[k]) }) {
			if err != nil {
				return a.why, a.set, err // the first: the others are most likely the same
			}
		}
	}
	return a.why, a.set, nil
}

// txnsAtOnce is how many transactions applyAll has in flight. Consul's raft
// leader appends the transactions that arrive together to its log in one
// go, so a few at once cost little more than one, where one after the other
// each waits for the one before.
const txnsAtOnce = 8

// atOnce runs f for 0 to n-1, up to inFlight at a time (in order when 1),
// and returns what each returned.
func atOnce(n, inFlight int, f func(k int) error) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for k := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[k] = f(k)
		}()
	}
	wg.Wait()
	return errs
}

// waves groups the writes of ws (their indexes, in order) so that a write
// comes in a later wave than every earlier write of the same name.
func waves(ws []Write) [][]int {
	var out [][]int
	seen := map[string]int{}
	for i, w := range ws {
		k := seen[w.Name]
		seen[w.Name] = k + 1
		for len(out) <= k {
			out = append(out, nil)
		}
		out[k] = append(out[k], i)
	}
	return out
}

// applying is one applyAll.
type applying struct {
	r    *Registry
	head api.TxnOps
	ws   []Write
	stop func(string) error

	mu  sync.Mutex
	why []string
	set map[string]*api.KVPair
}

// chunks packs the writes of one wave into transactions. The writes to
// one machine's schedule go together, in as few transactions as they fit:
// a machine then learns of the units a pass gives it in one answer to its
// blocking query, and reports their states in one transaction, where units
// in the order they were decided, spread over the machines, would reach
// each machine one transaction at a time. The machines take turns, a
// transaction's worth each, so that a few machines given many units all
// start on theirs at once.
func (a *applying) chunks(wave []int) ([][]int, error) {
	room := a.room()
	var machines []string
	byMachine := map[string][]int{}
	for _, i := range wave {
		m := a.ws[i].machine
		if _, ok := byMachine[m]; !ok {
			machines = append(machines, m)
		}
		byMachine[m] = append(byMachine[m], i)
	}
	pieces := make([][][]int, len(machines)) // each machine's writes, a transaction's worth at a time
	for k, m := range machines {
		var err error
		if pieces[k], err = a.fill(byMachine[m], room); err != nil {
			return nil, err
		}
	}
	var out [][]int
	var cur []int
	n := 0
	for turn := 0; ; turn++ {
		more := false
		for _, ps := range pieces {
			if turn >= len(ps) {
				continue
			}
			more = true
			size := a.ops(ps[turn])
			if n+size > room {
				out, cur, n = append(out, cur), nil, 0
			}
			cur, n = append(cur, ps[turn]...), n+size
		}
		if !more {
			break
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// fill cuts writes into runs that each fit in room operations: the most
// that fit in each, in order.
func (a *applying) fill(writes []int, room int) ([][]int, error) {
	var out [][]int
	for start := 0; start < len(writes); {
		end, n := start, 0
		for end < len(writes) && n+len(a.ws[writes[end]].ops) <= room {
			n += len(a.ws[writes[end]].ops)
			end++
		}
		if end == start {
			w := a.ws[writes[start]]
			return nil, fmt.Errorf("write for %s has %d operations; a transaction takes %d", w.Name, len(w.ops), room)
		}
		out, start = append(out, writes[start:end]), end
	}
	return out, nil
}

// ops counts the operations of writes.
func (a *applying) ops(writes []int) int {
	n := 0
	for _, i := range writes {
		n += len(a.ws[i].ops)
	}
	return n
}

// room is how many operations a transaction carries besides head.
func (a *applying) room() int { return a.r.writeOps() - len(a.head) }

// apply applies the writes of one chunk in one transaction, or when it
// fails, each in one of its own; when the agent takes fewer operations
// than the chunk has (tooMany), in pieces it takes.
func (a *applying) apply(ctx context.Context, chunk []int) error {
	ok, reason, err := a.txn(ctx, chunk)
	switch {
	case a.r.tooMany(err, len(a.head)+a.ops(chunk)+1):
		pieces, err := a.fill(chunk, a.room())
		if err != nil {
			return err
		}
		for _, p := range pieces {
			if err := a.apply(ctx, p); err != nil {
				return err
			}
		}
		return nil
	case err != nil:
		return err
	case ok:
		return nil
	case len(chunk) == 1:
		a.mu.Lock()
		a.why[chunk[0]] = reason
		a.mu.Unlock()
		return nil
	}
	for _, i := range chunk {
		ok, reason, err := a.txn(ctx, []int{i})
		if err != nil {
			return err
		}
		if !ok {
			a.mu.Lock()
			a.why[i] = reason
			a.mu.Unlock()
		}
	}
	return nil
}

// txn applies the writes of chunk in one transaction, and records them as
// applied when it did.
func (a *applying) txn(ctx context.Context, chunk []int) (bool, string, error) {
	ops := append(api.TxnOps{}, a.head...)
	for _, i := range chunk {
		ops = append(ops, a.ws[i].ops...)
	}
	ok, reason, set, err := a.r.txnAt(ctx, ops)
	if err == nil && !ok && a.stop != nil {
		err = a.stop(reason)
	}
	if err != nil || !ok {
		return false, reason, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, i := range chunk {
		a.why[i] = ""
	}
	for k, p := range set {
		a.set[k] = p
	}
	return true, "", nil
}

// StateWrite publishes unit st's state, held by the machine's session
// (Consul deletes it with the session), and with it ops: what else goes
// with that state, all or none (the unit's entry in Consul's catalog).
func (r *Registry) StateWrite(st *UnitState, session string, ops ...*api.TxnOp) Write {
	b, _ := json.Marshal(st)
	lock := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: r.stateKey(st.Name, st.Machine), Value: b, Session: session}}
	return Write{Name: st.Name, ops: append(api.TxnOps{lock}, ops...)}
}

// StateDeleteWrite removes what machine reported for unit name, and with it
// ops.
func (r *Registry) StateDeleteWrite(name, machine string, ops ...*api.TxnOp) Write {
	return Write{Name: name, ops: append(api.TxnOps{kv(api.KVDelete, r.stateKey(name, machine), nil, 0)}, ops...)}
}

// Publish applies a machine's writes (StateWrite, StateDeleteWrite) in as
// few transactions as Consul takes, each write whole. It returns for each
// write nil or why it failed: a *HeldError when another session holds the
// state's key (Heartbeat.ForgetStale). The error is a failed write to
// Consul, which failed them all.
func (r *Registry) Publish(ctx context.Context, ws []Write) ([]error, error) {
	// One transaction after the other, in order: a write may need what an
	// earlier one creates (the machine's catalog node, a service its units'
	// checks belong to).
	why, _, err := r.applyAll(ctx, nil, ws, 1, nil)
	errs := make([]error, len(ws))
	for i, w := range ws {
		if why[i] == "" || err != nil {
			continue
		}
		errs[i] = fmt.Errorf("publish %s: %s", w.Name, why[i])
		if lock := w.ops[0].KV; lock != nil && lock.Verb == api.KVLock {
			errs[i] = r.held(ctx, lock.Key, fmt.Sprintf("publish state of %s: key held by another session", w.Name))
		}
	}
	return errs, err
}
