package sdk

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/sdk/wire"
)

func TestApplyAndPlace(t *testing.T) {
	var w wire.Writer
	w.U8(wire.OpMachine)
	w.Str("m2")
	w.Str("10.0.0.2")
	w.U32(1)
	w.Str("disk")
	w.Str("ssd")
	w.U8(wire.OpMachine)
	w.Str("m1")
	w.Str("10.0.0.1")
	w.U32(0)
	w.U8(wire.OpUnitPlaced)
	w.Str("a.service")
	w.Str("m2")

	r := newRunner(func(c *Cluster, u *Unit) Decision {
		var d Decision
		for _, m := range c.Machines() {
			if m.Metadata["disk"] != u.XFleet("Disk")[0] {
				d.Reject(m, "wrong disk")
				continue
			}
			d.Machine = m.ID
		}
		return d
	})
	if err := r.Apply(w.B); err != nil {
		t.Fatal(err)
	}
	if ms := r.cluster.Machines(); len(ms) != 2 || ms[0].ID != "m1" || !ms[1].Units["a.service"] {
		t.Fatalf("cluster after apply: %+v", ms)
	}
	var q wire.Writer
	(&wire.Request{Unit: "b.service", Options: []wire.Option{{Section: "X-Fleet", Name: "Disk", Value: "ssd"}}}).Encode(&q)
	out, err := r.Place(q.B)
	if err != nil {
		t.Fatal(err)
	}
	d, err := wire.DecodeDecision(out)
	if err != nil || d.Machine != "m2" || len(d.Rejected) != 1 || d.Rejected[0].Machine != "m1" {
		t.Fatalf("decision %+v, %v", d, err)
	}

	var gone wire.Writer
	gone.U8(wire.OpMachineGone)
	gone.Str("m2")
	gone.U8(wire.OpReset)
	if err := r.Apply(gone.B); err != nil || len(r.cluster.Machines()) != 0 {
		t.Fatalf("after removal and reset: %v %v", r.cluster.Machines(), err)
	}
}

func TestApplyRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{99}, {wire.OpMachine, 5, 0, 0, 0, 'a'}, {wire.OpMachine, 1, 0, 0, 0, 'a', 0, 0, 0, 0, 255, 255, 255, 255}} {
		if err := NewCluster().apply(b); err == nil {
			t.Errorf("Apply(%v) succeeded", b)
		}
	}
	if _, err := wire.DecodeRequest([]byte{1, 0, 0, 0, 'x', 255, 255, 255, 255}); err == nil {
		t.Error("a request with a huge option count decoded")
	}
}

func TestMemoSharedByIdenticalBodies(t *testing.T) {
	calls := 0
	r := newRunner(func(c *Cluster, u *Unit) Decision {
		u.Memo("k", func() any { calls++; return len(u.Options) })
		return Decision{}
	})
	place := func(name, value string) {
		var w wire.Writer
		(&wire.Request{Unit: name, Options: []wire.Option{{Section: "X-Fleet", Name: "K", Value: value}}}).Encode(&w)
		if _, err := r.Place(w.B); err != nil {
			t.Fatal(err)
		}
	}
	place("web@1.service", "a")
	place("web@2.service", "a") // same body: memo reused
	place("web@3.service", "b") // other body
	if calls != 2 {
		t.Fatalf("memo computed %d times, want 2", calls)
	}
}

func TestSameBytes(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true}, {"a", "", false}, {"abcdefgh", "abcdefgh", true}, {"abcdefgh", "abcdefgx", false},
		{"abcdefghijk", "abcdefghijk", true}, {"abcdefghijk", "abcdefghijz", false}, {"xbcdefghijk", "abcdefghijk", false},
	} {
		if got := sameBytes([]byte(tc.a), []byte(tc.b)); got != tc.want {
			t.Errorf("sameBytes(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// A handle beyond what a host could have numbered, or one never defined, is
// refused rather than grown into or answered for.
func TestHandlesChecked(t *testing.T) {
	var w wire.Writer
	w.U8(wire.OpUnitHandle)
	w.U32(maxHandles)
	(&wire.Request{Unit: "a.service"}).Encode(&w)
	if err := NewCluster().apply(w.B); err == nil {
		t.Error("a handle out of range was accepted")
	}
	r := newRunner(func(*Cluster, *Unit) Decision { return Decision{} })
	w.B = w.B[:0]
	w.U8(wire.OpUnitHandle)
	w.U32(3)
	(&wire.Request{Unit: "a.service"}).Encode(&w)
	if err := r.Apply(w.B); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PlaceDefined(3); err != nil {
		t.Errorf("PlaceDefined(3): %v", err)
	}
	for _, h := range []uint32{0, 2, 4, 1 << 30} {
		if _, err := r.PlaceDefined(h); err == nil {
			t.Errorf("PlaceDefined(%d) answered for a handle never defined", h)
		}
	}
}

// TestDecisionBytes: the Runner's answer is wire.Decision.Encode's bytes,
// whether it writes them itself (a machine chosen) or through Encode, and
// whatever answer came before in its buffer.
func TestDecisionBytes(t *testing.T) {
	var d Decision
	r := newRunner(func(*Cluster, *Unit) Decision { return d })
	for _, next := range []Decision{
		{Machine: "m1"}, {}, {Machine: strings.Repeat("x", 200)}, {Machine: "m2"},
		{Rejected: []wire.Rejection{{Machine: "m1", Reason: "no"}}}, {Machine: "m3"},
	} {
		d = next
		var w wire.Writer
		(&wire.Decision{Machine: d.Machine, Rejected: d.Rejected}).Encode(&w)
		if got := r.decide(&Unit{Name: "a.service"}); !bytes.Equal(got, w.B) {
			t.Fatalf("decision %+v: %q, want %q", d, got, w.B)
		}
	}
}

// TestMemoKeys: keys are told apart by their bytes, not only by where they
// are: a key that is a prefix of another (the same address, a shorter
// length), a key built at run time with the same bytes as a constant, and
// the empty key.
func TestMemoKeys(t *testing.T) {
	c := NewCluster()
	u := &Unit{Name: "a.service"}
	c.DefineUnit(u)
	long := "policy/spec"
	if got := u.Memo(long, func() any { return 1 }); got != 1 {
		t.Fatalf("first memo = %v", got)
	}
	for _, tc := range []struct {
		key  string
		want any
	}{
		{long[:6], 2},                      // same address, shorter
		{string([]byte("policy/spec")), 1}, // same bytes elsewhere
		{"", 3},                            // no bytes at all
		{long, 1},                          // the constant again
	} {
		want := tc.want
		if got := u.Memo(tc.key, func() any { return want }); got != tc.want {
			t.Errorf("Memo(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}
