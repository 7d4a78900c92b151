package kernel

import (
	"math/rand/v2"
	"testing"
)

func TestLeast(t *testing.T) {
	for _, tc := range []struct {
		set, keys []uint64
		want      int
	}{
		{nil, nil, -1},
		{[]uint64{0}, []uint64{1, 2}, -1},
		{[]uint64{0b110}, []uint64{0, 5, 3}, 2},
		{[]uint64{0b111}, []uint64{0, 5, 3}, 0},
		{[]uint64{1 << 63, 1}, make([]uint64, 65), 63}, // equal keys: first slot seen
		{[]uint64{0, 0b1}, []uint64{1, 2}, -1},         // slot 64 has no key
		{[]uint64{0b1001}, []uint64{9, 8, 7, 6}, 3},
	} {
		if got := Least(tc.set, tc.keys); got != tc.want {
			t.Errorf("Least(%b, %v) = %d, want %d", tc.set, tc.keys, got, tc.want)
		}
	}
}

// TestLeastMatchesScan compares Least with the obvious loop over random
// sets and keys.
func TestLeastMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		n := r.IntN(300)
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = uint64(r.IntN(5))<<32 | uint64(i)
		}
		set := make([]uint64, (n+63)/64+r.IntN(2))
		for i := range set {
			set[i] = r.Uint64() & r.Uint64()
		}
		want := -1
		for s := 0; s < n; s++ {
			if set[s/64]&(1<<(s%64)) != 0 && (want < 0 || keys[s] < keys[want]) {
				want = s
			}
		}
		if got := Least(set, keys); got != want {
			t.Fatalf("Least = %d, want %d", got, want)
		}
	}
}
