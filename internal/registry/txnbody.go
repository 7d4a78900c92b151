package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"

	"github.com/hashicorp/consul/api"
)

// The Consul API client encodes every field of a transaction's
// operations, set or not: a unit's check alone is 650 bytes of JSON, half
// of them empty fields and a check definition of fifteen more, which the
// Consul agent that takes the transaction decodes field by field (and
// parses the definition's three durations). Every machine's report of its
// units' states carries a check for each unit, so a transaction's body is
// written here with the fields that are set; bodyTransport sends it in
// place of the API client's, which then encodes an empty list. A field
// left out decodes, in Consul, to the zero value the API client would have
// sent, so Consul applies the same operations.
//
// Consul's answer holds what it stored for each operation: for a check,
// the whole check again, definition and all. fleet reads only the keys'
// results and the errors, so the answer is read here too (decodeTxnAnswer)
// rather than by the API client's reflection: with the API client's full
// body, which is no longer encoded, that cut what a machine's reports cost
// its fleetd by a fifth (BenchmarkPublish).

// txnCall is what bodyTransport exchanges with a transaction that fleet's
// client sends: the compact body it sends in place of the API client's,
// and the answer's body it sets aside for decodeTxnAnswer.
type txnCall struct {
	body     []byte // nil: the API client's body goes
	answer   [][]byte
	answered bool // false: the API client decoded the answer
}

type txnCallKey struct{}

// sendTxn sends ops as one transaction: ok when Consul applied them, else
// resp says why. On a client NewClientWith made, ops go in the compact
// body when their fields fit it (the API client then encodes none) and the
// answer is read by decodeTxnAnswer; on any other client the API client
// writes and reads both.
func (r *Registry) sendTxn(ctx context.Context, ops api.TxnOps) (ok bool, resp *api.TxnResponse, err error) {
	q := &api.QueryOptions{}
	if _, ours := transports.Load(r.c); !ours {
		ok, resp, _, err = r.c.Txn().Txn(ops, q.WithContext(ctx))
		return ok, resp, err
	}
	call := &txnCall{}
	sent := ops
	if b, fits := compactBody(ops); fits {
		call.body, sent = b, api.TxnOps{}
	}
	ok, resp, _, err = r.c.Txn().Txn(sent, q.WithContext(context.WithValue(ctx, txnCallKey{}, call)))
	if err != nil || !call.answered {
		return ok, resp, err
	}
	resp, err = decodeTxnAnswer(call.answer)
	return ok, resp, err
}

// compactBody is the compact body of ops, or false when an operation has
// a field it does not carry.
func compactBody(ops api.TxnOps) ([]byte, bool) {
	out := make([]txnOpJSON, len(ops))
	for i, op := range ops {
		o, ok := compactOp(op)
		if !ok {
			return nil, false
		}
		out[i] = o
	}
	b, err := json.Marshal(out)
	return b, err == nil
}

