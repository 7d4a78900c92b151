package scale

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing/iotest"
	"time"

	"github.com/wasmfleet/fleet/internal/registry"
)

// StateLog follows the unit states the simulated machines write, in this
// process, from their requests to Consul as they return: Run learns that
// every unit is acknowledged without reading states/, which at 10,000
// units and more is a read that loads the Consul being measured.
//
// A state is keyed by its Consul key, states/<machine>/<unit>, or by its
// machine key, states/<machine>/, and is acknowledged when the latest write
// of that key says launched and active.
// Both forms an agent writes a state in are read: a KV PUT of the state
// (with ?acquire=<session>), counted when Consul answers true, and a
// transaction (PUT /v1/txn) whose KV operations set, lock, cas or unlock the
// state's key, or delete it, counted when Consul answers 200 (a transaction
// applies all or nothing). A KV DELETE of the key, or of its tree, removes
// the state.
type StateLog struct {
	prefix string // the fleet prefix's states/: "fleet/states/"

	mu sync.Mutex
	// latest holds, by machine (so that a write of one machine's states
	// costs what that machine holds), its keys (machine/unit,
	// machine//unit) and whether their latest write says launched and
	// active.
	latest     map[string]map[string]bool
	acked      map[string]int // unit: machines whose latest write says so
	counts     map[string]int64
	unreadable int64 // state writes whose body could not be decoded
	waits      []*Await
}

// NewStateLog returns an empty log of the states under prefix (fleet's key
// prefix, such as registry.DefaultPrefix).
func NewStateLog(prefix string) *StateLog {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &StateLog{prefix: prefix + "states/", latest: map[string]map[string]bool{}, acked: map[string]int{}, counts: map[string]int64{}}
}

// Counts is how many state writes the log saw, by form ("PUT kv", "PUT
// txn", "DELETE kv", and "read" for states learnt by Run's reads of the
// real fleetds' states), "states" for the unit states those writes set (a
// transaction carries many), and "unreadable" for writes to states/ whose
// body could not be decoded (such a state is not counted as acknowledged).
func (l *StateLog) Counts() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.counts)+1)
	for k, v := range l.counts {
		out[k] = v
	}
	if l.unreadable > 0 {
		out["unreadable"] = l.unreadable
	}
	return out
}

// Await is a wait for a set of units to be acknowledged.
type Await struct {
	log     *StateLog
	want    map[string]bool
	missing int
	done    chan struct{}
	at      time.Time
}

