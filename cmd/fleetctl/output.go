package main

import (
	"encoding/json"
	"fmt"
	"io"
)

// outputFormat is the value of a list command's --output.
type outputFormat string

const (
	tableOutput outputFormat = "table" // fleet's tab-aligned columns
	jsonOutput  outputFormat = "json"  // an array of objects, every field unshortened
)

func (f *outputFormat) String() string { return string(*f) }

func (f *outputFormat) Type() string { return "format" }

// Set refuses anything but table and json as the flag is parsed, before
// Consul is asked anything.
func (f *outputFormat) Set(s string) error {
	switch v := outputFormat(s); v {
	case tableOutput, jsonOutput:
		*f = v
		return nil
	}
	return fmt.Errorf("unknown output format %q; allowed: table, json", s)
}

// printList prints rows as the table --fields chooses or, with --output
// json, as a JSON array with record(row) for every row.
func printList[R any](w io.Writer, o listOptions, cols map[string]column[R], rows []R, record func(R) any) error {
	if o.output != jsonOutput {
		return printTable(w, o, cols, rows)
	}
	recs := make([]any, 0, len(rows))
	for _, r := range rows {
		recs = append(recs, record(r))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(recs)
}
