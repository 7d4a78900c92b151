package main

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestWriteAligned: tables written by writeAligned are byte for byte what
// text/tabwriter writes with fleetctl's settings, for cells of every width
// (none, multi-byte runes, longer than a tab stop, many stops), one column
// or several, and cells tabwriter gives a meaning, which go through it.
func TestWriteAligned(t *testing.T) {
	words := []string{"", "a", "web@1.service", "ünïcödé", "0123456789abcdef0123456789abcdef", "seven77", "eight888", "x y",
		strings.Repeat("long", 40), "a\tb", "line\nbreak", "esc\xffaped\xff", "feed\f", "v\vtab"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		cols := 1 + rnd.IntN(5)
		var rows [][]string
		for range 1 + rnd.IntN(30) {
			r := make([]string, cols)
			for j := range r {
				r[j] = words[rnd.IntN(len(words)-4)] // no special characters
				if trial%5 == 0 && rnd.IntN(20) == 0 {
					r[j] = words[len(words)-4+rnd.IntN(4)]
				}
			}
			rows = append(rows, r)
		}
		var got, want bytes.Buffer
		if err := writeAligned(&got, gridOf(rows)); err != nil {
			t.Fatal(err)
		}
		if err := writeTabwriter(bufio.NewWriter(&want), gridOf(rows)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("rows %q:\nwriteAligned %q\ntabwriter    %q", rows, got.String(), want.String())
		}
	}
}

// gridOf is the grid of rows of cells, each row of the first's length.
func gridOf(rows [][]string) grid {
	g := grid{rows: len(rows), cell: func(i, j int) string { return rows[i][j] }}
	if len(rows) > 0 {
		g.cols = len(rows[0])
	}
	return g
}
