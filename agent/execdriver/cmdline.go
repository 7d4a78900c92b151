package execdriver

import (
	"fmt"
	"strings"
)

// command is one Exec*= line split into words.
type command struct {
	argv          []string
	ignoreFailure bool // "-" prefix: a failure does not fail the unit
}

// parseCommand splits an Exec line as systemd does for the common cases:
// words separated by blanks, double and single quotes group words, a
// backslash escapes the next character, and the prefixes "-@:+!" on the
// executable are read (only "-" has an effect here).
func parseCommand(line string) (command, error) {
	var c command
	line = strings.TrimSpace(line)
	for len(line) > 0 && strings.ContainsRune("-@:+!", rune(line[0])) {
		if line[0] == '-' {
			c.ignoreFailure = true
		}
		line = line[1:]
	}
	var cur strings.Builder
	var quote rune
	have, escaped := false, false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped, have = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, have = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if have {
				c.argv = append(c.argv, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if quote != 0 {
		return c, fmt.Errorf("unterminated quote in %q", line)
	}
	if have {
		c.argv = append(c.argv, cur.String())
	}
	if len(c.argv) == 0 {
		return c, fmt.Errorf("empty command")
	}
	return c, nil
}

// expand replaces the specifiers systemd would in a unit named name.
func expand(s string, spec map[byte]string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			if v, ok := spec[s[i+1]]; ok {
				b.WriteString(v)
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