// Await returns a wait that ends when each of units has a machine whose
// latest write of its state says launched and active. Writes seen before
// the call count.
func (l *StateLog) Await(units []string) *Await {
	w := &Await{log: l, want: make(map[string]bool, len(units)), done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, u := range units {
		if !w.want[u] {
			w.want[u] = true
			if l.acked[u] == 0 {
				w.missing++
			}
		}
	}
	if w.missing == 0 {
		w.at = time.Now()
		close(w.done)
		return w
	}
	l.waits = append(l.waits, w)
	return w
}

// Done is closed when every unit is acknowledged.
func (w *Await) Done() <-chan struct{} { return w.done }

// At is when the write that acknowledged the last unit returned; zero
// before Done is closed.
func (w *Await) At() time.Time {
	select {
	case <-w.done:
		return w.at
	default:
		return time.Time{}
	}
}

// Missing is how many of the units are not acknowledged yet.
func (w *Await) Missing() int {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	return w.missing
}

// set records that the latest write of key (machine/unit, or
// machine//unit for a unit in its machine key) says acked, or,
// with gone, that the key was deleted; l.mu is held.
func (l *StateLog) set(key string, acked, gone bool, now time.Time) {
	unit := key[strings.LastIndexByte(key, '/')+1:]
	machine, _, _ := strings.Cut(key, "/")
	was := l.latest[machine][key]
	if gone {
		delete(l.latest[machine], key)
		acked = false
	} else {
		if l.latest[machine] == nil {
			l.latest[machine] = map[string]bool{}
		}
		l.latest[machine][key] = acked
	}
	if was == acked {
		return
	}
	d := 1
	if !acked {
		d = -1
	}
	before := l.acked[unit]
	l.acked[unit] += d
	if l.acked[unit] == 0 {
		delete(l.acked, unit)
	}
	if (before == 0) == (l.acked[unit] == 0) {
		return // another machine's copy still (or already) counts
	}
	kept := l.waits[:0]
	for _, w := range l.waits {
		if w.want[unit] {
			w.missing -= d
		}
		if w.missing == 0 {
			w.at = now
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	l.waits = kept
}

// observe records a read's answer: machine's states as read (unit: its
// state's value), every other state of machine being gone.
func (l *StateLog) observe(machine string, states map[string][]byte, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts["read"]++
	for key := range l.latest[machine] {
		if _, ok := states[strings.TrimPrefix(key, machine+"/")]; ok {
			continue
		}
		l.set(key, false, true, now)
	}
	for u, v := range states {
		l.setValue(machine+"/"+u, v, now)
	}
}

// setValue records that the latest write of key says value, a unit's
// state; l.mu is held.
func (l *StateLog) setValue(key string, value []byte, now time.Time) {
	acked, ok := launchedActive(value)
	if !ok {
		l.unreadable++
	}
	l.set(key, acked, false, now)
}

// machineOf is the machine whose machine key key is (<machine>/), if it
// is one.
func machineOf(key string) (string, bool) {
	machine, ok := strings.CutSuffix(key, "/")
	return machine, ok && !strings.Contains(machine, "/")
}

// launchedActive decodes a state's value: whether it says launched and
// active, and whether it could be decoded at all.
func launchedActive(value []byte) (acked, ok bool) {
	var st registry.UnitState
	if json.Unmarshal(value, &st) != nil {
		return false, false
	}
	return st.State == registry.Launched && st.Active == "active", true
}

// stateWrite is what one request would change in states/: keys set (key:
// value), deleted, or deleted as trees.
type stateWrite struct {
	form    string // "PUT kv", "DELETE kv", "PUT txn"
	set     map[string][]byte
	deleted []string
	trees   []string
}

// parse returns what r would write to states/, or nil; body is r's body
// (nil when it has none).
func (l *StateLog) parse(r *http.Request, body []byte) *stateWrite {
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/v1/txn":
		var ops []struct {
			KV *struct {
				Verb  string
				Key   string
				Value []byte
			}
		}
		if json.Unmarshal(body, &ops) != nil {
			return nil
		}
		var w *stateWrite
		for _, op := range ops {
			if op.KV == nil || !strings.HasPrefix(op.KV.Key, l.prefix) {
				continue
			}
			if w == nil {
				w = &stateWrite{form: "PUT txn", set: map[string][]byte{}}
			}
			key := strings.TrimPrefix(op.KV.Key, l.prefix)
			switch op.KV.Verb {
			case "set", "cas", "lock", "unlock":
				w.set[key] = op.KV.Value
			case "delete", "delete-cas":
				w.deleted = append(w.deleted, key)
			case "delete-tree":
				w.trees = append(w.trees, key)
			}
		}
		return w
	case strings.HasPrefix(r.URL.Path, "/v1/kv/"+l.prefix):
		key := strings.TrimPrefix(r.URL.Path, "/v1/kv/"+l.prefix)
		switch {
		case r.Method == http.MethodPut:
			return &stateWrite{form: "PUT kv", set: map[string][]byte{key: body}}
		case r.Method == http.MethodDelete && r.URL.Query().Has("recurse"):
			return &stateWrite{form: "DELETE kv", trees: []string{key}}
		case r.Method == http.MethodDelete:
			return &stateWrite{form: "DELETE kv", deleted: []string{key}}
		}
	}
	return nil
}

// apply records w, which Consul applied, at now. A machine key
// (<machine>/, registry.MachineStatesWrite) sets its units' states, under
// keys of their own (<machine>//<unit>) so that a unit moving between its
// key and the machine's is never taken for gone, and removes those of
// units it no longer holds.
func (l *StateLog) apply(w *stateWrite, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[w.form]++
	for _, tree := range w.trees {
		for _, keys := range l.latest {
			for key := range keys {
				if strings.HasPrefix(key, tree) {
					l.set(key, false, true, now)
				}
			}
		}
	}
	for _, key := range w.deleted {
		if machine, ok := machineOf(key); ok {
			l.machineKey(machine, nil, now)
		} else if strings.Count(key, "/") == 1 {
			l.set(key, false, true, now)
		}
	}
	for key, v := range w.set {
		if machine, ok := machineOf(key); ok {
			var units map[string]json.RawMessage
			if json.Unmarshal(v, &units) != nil {
				l.unreadable++
			}
			l.machineKey(machine, units, now)
			continue
		}
		if strings.Count(key, "/") != 1 {
			continue // not states/<machine>/<unit>
		}
		l.counts["states"]++
		l.setValue(key, v, now)
	}
}

// machineKey records that machine's key holds units (unit: its state's
// value), and no others; l.mu is held.
func (l *StateLog) machineKey(machine string, units map[string]json.RawMessage, now time.Time) {
	in := machine + "//"
	for key := range l.latest[machine] {
		if u, ok := strings.CutPrefix(key, in); ok && units[u] == nil {
			l.set(key, false, true, now)
		}
	}
	for u, v := range units {
		l.counts["states"]++
		l.setValue(in+u, v, now)
	}
}

// roundTrip sends r with next and records the state it writes once Consul
// says it applied it. It reads r's body from a copy (GetBody) or, without
// one, sends a copy of r with the body buffered; it reads the answer of a
// KV write, which is "true" or "false", and gives the caller the same bytes.
func (l *StateLog) roundTrip(next http.RoundTripper, r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, "/v1/txn") && !strings.HasPrefix(r.URL.Path, "/v1/kv/"+l.prefix) {
		return next.RoundTrip(r)
	}
	body, r, err := requestBody(r)
	if err != nil {
		return nil, err
	}
	w := l.parse(r, body)
	resp, err := next.RoundTrip(r)
	if err != nil || w == nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	if w.form == "PUT txn" || w.form == "DELETE kv" {
		l.apply(w, time.Now())
		return resp, nil
	}
	answer, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if rerr != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(answer), iotest.ErrReader(rerr)))
		return resp, nil
	}
	if bytes.Equal(bytes.TrimSpace(answer), []byte("true")) {
		l.apply(w, time.Now())
	}
	return resp, nil
}

// requestBody returns r's body and the request to send: r itself when its
// body can be had again (GetBody, as http.NewRequest sets for the api
// client's bodies), else a copy of r carrying the buffered body.
func requestBody(r *http.Request) ([]byte, *http.Request, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, r, nil
	}
	if r.GetBody != nil {
		rc, err := r.GetBody()
		if err != nil {
			r.Body.Close()
			return nil, nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			r.Body.Close()
			return nil, nil, err
		}
		return b, r, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(b))
	c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	c.ContentLength = int64(len(b))
	return b, c, nil
}
