package unitfile

import (
	"strings"
	"testing"
)

const myapp = `[Unit]
Description=MyApp

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"
`

func TestHashIgnoresCommentsAndSpacing(t *testing.T) {
	a, err := Parse(myapp)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("# my app\n[Unit]\nDescription = MyApp\n\n\n; another comment\n[Service]\nExecStart=/bin/sh -c \"while true; do echo Hello World; sleep 1; done\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("hashes differ:\n%s\n---\n%s", a, b)
	}
	c, _ := Parse(strings.Replace(myapp, "sleep 1", "sleep 2", 1))
	if a.Hash() == c.Hash() {
		t.Error("a changed command must change the hash")
	}
	if got := len(a.Hash().Short()); got != 7 {
		t.Errorf("short hash has %d characters, want 7", got)
	}
	h, err := ParseHash(a.Hash().String())
	if err != nil || h != a.Hash() {
		t.Errorf("ParseHash round trip: %v %v", h, err)
	}
}

func TestParseRejects(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"empty":              {"", "no options"},
		"only comments":      {"# nothing\n", "no options"},
		"no section":         {"ExecStart=/bin/true\n", "no options"},
		"broken section":     {"[Service\nExecStart=/bin/true\n", "does not parse"},
		"line too long":      {"[Service]\nExecStart=/bin/echo " + strings.Repeat("x", 3000) + "\n", "does not parse"},
		"invalid UTF-8":      {"[Service]\nExecStart=/bin/echo \xff\xfe\n", "not valid UTF-8"},
		"NUL byte":           {"[Service]\nExecStart=/bin/echo a\x00b\n", "NUL"},
		"trailing backslash": {"[Service]\nExecStart=/bin/echo x\\", "does not survive serialization"},
		"ten thousand lines": {"[Service]\n" + strings.Repeat("Environment=A=1\n", 10000), "the limit is 1024"},
		"oversized":          {"[Service]\n" + strings.Repeat("# "+strings.Repeat("x", 1000)+"\n", 300), "the limit is 262144"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(tc.body); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