// withBody is r with body b, which can be had again (GetBody).
func withBody(r *http.Request, b []byte) *http.Request {
	if r.Body != nil {
		r.Body.Close() // the API client's, not sent
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return r
}

// txnOpJSON is api.TxnOp without the kinds it does not hold.
type txnOpJSON struct {
	KV      *kvOpJSON         `json:",omitempty"`
	Node    *api.NodeTxnOp    `json:",omitempty"`
	Service *api.ServiceTxnOp `json:",omitempty"`
	Check   *checkOpJSON      `json:",omitempty"`
}

// kvOpJSON is api.KVTxnOp with only its set fields; the value always goes
// (null or not), as the API client sends it.
type kvOpJSON struct {
	Verb      api.KVOp
	Key       string
	Value     []byte
	Flags     uint64 `json:",omitempty"`
	Index     uint64 `json:",omitempty"`
	Session   string `json:",omitempty"`
	Namespace string `json:",omitempty"`
	Partition string `json:",omitempty"`
}

type checkOpJSON struct {
	Verb  api.CheckOp
	Check checkJSON
}

// checkJSON is the part of api.HealthCheck fleet writes, each field only
// when set.
type checkJSON struct {
	Node        string   `json:",omitempty"`
	CheckID     string   `json:",omitempty"`
	Name        string   `json:",omitempty"`
	Status      string   `json:",omitempty"`
	Notes       string   `json:",omitempty"`
	Output      string   `json:",omitempty"`
	ServiceID   string   `json:",omitempty"`
	ServiceName string   `json:",omitempty"`
	ServiceTags []string `json:",omitempty"`
	Type        string   `json:",omitempty"`
	Namespace   string   `json:",omitempty"`
	Partition   string   `json:",omitempty"`
	ModifyIndex uint64   `json:",omitempty"`
}

// compactOp is op in its compact form, or false when op sets a field the
// compact form does not carry, or is not one operation of one kind.
func compactOp(op *api.TxnOp) (txnOpJSON, bool) {
	var o txnOpJSON
	switch {
	case op == nil || kinds(op) != 1:
		return o, false
	case op.KV != nil:
		k := op.KV
		o.KV = &kvOpJSON{Verb: k.Verb, Key: k.Key, Value: k.Value, Flags: k.Flags, Index: k.Index,
			Session: k.Session, Namespace: k.Namespace, Partition: k.Partition}
	case op.Check != nil:
		c := op.Check.Check
		if c.ExposedPort != 0 || c.CreateIndex != 0 || !reflect.ValueOf(c.Definition).IsZero() || c.ServiceTags != nil && len(c.ServiceTags) == 0 {
			return o, false
		}
		o.Check = &checkOpJSON{Verb: op.Check.Verb, Check: checkJSON{Node: c.Node, CheckID: c.CheckID, Name: c.Name,
			Status: c.Status, Notes: c.Notes, Output: c.Output, ServiceID: c.ServiceID, ServiceName: c.ServiceName,
			ServiceTags: c.ServiceTags, Type: c.Type, Namespace: c.Namespace, Partition: c.Partition, ModifyIndex: c.ModifyIndex}}
	case op.Node != nil:
		o.Node = op.Node
	case op.Service != nil:
		o.Service = op.Service
	default:
		return o, false
	}
	return o, true
}

// kinds is how many kinds of operation op holds: one, for any op the
// API client would send as Consul takes it.
func kinds(op *api.TxnOp) int {
	n := 0
	for _, set := range []bool{op.KV != nil, op.Node != nil, op.Service != nil, op.Check != nil} {
		if set {
			n++
		}
	}
	return n
}

// decodeTxnAnswer decodes Consul's answer to a transaction (TxnResponse):
// its keys' results and its errors, which are all fleet reads of it. A
// result of another kind (a node, a service, a check) is read past and
// left empty. An answer it does not read goes to encoding/json whole.
func decodeTxnAnswer(body [][]byte) (*api.TxnResponse, error) {
	var b []byte
	if len(body) == 1 {
		b = body[0] // an answer of a size told, as Consul's are
	} else {
		b = bytes.Join(body, nil)
	}
	if resp, ok := scanTxnAnswer(b); ok {
		return resp, nil
	}
	var resp api.TxnResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, errors.New("Consul's answer to a transaction is not one: " + err.Error())
	}
	return &resp, nil
}

// scanTxnAnswer is decodeTxnAnswer's one pass; false when b holds what it
// does not read as encoding/json would (a member named in another case,
// a result's KV twice), and encoding/json then reads it.
func scanTxnAnswer(b []byte) (*api.TxnResponse, bool) {
	s := &scanner{b: b}
	resp := &api.TxnResponse{}
	ok := s.object(func(name string) bool {
		switch name {
		case "Results":
			resp.Results = nil
			return s.list(func() bool {
				res := &api.TxnResult{}
				resp.Results = append(resp.Results, res)
				return s.object(func(kind string) bool { return s.result(res, kind) })
			})
		case "Errors":
			resp.Errors = nil
			return s.list(func() bool {
				e := &api.TxnError{}
				resp.Errors = append(resp.Errors, e)
				return s.object(func(name string) bool { return s.txnError(e, name) })
			})
		}
		return !foldsTo(name, "Results", "Errors") && s.skip()
	})
	return resp, ok && s.end()
}

// result reads member kind of a transaction's result into res: a key's,
// or one of another kind, which it reads past.
func (s *scanner) result(res *api.TxnResult, kind string) (ok bool) {
	switch {
	case kind != "KV":
		return !foldsTo(kind, "KV") && s.skip()
	case s.null():
		res.KV = nil
		return true
	case res.KV != nil:
		return false // encoding/json would decode the second into the first
	}
	res.KV, ok = s.pair()
	return ok
}

// txnError reads member name of a transaction's error into e.
func (s *scanner) txnError(e *api.TxnError, name string) (ok bool) {
	switch name {
	case "OpIndex":
		var i uint64
		i, ok = s.uint()
		e.OpIndex = int(i)
		return ok && i <= math.MaxInt
	case "What":
		e.What, ok = s.str()
		return ok
	}
	return !foldsTo(name, "OpIndex", "What") && s.skip()
}

// foldsTo reports whether name is one of fields in another case, which
// encoding/json would take for it.
func foldsTo(name string, fields ...string) bool {
	for _, f := range fields {
		if strings.EqualFold(name, f) {
			return true
		}
	}
	return false
}
