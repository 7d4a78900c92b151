package unitfile

import (
	"fmt"
	"path"
	"strings"
)

// validSuffixes are the unit types systemd knows; fleet accepted the same.
var validSuffixes = set("automount", "busname", "device", "mount", "path", "scope", "service",
	"slice", "snapshot", "socket", "swap", "target", "timer")

// templateSuffixes are the unit types that may be templates or instances.
var templateSuffixes = set("path", "service", "socket", "target", "timer")

// recognizedTypes are the suffixes fleetctl leaves alone when mangling a name;
// any other argument gets ".service" appended.
var recognizedTypes = []string{".service", ".socket", ".timer", ".path", ".device", ".mount", ".automount"}

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// ValidateName checks a unit name with fleet's rules (after systemd's).
//
// # Errors
//
// The error names the rule broken and what a valid name looks like.
func ValidateName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid unit name %q: %s (a valid name looks like web.service or web@1.service)", name, why)
	}
	if len(name) == 0 || len(name) > 256 {
		return bad("length must be 1 to 256 characters")
	}
	dot := strings.LastIndex(name, ".")
	if dot < 0 || dot == len(name)-1 {
		return bad("it needs a unit type suffix such as .service")
	}
	if strings.HasPrefix(name, "@") {
		return bad("it must not start with @")
	}
	suffix := name[dot+1:]
	if !validSuffixes[suffix] {
		return bad(fmt.Sprintf("unknown unit type %q", suffix))
	}
	if strings.Contains(name, "@") && !templateSuffixes[suffix] {
		return bad(fmt.Sprintf("unit type %q cannot be a template or instance (allowed: path, service, socket, target, timer)", suffix))
	}
	for _, r := range name[:dot] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)) {
			return bad(fmt.Sprintf("character %q is not allowed (use letters, digits and :-_.\\@)", r))
		}
	}
	if dot == 0 {
		return bad("the name before the type suffix is empty")
	}
	return nil
}

// Mangle turns a command-line argument into a unit name as fleetctl did: the
// base name of a path, with ".service" appended unless it already ends in a
// recognized unit type.
func Mangle(arg string) string {
	name := path.Base(arg)
	for _, t := range recognizedTypes {
		if strings.HasSuffix(name, t) {
			return name
		}
	}
	return name + ".service"
}

// NameInfo splits a unit name into its template parts.
type NameInfo struct {
	Name     string // foo@bar.service
	Prefix   string // foo
	Instance string // bar ("" for a template or a plain unit)
	Suffix   string // .service
}

// ParseName splits name into prefix, instance and suffix. The instance is what
// lies between the first "@" and the last ".".
func ParseName(name string) NameInfo {
	ni := NameInfo{Name: name}
	base := name
	if dot := strings.LastIndex(name, "."); dot >= 0 {
		base, ni.Suffix = name[:dot], name[dot:]
	}
	if at := strings.Index(base, "@"); at >= 0 {
		ni.Prefix, ni.Instance = base[:at], base[at+1:]
	} else {
		ni.Prefix = base
	}
	return ni
}

// IsTemplate reports whether the name is a template such as foo@.service.
func (ni NameInfo) IsTemplate() bool {
	return strings.Contains(ni.Name, "@") && ni.Instance == ""
}

// IsInstance reports whether the name is an instance such as foo@1.service.
func (ni NameInfo) IsInstance() bool { return ni.Instance != "" }

// Template is the template name an instance comes from: foo@1.service gives
// foo@.service. It is "" for a name that is not an instance.
func (ni NameInfo) Template() string {
	if !ni.IsInstance() {
		return ""
	}
	return ni.Prefix + "@" + ni.Suffix
}
