package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hashicorp/consul/api"
)

// TestDecodeKVList: Consul's list answers, compact as a server writes them
// and indented as a dev agent does, with keys and values of every kind,
// decode exactly as encoding/json decodes them; what the one pass does not
// read goes to encoding/json, and what is not a list is an error.
func TestDecodeKVList(t *testing.T) {
	pairs := api.KVPairs{
		{Key: "fleet/states/0a/web@1.service", Value: []byte(`{"name":"web@1.service","state":"launched"}`), CreateIndex: 7, ModifyIndex: 18446744073709551615, LockIndex: 1, Session: "5a3c9d7e-1111-2222-3333-444455556666"},
		{Key: "fleet/jobs/a\\x2db<&>\"q\"\u00e9\u2028.service", Value: []byte{0, 1, 2, 0xff, '"', '\\'}, Flags: 42},
		{Key: "fleet/machines/", Value: nil},
		{Key: "fleet/empty", Value: []byte{}, Namespace: "ns", Partition: "p"},
	}
	compact, _ := json.Marshal(pairs)
	indented, _ := json.MarshalIndent(pairs, "", "    ")
	for name, body := range map[string]string{
		"compact":  string(compact),
		"indented": string(indented),
		"empty":    "[]",
		"spaced":   " \n[ ]\n",
		// Fields it does not read, numbers it does not read and escapes
		// in base64 go to encoding/json, which reads them.
		"unknown field":  `[{"Key":"a","Value":"YQ==","Extra":{"x":[1,2]}}]`,
		"lowercase name": `[{"key":"a","value":"YQ=="}]`,
		"escaped base64": `[{"Key":"a","Value":"Y\u0051=="}]`,
		"null key":       `[{"Key":null,"Value":null}]`,
	} {
		var want api.KVPairs
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := decodeKVList([]byte(body))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded\n%s, %v\nwant\n%s", name, show(got), err, show(want))
		}
	}
	if _, ok := scanKVList(compact); !ok {
		t.Error("the one pass did not read a compact answer")
	}
	if _, ok := scanKVList(indented); !ok {
		t.Error("the one pass did not read an indented answer")
	}
	for _, bad := range []string{"", "{}", `[{"Key":"a"}`, `[{"Key":"a"}]x`, `[{"Key":"a",}]`, `[{"Value":"!!"}]`, `[{"ModifyIndex":18446744073709551616}]`, `[{"ModifyIndex":1e3}]`, `[{"Flags":-1}]`} {
		if got, err := decodeKVList([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a list of keys") {
			t.Errorf("%q: decoded %s, %v; want an error", bad, show(got), err)
		}
	}
}

func show(pairs api.KVPairs) string {
	b, _ := json.Marshal(pairs)
	return string(b)
}

// TestUnmarshalStateAndJob: states and jobs read in one pass come out as
// encoding/json reads them, and what is not JSON is an error as it is there.
func TestUnmarshalStateAndJob(t *testing.T) {
	for _, b := range []string{
		`{"name":"web@1.service","machine":"0a","hash":"3f2a","state":"launched","load":"loaded","active":"active","sub":"running"}`,
		`{"name":"web@1.service","machine":"0a","hash":"3f2a","state":"loaded","load":"error","active":"failed","sub":"failed","error":"Unit \"x\" failed\n\u00e9"}`,
		"{ \"name\" : \"a\\\\x2db.service\" ,\n \"desired\":\"launched\", \"hash\": \"\" }",
		`{}`, `{"name":"a","name":"b"}`,
		`{"Name":"a","MACHINE":"m"}`,                                   // names matched as encoding/json matches them
		`{"name":"a","extra":{"x":[1,2]},"state":null}`,                // members it does not read
		`{"name":"a","sub":1}`, `{"name":"a"} x`, `{"name":`, `[]`, ``, // errors
	} {
		var st, wantSt UnitState
		errSt, wantErrSt := unmarshalState([]byte(b), &st), json.Unmarshal([]byte(b), &wantSt)
		if st != wantSt || (errSt == nil) != (wantErrSt == nil) {
			t.Errorf("state %s: %+v, %v; encoding/json: %+v, %v", b, st, errSt, wantSt, wantErrSt)
		}
		var j, wantJ jobObject
		errJ, wantErrJ := unmarshalJob([]byte(b), &j), json.Unmarshal([]byte(b), &wantJ)
		if j != wantJ || (errJ == nil) != (wantErrJ == nil) {
			t.Errorf("job %s: %+v, %v; encoding/json: %+v, %v", b, j, errJ, wantJ, wantErrJ)
		}
	}
}

