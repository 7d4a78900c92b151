package registry

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/unitfile"
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
	// Values longer than decodeInPlace's piece, and around its size.
	for _, n := range []int{3071, 3072, 3073, 6144, 10000} {
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(i*7 + n)
		}
		pairs = append(pairs, &api.KVPair{Key: fmt.Sprintf("fleet/units/%d", n), Value: v})
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
		_, whole := scanKVList([][]byte{[]byte(body)}, false, joinMin)
		for _, inPlace := range []bool{false, true} {
			got, err := decodeKVList([][]byte{[]byte(body)}, inPlace)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s (in place %v): decoded\n%s, %v\nwant\n%s", name, inPlace, show(got), err, show(want))
			}
			// In pieces, joined where a pair spans them, it reads the same.
			for _, size := range []int{1, 2, 7, 100, 5000} {
				for _, join := range []int{1, 3, 64, joinMin} {
					got, ok := scanKVList(pieces([]byte(body), size), inPlace, join)
					if ok && inPlace {
						ok = decodeValues(got) == nil
					}
					if ok != whole || ok && !reflect.DeepEqual(got, want) {
						t.Errorf("%s (in place %v) in pieces of %d, joined by %d: read %v (whole: %v)\n%s\nwant\n%s", name, inPlace, size, join, ok, whole, show(got), show(want))
					}
				}
			}
		}
	}
	for _, inPlace := range []bool{false, true} {
		if _, ok := scanKVList([][]byte{slices.Clone(compact)}, inPlace, joinMin); !ok {
			t.Errorf("the one pass (in place %v) did not read a compact answer", inPlace)
		}
		if _, ok := scanKVList([][]byte{slices.Clone(indented)}, inPlace, joinMin); !ok {
			t.Errorf("the one pass (in place %v) did not read an indented answer", inPlace)
		}
		for _, bad := range []string{"", "{}", `[{"Key":"a"}`, `[{"Key":"a"}]x`, `[{"Key":"a",}]`, `[{"Value":"!!"}]`, `[{"Value":"YQ=` + strings.Repeat("A", 5000) + `"}]`,
			`[{"ModifyIndex":18446744073709551616}]`, `[{"ModifyIndex":1e3}]`, `[{"Flags":-1}]`, `[{"LockIndex":00}]`} {
			for _, size := range []int{1, 3, len(bad) + 1} {
				if got, err := decodeKVList(pieces([]byte(bad), size), inPlace); err == nil || !strings.Contains(err.Error(), "not a list of keys") {
					t.Errorf("%.40q (in place %v, pieces of %d): decoded %s, %v; want an error", bad, inPlace, size, show(got), err)
				}
			}
		}
	}
}

