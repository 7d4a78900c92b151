// Package config fills command-line flags from the environment and from a
// configuration file, the way fleet did: an explicit flag wins, then the
// environment (FLEET_<OPTION>, FLEETCTL_<OPTION>), then the file.
package config

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// EnvName is the environment variable for flag name under prefix:
// EnvName("FLEET_", "agent-ttl") is FLEET_AGENT_TTL.
func EnvName(prefix, flag string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// FileKey is the configuration-file key for a flag: agent-ttl is agent_ttl.
func FileKey(flag string) string { return strings.ReplaceAll(flag, "-", "_") }

// Apply sets every flag of fs that was not given on the command line from
// the environment variable EnvName(envPrefix, flag), else from file.
//
// # Errors
//
// A value the flag rejects gives an error naming where it came from.
func Apply(fs *pflag.FlagSet, envPrefix string, file map[string]string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		env := EnvName(envPrefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment %s=%q: %w", env, v, serr)
			}
			return
		}
		if v, ok := file[FileKey(f.Name)]; ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("config file option %s=%q: %w", FileKey(f.Name), v, serr)
			}
		}
	})
	return err
}

// ReadFile reads a fleet.conf: "key = value" lines, with "#" and ";"
// comments, optional double quotes around the value, and section headers
// ignored (fleet's file had one global section).
//
// # Errors
//
// A line that is not a comment, header or key=value is an error naming its
// line number.
func ReadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s:%d: want key = value, got %q", path, n, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}

// ParseMetadata reads fleet's "k=v,k=v" metadata. Entries are trimmed; a later
// duplicate key wins; an entry without "=" or with an empty key is an error.
func ParseMetadata(s string) (map[string]string, error) {
	md := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid metadata %q: want key=value pairs separated by commas, such as region=east,disk=ssd", part)
		}
		md[k] = v
	}
	return md, nil
}
