package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"

	"github.com/hashicorp/consul/api"
)

// The Consul API client encodes every field of a transaction's
// operations, set or not: a unit's check alone is 650 bytes of JSON, half
// of them empty fields and a check definition of fifteen more, which the
// Consul agent that takes the transaction decodes field by field (and
// parses the definition's three durations). Every machine's report of its
// units' states carries a check for each unit, so a transaction's body is
// written here with the fields that are set; bodyTransport sends it in
// place of the API client's. A field left out decodes, in Consul, to the
// zero value the API client would have sent, so Consul applies the same
// operations. The API client still writes its own body, unsent: a few
// microseconds a transaction in the process that writes it.

// txnBodyKey is the context key of a transaction's compact body.
type txnBodyKey struct{}

// withTxnBody returns ctx carrying the compact body of ops for
// bodyTransport, when every operation's fields fit it; else ctx as is,
// and the API client's body goes.
func withTxnBody(ctx context.Context, ops api.TxnOps) context.Context {
	out := make([]txnOpJSON, len(ops))
	for i, op := range ops {
		o, ok := compactOp(op)
		if !ok {
			return ctx
		}
		out[i] = o
	}
	b, err := json.Marshal(out)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, txnBodyKey{}, b)
}

// withTxnBodyFrom sets r's body to the compact body its context carries,
// if any.
func withTxnBodyFrom(r *http.Request) *http.Request {
	b, ok := r.Context().Value(txnBodyKey{}).([]byte)
	if !ok || r.Method != http.MethodPut {
		return r
	}
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