// pieces cuts b into pieces of size bytes, the last one shorter.
func pieces(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > size {
		out, b = append(out, b[:size:size]), b[size:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
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
				if err != nil || !bytes.Equal(bytes.Join(got, nil), w) {
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
		`{"a.service":{"Hash":"h","ACTIVE":"active"}}`,                              // names matched as encoding/json matches them
		`{"a.service":{"hash":"h","name":"b","machine":"m","extra":[1,{}]}}`,        // members it does not keep
		`{"a.service":{"hash":"1"},"a.service":{"sub":"x"}}`,                        // the last one wins
		`{"b.service":{"sub":"1"},"a.service":{"sub":"2"},"b.service":{"sub":"3"}}`, // out of order
		`{"a.service":{"hash":1}}`, `{"a.service":"x"}`, `[]`, `{"a":{}} x`, ``,     // errors
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
		byName := map[string]UnitState{}
		for _, st := range got {
			byName[st.Name] = st
		}
		if len(got) != len(v) || len(byName) != len(v) {
			t.Errorf("%s: %d states of %d units, encoding/json %d units", b, len(got), len(byName), len(v))
		}
		for name, m := range v {
			want := UnitState{Name: name, Hash: m.Hash, State: m.State, Load: m.Load, Active: m.Active, Sub: m.Sub, Error: m.Error}
			if byName[name] != want {
				t.Errorf("%s: %s is %+v, encoding/json %+v", b, name, byName[name], want)
			}
		}
	}
}

// FuzzDecodeKVList: whatever Consul answers, and however its body comes
// in pieces, the one pass, with values decoded apart or in place, reads it
// as encoding/json does, or fails as it does. Consul writes valid UTF-8 only, which encoding/json would
// otherwise mend and the one pass keeps.
func FuzzDecodeKVList(f *testing.F) {
	for _, seed := range []string{
		`[{"Key":"fleet/states/0a/","CreateIndex":7,"ModifyIndex":9,"LockIndex":1,"Flags":0,"Value":"eyJhIjp7fX0=","Session":"5a3c"}]`,
		`[{"Key":"a","Value":null},{"Key":"b","Value":""}]`, `[]`, `[{"Key":"a","Value":"YQ==","Extra":[1]}]`,
		`[{"Key":"a","Value":"Y\u0051=="}]`, `[{"Key":"a","Value":"YQ=="}`, `{}`,
	} {
		f.Add([]byte(seed), uint8(3), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, size, join uint8) {
		if !utf8.Valid(b) {
			return
		}
		var want api.KVPairs
		wantErr := json.Unmarshal(b, &want)
		for _, inPlace := range []bool{false, true} {
			got, err := decodeKVList([][]byte{slices.Clone(b)}, inPlace)
			if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q (in place %v): decoded %s, %v; encoding/json %s, %v", b, inPlace, show(got), err, show(want), wantErr)
			}
			// In pieces of size bytes, joined by join where a pair spans
			// them, the one pass reads it as whole.
			all, whole := scanKVList([][]byte{slices.Clone(b)}, inPlace, joinMin)
			if whole && inPlace {
				whole = decodeValues(all) == nil
			}
			cut, ok := scanKVList(pieces(slices.Clone(b), int(size%64)+1), inPlace, int(join%16)+1)
			if ok && inPlace {
				ok = decodeValues(cut) == nil
			}
			if ok != whole || ok && !reflect.DeepEqual(cut, want) {
				t.Fatalf("%q (in place %v) in pieces of %d joined by %d: read %s, %v; whole: %v", b, inPlace, size%64+1, join%16+1, show(cut), ok, whole)
			}
		}
	})
}

// TestSpecial: special finds a quote, a backslash or a control byte
// anywhere among eight, whatever the others are.
func TestSpecial(t *testing.T) {
	isSpecial := func(c byte) bool { return c < 0x20 || c == '"' || c == '\\' }
	for _, fill := range []byte{'a', 0x20, 0x21, '"' + 1, '\\' + 1, 0x7f, 0x80, 0xff} {
		for pos := range 8 {
			for v := range 256 {
				b := bytes.Repeat([]byte{fill}, 8)
				b[pos] = byte(v)
				if got, want := special(binary.LittleEndian.Uint64(b)), isSpecial(byte(v)) || isSpecial(fill); got != want {
					t.Fatalf("special(%q) = %v", b, got)
				}
			}
		}
	}
}

// TestDecodeKeepsNoValue: a snapshot decoded from values that lie in the
// answer (subtrees) holds nothing of them: overwriting the answer changes
// nothing in it, nor in the list of states decoded flat.
func TestDecodeKeepsNoValue(t *testing.T) {
	body, err := unitfile.Parse("[Unit]\nDescription=a\n\n[Service]\nExecStart=/bin/true\n")
	if err != nil {
		t.Fatal(err)
	}
	h := body.Hash().String()
	state := `{"hash":"` + h + `","state":"launched","load":"loaded","active":"active","sub":"running"}`
	pairs := api.KVPairs{
		{Key: "fleet/jobs/a.service", Value: []byte(`{"name":"a.service","hash":"` + h + `","desired":"launched"}`), CreateIndex: 5},
		{Key: "fleet/leader", Value: []byte("m1"), Session: "s1"},
		{Key: "fleet/machine-metadata/m1/disk", Value: []byte("ssd")},
		{Key: "fleet/machines/m1", Value: []byte(`{"id":"m1","ip":"10.0.0.1","metadata":{"role":"web"}}`)},
		{Key: "fleet/placement/a.service", Value: []byte(`{"machine":"m1","job":5}`)},
		{Key: "fleet/policies/spread", Value: []byte(`{"name":"spread","sha256":"ab","size":3,"chunks":["ab"]}`)},
		{Key: "fleet/policy-default", Value: []byte("spread")},
		{Key: "fleet/schedule/m1/", Value: []byte{}},
		{Key: "fleet/schedule/m1/a.service", Value: []byte(`{"hash":"` + h + `","desired":"launched"}`)},
		{Key: "fleet/schema", Value: []byte(`{"version":3}`)},
		{Key: "fleet/states/m1/", Value: []byte(`{"a.service":` + state + `,"c.service":` + state + `}`)},
		{Key: "fleet/states/m1/b.service", Value: []byte(`{"name":"b.service","machine":"m1","hash":"` + h + `","state":"loaded","error":"no"}`)},
		{Key: "fleet/units/" + h, Value: []byte(body.String())},
	}
	answer, _ := json.Marshal(pairs)
	r := New(nil, "")
	want := r.decode(pairs, 7)
	_, wantList := r.decodeAs(pairs, 7, true)
	if len(want.Jobs) != 1 || want.Jobs["a.service"].Unit == nil || len(want.States) != 3 || len(wantList) != 3 || want.Machines["m1"] == nil {
		t.Fatalf("the keys decode as %+v", want)
	}

	inPlace := slices.Clone(answer)
	read, err := decodeKVList([][]byte{inPlace}, true)
	if err != nil {
		t.Fatal(err)
	}
	got := r.decode(read, 7)
	_, gotList := r.decodeAs(read, 7, true)
	for i := range inPlace {
		inPlace[i] = 'x'
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("once the answer is overwritten, the snapshot is\n%+v\nwant\n%+v", got, want)
	}
	SortStates(gotList)
	SortStates(wantList)
	if !reflect.DeepEqual(gotList, wantList) {
		t.Errorf("once the answer is overwritten, the states are %+v, want %+v", gotList, wantList)
	}
}
