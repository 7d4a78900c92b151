package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodeRequest: a request decodes or fails, never panics or allocates
// beyond what its bytes can hold, and what decodes encodes back to the same
// bytes.
func FuzzDecodeRequest(f *testing.F) {
	var w Writer
	(&Request{Unit: "web@1.service", Options: []Option{{"Service", "ExecStart", "/bin/true"}, {"X-Fleet", "Conflicts", "web@*"}}}).Encode(&w)
	f.Add(w.B)
	f.Add([]byte{1, 0, 0, 0, 'x', 255, 255, 255, 255})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeRequest(b)
		if err != nil {
			return
		}
		var out Writer
		q.Encode(&out)
		if !bytes.Equal(out.B, b) {
			t.Fatalf("request %+v re-encodes to %x, read from %x", q, out.B, b)
		}
	})
}

// FuzzDecodeDecision is the same for a guest's answer, which the host reads
// from untrusted memory.
func FuzzDecodeDecision(f *testing.F) {
	var w Writer
	(&Decision{Machine: "m1", Rejected: []Rejection{{"m2", "conflicts with web@2.service"}}}).Encode(&w)
	f.Add(w.B)
	f.Add([]byte{0, 0, 0, 0, 255, 255, 255, 127})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDecision(b)
		if err != nil {
			return
		}
		var out Writer
		d.Encode(&out)
		again, err := DecodeDecision(out.B)
		if err != nil || !reflect.DeepEqual(again, d) && !(len(again.Rejected) == 0 && len(d.Rejected) == 0 && again.Machine == d.Machine) {
			t.Fatalf("decision %+v does not survive a round trip: %+v %v", d, again, err)
		}
	})
}
