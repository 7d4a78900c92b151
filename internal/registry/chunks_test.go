package registry

import (
	"fmt"
	"testing"

	"github.com/hashicorp/consul/api"
)

// TestChunks packs the writes of a pass: each machine's in as few
// transactions as they fit, the machines taking turns, and writes of
// machines with few units sharing transactions.
func TestChunks(t *testing.T) {
	op := &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: "k"}}
	head := api.TxnOps{op}
	room := txnOpsLeast - 1 - len(head)
	pack := func(t *testing.T, ws []Write) [][]int {
		t.Helper()
		a := &applying{r: New(nil, ""), head: head, ws: ws}
		SetTxnOps(a.r, txnOpsLeast)
		wave := make([]int, len(ws))
		for i := range wave {
			wave[i] = i
		}
		chunks, err := a.chunks(wave)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, c := range chunks {
			if n := a.ops(c); n > room {
				t.Errorf("a transaction of %d operations; %d fit", n, room)
			}
			for _, i := range c {
				if seen[i] {
					t.Errorf("write %d packed twice", i)
				}
				seen[i] = true
			}
		}
		if len(seen) != len(ws) {
			t.Errorf("%d of %d writes packed", len(seen), len(ws))
		}
		return chunks
	}
	write := func(machine string, i, ops int) Write {
		w := Write{Name: fmt.Sprintf("u%d", i), machine: machine}
		for range ops {
			w.ops = append(w.ops, op)
		}
		return w
	}

	t.Run("few machines, many units each: turns", func(t *testing.T) {
		var ws []Write
		for i := range 300 { // 100 units of 3 operations on each of 3 machines, in turn
			ws = append(ws, write(fmt.Sprintf("m%d", i%3), i, 3))
		}
		chunks := pack(t, ws)
		perTxn := room / 3
		if want := 3 * ((100 + perTxn - 1) / perTxn); len(chunks) != want {
			t.Errorf("%d transactions, want %d", len(chunks), want)
		}
		for k, c := range chunks {
			want := fmt.Sprintf("m%d", k%3)
			for _, i := range c {
				if ws[i].machine != want {
					t.Fatalf("transaction %d holds a write for %s, want only %s's (the machines take turns)", k, ws[i].machine, want)
				}
			}
		}
	})

	t.Run("many machines, a few units each: together", func(t *testing.T) {
		var ws []Write
		for i := range 400 { // 2 units of 3 operations on each of 200 machines, in turn
			ws = append(ws, write(fmt.Sprintf("m%03d", i%200), i, 3))
		}
		chunks := pack(t, ws)
		if want := (400*3 + room - 1) / room; len(chunks) > want+1 {
			t.Errorf("%d transactions, want about %d", len(chunks), want)
		}
		txn := map[string]int{}
		for k, c := range chunks {
			for _, i := range c {
				m := ws[i].machine
				if prev, ok := txn[m]; ok && prev != k {
					t.Errorf("%s's writes in transactions %d and %d", m, prev, k)
				}
				txn[m] = k
			}
		}
	})
}
