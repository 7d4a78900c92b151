package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"
)

// TestTxnBodyDecodesAsTheAPIClients: what Consul decodes from a compact
// body (into the API's own types, as its HTTP handler does) is what it
// decodes from the API client's body for the same operations, for every
// kind of operation fleet writes; and the compact body is smaller.
func TestTxnBodyDecodesAsTheAPIClients(t *testing.T) {
	m := &Machine{ID: "0123456789abcdef0123456789abcdef", IP: "127.0.0.7"}
	ops := api.TxnOps{
		kv(api.KVSet, "fleet/states/m/", []byte(`{"a":1}`), 0),
		kv(api.KVSet, "fleet/schedule/m/", nil, 0),   // a directory key: no value
		kv(api.KVSet, "fleet/changes/", []byte{}, 0), // an empty value, not none
		kv(api.KVCAS, "fleet/placement/a.service", []byte(`{"machine":"m"}`), 42),
		kv(api.KVDeleteCAS, "fleet/placement/b.service", nil, 7),
		kv(api.KVCheckNotExists, "fleet/placement/c.service", nil, 0),
		kv(api.KVGet, "fleet/jobs/a.service", nil, 0),
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: "fleet/leader", Value: []byte("m"), Session: "s-1", Flags: 3}},
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: "fleet/leader", Session: "s-1"}},
		CheckOp(m.ID, "web", "web@1.service", api.HealthPassing, "active (running)"),
		CheckDeleteOp(m.ID, "web@2.service"),
		NodeOp(m, map[string]string{"region": "eu"}),
		NodeDeleteOp(m.ID),
		ServiceOp(m.ID, api.AgentService{Service: "web", Tags: []string{"fleet"}}),
		ServiceDeleteOp(m.ID, "web"),
	}
	b, ok := compactBody(ops)
	if !ok {
		t.Fatal("no compact body for fleet's own operations")
	}
	full, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	var fromCompact, fromAPI api.TxnOps
	if err := json.Unmarshal(b, &fromCompact); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(full, &fromAPI); err != nil {
		t.Fatal(err)
	}
	for i := range fromAPI {
		if !reflect.DeepEqual(fromCompact[i], fromAPI[i]) {
			c, _ := json.Marshal(fromCompact[i])
			a, _ := json.Marshal(fromAPI[i])
			t.Errorf("op %d decodes differently:\ncompact %s\napi     %s", i, c, a)
		}
	}
	if len(fromCompact) != len(fromAPI) {
		t.Fatalf("%d operations decoded, want %d", len(fromCompact), len(fromAPI))
	}
	if len(b) >= len(full) {
		t.Errorf("compact body %d bytes, the API client's %d: want fewer", len(b), len(full))
	}
	// A unit's check, which every state report carries for each unit.
	check := ops[9:10]
	cb, _ := compactBody(check)
	cfull, _ := json.Marshal(check)
	if len(cb)*2 > len(cfull) {
		t.Errorf("a unit's check: compact %d bytes, the API client's %d: want less than half", len(cb), len(cfull))
	}
}

// TestTxnBodyLeavesWhatItCannotCarry: an operation that sets a field the
// compact form leaves out (a check with a definition, tags that are empty
// but not none) or holds two kinds makes the whole transaction go as the
// API client writes it.
func TestTxnBodyLeavesWhatItCannotCarry(t *testing.T) {
	withDef := CheckOp("m", "web", "web@1.service", api.HealthPassing, "")
	withDef.Check.Check.Definition.Interval = api.ReadableDuration(5e9)
	emptyTags := CheckOp("m", "web", "web@1.service", api.HealthPassing, "")
	emptyTags.Check.Check.ServiceTags = []string{}
	two := kv(api.KVSet, "fleet/x", []byte("1"), 0)
	two.Check = CheckOp("m", "web", "web@1.service", api.HealthPassing, "").Check
	for name, ops := range map[string]api.TxnOps{
		"definition": {kv(api.KVSet, "fleet/x", []byte("1"), 0), withDef},
		"empty tags": {emptyTags},
		"two kinds":  {two},
		"nil op":     {nil},
		"empty op":   {{}},
	} {
		if _, ok := compactBody(ops); ok {
			t.Errorf("%s: compact body made; want the API client's", name)
		}
	}
}

// txnAnswers are Consul's answers to a machine's report (a node, a
// service, a check and a key), to a read of two keys, and to a
// transaction rolled back.
func txnAnswers(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/txn-answers.json")
	if err != nil {
		t.Fatal(err)
	}
	var answers []json.RawMessage
	if err := json.Unmarshal(b, &answers); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, a := range answers {
		var indented bytes.Buffer
		if err := json.Indent(&indented, a, "", "    "); err != nil {
			t.Fatal(err)
		}
		out = append(out, a, indented.Bytes())
	}
	return out
}

