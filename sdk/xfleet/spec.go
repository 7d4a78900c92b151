package xfleet

import (
	"sort"
	"strings"

	"github.com/wasmfleet/fleet/sdk/wire"
)

// Section is the unit file section fleet reads its options from.
const Section = "X-Fleet"

// Spec is what a unit's [X-Fleet] section asks for, read once, with fleet's
// specifiers expanded for the unit's name.
type Spec struct {
	Unit      string   // the unit's name
	MachineID string   // the machine the unit is pinned to; "" when none
	Metadata  []Match  // MachineMetadata, by key in key order: every key must match
	Peers     []string // MachineOf: units that must already run on the machine
	Conflicts []string // globs of units that must not share a machine with it
	Replaces  []string // globs of units it displaces from its machine
	Global    bool     // runs on every machine that satisfies it; never placed
	Policy    string   // the placement policy it names (Policy=); "" for the cluster's default
}

// Match is one key of MachineMetadata: the machine's value of Key must be
// one of Values.
type Match struct {
	Key    string
	Values []string
}

// Option names, each with its deprecated spellings, in fleet's lookup order.
var (
	machineIDNames = []string{"MachineID", "X-ConditionMachineID", "X-ConditionMachineBootID"}
	metadataNames  = []string{"MachineMetadata", "X-ConditionMachineMetadata"}
	peerNames      = []string{"MachineOf", "X-ConditionMachineOf"}
	conflictNames  = []string{"Conflicts", "X-Conflicts"}
	replaceNames   = []string{"Replaces"}
	globalNames    = []string{"Global"}
)

// Read reads the [X-Fleet] options of the unit named unit.
//
// Each value is split on blanks, a double-quoted run kept as one and its
// quotes dropped (fleet's `MachineOf="a.service" "b.service"` is two
// units), then the specifiers %n %N %p %i %% are expanded. Only the first
// MachineID counts; the last Global and the last Policy win. A
// MachineMetadata pair that is not one non-empty key and one non-empty value
// is ignored, as fleet did.
func Read(unit string, options []wire.Option) *Spec {
	s := &Spec{Unit: unit}
	if !hasSection(options) {
		return s
	}
	if v := values(unit, options, machineIDNames); len(v) > 0 {
		s.MachineID = v[0]
	}
	s.Metadata = metadata(values(unit, options, metadataNames))
	s.Peers = values(unit, options, peerNames)
	s.Conflicts = globs(values(unit, options, conflictNames))
	s.Replaces = globs(values(unit, options, replaceNames))
	if g := values(unit, options, globalNames); len(g) > 0 {
		s.Global = truthy(g[len(g)-1])
	}
	for _, o := range options {
		if o.Section == Section && o.Name == "Policy" {
			s.Policy = strings.TrimSpace(o.Value)
		}
	}
	return s
}

// HasRules reports whether the unit asks anything of its machine's other
// units or of the machine's identity: MachineID, MachineOf or Conflicts.
func (s *Spec) HasRules() bool {
	return s.MachineID != "" || len(s.Peers) > 0 || len(s.Conflicts) > 0
}

// UsesSpecifiers reports whether an [X-Fleet] value uses a specifier, which
// makes the unit's Spec depend on its name: the instances of a template
// without specifiers share one Spec but for the name.
func UsesSpecifiers(options []wire.Option) bool {
	for _, o := range options {
		if o.Section == Section && strings.Contains(o.Value, "%") {
			return true
		}
	}
	return false
}

// For is s for the unit named unit: s itself when it is that unit's, else a
// copy that differs only in the name. Only a Spec read from options without
// specifiers may be shared this way (UsesSpecifiers).
func (s *Spec) For(unit string) *Spec {
	if s.Unit == unit {
		return s
	}
	c := *s
	c.Unit = unit
	return &c
}

func hasSection(options []wire.Option) bool {
	for _, o := range options {
		if o.Section == Section {
			return true
		}
	}
	return false
}

// values are the values of the options under names, in names' order, split
// and expanded (Read).
func values(unit string, options []wire.Option, names []string) []string {
	var out []string
	for _, n := range names {
		for _, o := range options {
			if o.Section != Section || o.Name != n {
				continue
			}
			for _, v := range SplitQuoted(o.Value) {
				out = append(out, ExpandSpecifiers(v, unit))
			}
		}
	}
	return out
}

// globs splits each value on blanks: a quoted run of several globs is
// several globs.
func globs(vs []string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func metadata(pairs []string) []Match {
	byKey := map[string][]string{}
	for _, pair := range pairs {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" || strings.Contains(v, "=") {
			continue
		}
		byKey[k] = append(byKey[k], v)
	}
	if len(byKey) == 0 {
		return nil
	}
	out := make([]Match, 0, len(byKey))
	for k, vs := range byKey {
		out = append(out, Match{Key: k, Values: vs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

// SplitQuoted splits an option value on blanks, keeping double-quoted runs
// together and dropping the quotes: MachineMetadata="a=b c" d=e is "a=b c"
// and "d=e".
func SplitQuoted(s string) []string {
	var out []string
	var cur []rune
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (r == ' ' || r == '\t'):
			if have {
				out = append(out, string(cur))
				cur, have = cur[:0], false
			}
		default:
			cur = append(cur, r)
			have = true
		}
	}
	if have {
		out = append(out, string(cur))
	}
	return out
}

// ExpandSpecifiers replaces fleet's specifiers in an [X-Fleet] value for the
// unit named name: %n the name, %N the name without its type, %p the prefix
// (before "@"), %i the instance (between "@" and the type), %% a percent
// sign. Any other specifier is left as it is.
func ExpandSpecifiers(v, name string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	base := name
	if dot := strings.LastIndex(name, "."); dot >= 0 {
		base = name[:dot]
	}
	prefix, instance, _ := strings.Cut(base, "@")
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 'n':
			b.WriteString(name)
		case 'N':
			b.WriteString(base)
		case 'p':
			b.WriteString(prefix)
		case 'i':
			b.WriteString(instance)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}