// TestReadBody: a body read whole, of a size told or not, however it
// arrives; one shorter than its size told, or a failed read, is an error.
func TestReadBody(t *testing.T) {
	for _, want := range [][]byte{nil, []byte("[]"), bytes.Repeat([]byte("0123456789abcdef"), 700000)} { // 11.2 MB: many pieces
		for _, size := range []int64{-1, int64(len(want))} {
			for name, r := range map[string]io.Reader{"whole": bytes.NewReader(want), "by halves": iotest.HalfReader(bytes.NewReader(want)), "one byte at a time": iotest.OneByteReader(bytes.NewReader(want[:min(len(want), 300000)]))} {
				w, told := want, size
				if name == "one byte at a time" {
					w = want[:min(len(want), 300000)]
					if told >= 0 {
						told = int64(len(w))
					}
				}
				got, err := readBody(r, told)
				if err != nil || !bytes.Equal(got, w) {
					t.Errorf("%d bytes, size %d, %s: read %d bytes, %v", len(w), told, name, len(got), err)
				}
			}
		}
	}
	if _, err := readBody(bytes.NewReader([]byte("[]")), 3); err == nil {
		t.Error("a body shorter than its size is no error")
	}
	if _, err := readBody(iotest.TimeoutReader(bytes.NewReader(make([]byte, 1<<20))), -1); err == nil {
		t.Error("a failed read is no error")
	}
}

// TestUnmarshalMachineStates: a machine key reads as encoding/json reads
// it into states by unit name, in one pass or not.
func TestUnmarshalMachineStates(t *testing.T) {
	for _, b := range []string{
		`{"web@1.service":{"hash":"3f2a","state":"launched","load":"loaded","active":"active","sub":"running"},"db.service":{"hash":"9","state":"loaded","load":"error","active":"failed","sub":"failed","error":"x \"y\"\n"}}`,
		"{ \"a\\\\x2db.service\" : { \"hash\" : \"\" } }", `{}`,
		`{"a.service":{"Hash":"h","ACTIVE":"active"}}`,                          // names matched as encoding/json matches them
		`{"a.service":{"hash":"h","name":"b","machine":"m","extra":[1,{}]}}`,    // members it does not keep
		`{"a.service":{"hash":"1"},"a.service":{"sub":"x"}}`,                    // the last one wins
		`{"a.service":{"hash":1}}`, `{"a.service":"x"}`, `[]`, `{"a":{}} x`, ``, // errors
	} {
		got, err := unmarshalMachineStates([]byte(b), map[string]string{})
		var v map[string]machineState
		wantErr := json.Unmarshal([]byte(b), &v)
		if (err == nil) != (wantErr == nil) {
			t.Errorf("%s: error %v; encoding/json: %v", b, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if len(got) != len(v) {
			t.Errorf("%s: %d units, encoding/json %d", b, len(got), len(v))
		}
		for name, m := range v {
			want := UnitState{Hash: m.Hash, State: m.State, Load: m.Load, Active: m.Active, Sub: m.Sub, Error: m.Error}
			if got[name] == nil || *got[name] != want {
				t.Errorf("%s: %s is %+v, encoding/json %+v", b, name, got[name], want)
			}
		}
	}
}
