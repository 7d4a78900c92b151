package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// listOptions are the flags of the list commands.
type listOptions struct {
	fields   string
	full     bool
	noLegend bool
	output   outputFormat
}

func addListFlags(cmd *cobra.Command, o *listOptions, defFields string, withL bool) {
	cmd.Flags().StringVar(&o.fields, "fields", defFields, "columns to print, comma-separated (table output only)")
	if withL {
		cmd.Flags().BoolVarP(&o.full, "full", "l", false, "do not shorten machine IDs and hashes (table output only)")
	} else {
		cmd.Flags().BoolVar(&o.full, "full", false, "do not shorten machine IDs and hashes (table output only)")
	}
	cmd.Flags().BoolVar(&o.noLegend, "no-legend", false, "do not print the header line (table output only)")
	o.output = tableOutput
	cmd.Flags().VarP(&o.output, "output", "o", "output format: table, or json for an array of objects with every field, unshortened")
}

// column is one --fields choice: its header and how a row shows it.
type column[R any] struct {
	header string
	value  func(r R, full bool) string
}

// printTable prints rows with the chosen fields, tab-aligned as fleetctl did.
func printTable[R any](w io.Writer, o listOptions, cols map[string]column[R], rows []R) error {
	names := fieldNames(o.fields)
	for i := range names {
		if _, ok := cols[names[i]]; !ok {
			valid := make([]string, 0, len(cols))
			for k := range cols {
				valid = append(valid, k)
			}
			sort.Strings(valid)
			return fmt.Errorf("invalid field %q in --fields; valid fields: %s", names[i], strings.Join(valid, ", "))
		}
	}
	chosen := make([]column[R], len(names))
	for i, n := range names {
		chosen[i] = cols[n]
	}
	head := 1
	if o.noLegend {
		head = 0
	}
	return writeAligned(w, grid{rows: head + len(rows), cols: len(chosen), cell: func(i, j int) string {
		if i < head {
			return chosen[j].header
		}
		return chosen[j].value(rows[i-head], o.full)
	}})
}

// grid is a table's cells, each made when it is read: writeAligned reads
// every cell twice (to size the columns, then to write them) rather than
// keep the table, which at 100,000 rows was a tenth of the memory
// list-units touched.
type grid struct {
	rows, cols int
	cell       func(i, j int) string
}

// Tab alignment as text/tabwriter.NewWriter(w, 0, 8, 1, '\t', 0) does it,
// which is how fleetctl has always aligned its tables.
const (
	alignTabWidth = 8
	alignPadding  = 1
)

// writeAligned writes a grid's rows, each line's cells but the last padded
// with tabs to a common column width, byte for byte as text/tabwriter with
// the settings above would, without keeping the whole table a second time
// as tabwriter's cells: at 100,000 rows that buffering was a third of what
// list-units allocated. Cells holding a character tabwriter gives a
// meaning (a tab, a line or page break, its escape byte) go through
// tabwriter itself.
func writeAligned(w io.Writer, g grid) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	widths := make([]int, max(g.cols-1, 0)) // the last cell is no column's
	for i := range g.rows {
		for j := range g.cols {
			n, plain := cellWidth(g.cell(i, j))
			if !plain {
				return writeTabwriter(bw, g)
			}
			if j < len(widths) {
				widths[j] = max(widths[j], n+alignPadding)
			}
		}
	}
	for j := range widths {
		widths[j] = (widths[j] + alignTabWidth - 1) / alignTabWidth * alignTabWidth
	}
	const tabs = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t"
	for i := range g.rows {
		for j := range g.cols {
			c := g.cell(i, j)
			bw.WriteString(c)
			if j == len(widths) {
				break
			}
			n, _ := cellWidth(c)
			for n := (widths[j] - n + alignTabWidth - 1) / alignTabWidth; n > 0; n -= len(tabs) {
				bw.WriteString(tabs[:min(n, len(tabs))])
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// cellWidth is how many characters c is as tabwriter counts them, and
// false when c holds one tabwriter gives a meaning. Most cells are ASCII
// without control characters, which it reads once.
func cellWidth(c string) (int, bool) {
	for i := 0; i < len(c); i++ {
		if b := c[i]; b < 0x20 || b >= utf8.RuneSelf {
			if strings.ContainsAny(c, "\t\n\v\f") || strings.IndexByte(c, tabwriter.Escape) >= 0 {
				return 0, false
			}
			return utf8.RuneCountInString(c), true
		}
	}
	return len(c), true
}

// writeTabwriter writes a grid's rows through text/tabwriter.
func writeTabwriter(bw *bufio.Writer, g grid) error {
	tw := tabwriter.NewWriter(bw, 0, alignTabWidth, alignPadding, '\t', 0)
	r := make([]string, g.cols)
	for i := range g.rows {
		for j := range r {
			r[j] = g.cell(i, j)
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// fieldNames splits a --fields value.
func fieldNames(fields string) []string {
	names := strings.Split(fields, ",")
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
	}
	return names
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
