// Command compare is an example placement policy: MachineMetadata with
// comparison operators (fleet issue #1143), so a unit can ask for "at least
// 2 GiB of RAM" or "any region but this one" instead of listing every
// acceptable value:
//
//	[X-Fleet]
//	Policy=compare
//	MachineMetadata=ram>=2048 disk=ssd
//	MachineMetadata=region!=us-east
//
// The operators are >=, <=, >, <, != and ==; plain = is an exact match of
// the text, as in fleet. The others compare numerically when both sides are
// numbers (so ram==2048.0 holds on ram=2048) and as text otherwise. A
// machine without the key satisfies no comparison on it, not even !=. Each
// MachineMetadata value holds one or more comparisons, separated by blanks
// (double quotes keep a value with blanks together), and every comparison
// must hold: unlike fleet, two values of one key are not alternatives, so
// ram>=2048 ram<8192 is a range.
//
// Among the machines that satisfy every comparison, the unit goes to the
// least-loaded (fewest units); ties go to the lower machine ID. The others
// are turned down with the first comparison they fail; a comparison that
// does not parse is a mistake in the unit, so the unit is not placed and
// every machine gives that as the reason. Build and upload it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o compare.wasm .
//	fleetctl policy upload compare compare.wasm
package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/wasmfleet/fleet/sdk"
	"github.com/wasmfleet/fleet/sdk/xfleet"
)

func init() { sdk.Register(Place) }

func main() {}

// Place chooses the least-loaded machine whose metadata satisfies every
// comparison of the unit's MachineMetadata.
func Place(c *sdk.Cluster, u *sdk.Unit) sdk.Decision {
	var d sdk.Decision
	cmps, invalid := comparisons(u)
	if invalid != "" {
		d.RejectAll(c, invalid)
		return d
	}
	var fits sdk.Set
	for _, m := range c.Machines() {
		if why := mismatch(cmps, m.Metadata); why != "" {
			d.Reject(m, why)
			continue
		}
		fits.Add(m)
	}
	if best := c.LeastLoaded(fits); best != nil { // ties go to the lower ID
		d.Machine = best.ID
	}
	return d
}

// comparison is one expression of MachineMetadata: key, operator, value.
type comparison struct{ key, op, value string }

func (c comparison) String() string { return c.key + c.op + c.value }

// operators, two-character ones first so that >= is not read as > and "=2".
var operators = []string{">=", "<=", "!=", "==", ">", "<", "="}

// parse reads one expression, or says why it cannot.
func parse(expr string) (comparison, string) {
	i := strings.IndexAny(expr, "<>!=")
	if i < 0 {
		return comparison{}, "has no operator (one of " + strings.Join(operators, " ") + ")"
	}
	var c comparison
	for _, op := range operators {
		if strings.HasPrefix(expr[i:], op) {
			c = comparison{key: strings.TrimSpace(expr[:i]), op: op, value: strings.TrimSpace(expr[i+len(op):])}
			break
		}
	}
	switch {
	case c.op == "":
		return comparison{}, "has no operator (one of " + strings.Join(operators, " ") + ")"
	case c.key == "":
		return comparison{}, "has no key before " + c.op
	case c.value == "":
		return comparison{}, "has no value after " + c.op
	case strings.ContainsAny(c.value[:1], "<>!="):
		return comparison{}, "has a value starting with an operator"
	}
	return c, ""
}

// holds reports whether a machine's value of the key satisfies c.
func (c comparison) holds(have string) bool {
	if c.op == "=" {
		return have == c.value
	}
	n := compare(have, c.value)
	switch c.op {
	case "==":
		return n == 0
	case "!=":
		return n != 0
	case ">=":
		return n >= 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	default: // "<"
		return n < 0
	}
}

// compare orders a and b as numbers when both are finite numbers, as text
// otherwise.
func compare(a, b string) int {
	x, errA := strconv.ParseFloat(a, 64)
	y, errB := strconv.ParseFloat(b, 64)
	if errA != nil || errB != nil || math.IsInf(x, 0) || math.IsNaN(x) || math.IsInf(y, 0) || math.IsNaN(y) {
		return strings.Compare(a, b)
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// mismatch says why md fails the first comparison it fails, or "" when it
// satisfies them all.
func mismatch(cmps []comparison, md map[string]string) string {
	for _, c := range cmps {
		have, ok := md[c.key]
		if !ok {
			return "no " + c.key + " metadata (MachineMetadata " + c.String() + ")"
		}
		if !c.holds(have) {
			return c.key + "=" + have + " does not satisfy MachineMetadata " + c.String()
		}
	}
	return ""
}

// comparisons reads every comparison of the unit's MachineMetadata (and its
// deprecated spelling X-ConditionMachineMetadata), in file order, or gives
// the reason to report for the first one that does not parse.
func comparisons(u *sdk.Unit) ([]comparison, string) {
	var cmps []comparison
	for _, name := range []string{"MachineMetadata", "X-ConditionMachineMetadata"} {
		for _, v := range u.XFleet(name) {
			for _, expr := range xfleet.SplitQuoted(v) {
				c, why := parse(expr)
				if why != "" {
					return nil, "invalid " + name + " " + strconv.Quote(expr) + " in the unit: it " + why
				}
				cmps = append(cmps, c)
			}
		}
	}
	return cmps, ""
}