// TestTxnAnswerDecodesAsTheAPIClients: Consul's answers to transactions,
// compact and indented and in pieces, read in one pass as encoding/json
// reads their keys and errors, results of other kinds left empty; an
// answer the pass does not read (a member named in another case) goes to
// encoding/json; what is no answer is an error.
func TestTxnAnswerDecodesAsTheAPIClients(t *testing.T) {
	for _, b := range txnAnswers(t) {
		if _, ok := scanTxnAnswer(b); !ok {
			t.Errorf("the one pass does not read Consul's answer %s", b)
		}
		for _, size := range []int{len(b), 1, 7, 100} {
			decodesAsJSON(t, pieces(slices.Clone(b), size))
		}
	}
	for _, b := range []string{ // members twice: the last counts
		`{"Results":[{"KV":{"Key":"a"}}],"Results":[{"KV":{"Key":"b"}},{"KV":null}]}`, `{"Results":[{}],"Results":null}`,
		`{"Results":[{"KV":{"Key":"a"},"KV":null}],"Errors":[{"OpIndex":1,"What":"x"}],"Errors":[]}`,
	} {
		decodesAsJSON(t, [][]byte{[]byte(b)})
	}
	for _, b := range []string{
		`{"results":[{"KV":{"Key":"a"}}]}`, `{"Results":[{"kv":{"Key":"a"}}]}`, `{"Errors":[{"opindex":3}]}`,
		`{"Results":[{"KV":{"Key":"a","Flags":1},"KV":{"Key":"b"}}]}`, `{"Results":[null]}`,
	} {
		if _, ok := scanTxnAnswer([]byte(b)); ok {
			t.Errorf("the one pass reads %s", b)
		}
		decodesAsJSON(t, [][]byte{[]byte(b)})
	}
	for _, b := range []string{``, `[]`, `{"Results":[`, `{"Results":[{"Check":{"Output":"\q"}}]}`, `{"Results":[{"Check":01}]}`} {
		if _, err := decodeTxnAnswer([][]byte{[]byte(b)}); err == nil || !strings.Contains(err.Error(), "not one") {
			t.Errorf("%q: %v; want an error", b, err)
		}
	}
}

// decodesAsJSON fails t unless decodeTxnAnswer reads body as encoding/json
// does: its keys' results and its errors.
func decodesAsJSON(t *testing.T, body [][]byte) {
	t.Helper()
	var want api.TxnResponse
	if err := json.Unmarshal(bytes.Join(body, nil), &want); err != nil {
		t.Fatal(err)
	}
	got, err := decodeTxnAnswer(body)
	if err != nil {
		t.Fatalf("%s: %v", bytes.Join(body, nil), err)
	}
	if !sameAnswer(got, &want) {
		t.Errorf("%s:\ndecoded %s\nencoding/json %s", bytes.Join(body, nil), mustMarshal(got), mustMarshal(&want))
	}
}

// sameAnswer reports whether got has want's keys and errors, and nothing
// in its results of other kinds.
func sameAnswer(got, want *api.TxnResponse) bool {
	if len(got.Results) != len(want.Results) || len(got.Errors) != len(want.Errors) {
		return false
	}
	for i, r := range got.Results {
		if r == nil || want.Results[i] == nil {
			if r != want.Results[i] {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(r.KV, want.Results[i].KV) || (r.KV == nil && *r != (api.TxnResult{}) && !reflect.DeepEqual(r, want.Results[i])) {
			return false
		}
	}
	for i, e := range got.Errors {
		if !reflect.DeepEqual(e, want.Errors[i]) {
			return false
		}
	}
	return true
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzDecodeTxnAnswer: whatever encoding/json reads as a transaction's
// answer, in whatever pieces, decodeTxnAnswer reads with the same keys
// and errors. (Results of other kinds it reads past without checking
// their types, so it may read an answer encoding/json refuses.)
func FuzzDecodeTxnAnswer(f *testing.F) {
	for _, b := range txnAnswers(f) {
		f.Add(b, uint8(0))
	}
	f.Add([]byte(`{"Results":[{"KV":{"Key":"a\u0041","Value":"YQ==","Session":"s"}}],"Errors":[],"X":[1.5e3,true,"\n"]}`), uint8(5))
	f.Fuzz(func(t *testing.T, b []byte, size uint8) {
		var want api.TxnResponse
		if !utf8.Valid(b) || !unmarshals(b, &want) {
			return
		}
		got, err := decodeTxnAnswer(pieces(slices.Clone(b), int(size)+1))
		if err != nil || !sameAnswer(got, &want) {
			t.Fatalf("%q: decoded %s, %v; encoding/json %s", b, mustMarshal(got), err, mustMarshal(&want))
		}
	})
}

// unmarshals reports whether encoding/json reads b into v. The API's
// types panic on some of what it reads (a check's definition of null),
// which no answer of Consul's holds: those go uncompared.
func unmarshals(b []byte, v any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return json.Unmarshal(b, v) == nil
}
