package unitfile

import (
	"reflect"
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

func TestMachineMetadata(t *testing.T) {
	f, err := Parse(`[X-Fleet]
MachineMetadata=region=us-east
MachineMetadata=region=us-west
MachineMetadata="disk=ssd" "rack=2"
MachineMetadata=broken
X-ConditionMachineMetadata=os=linux
`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"region": {"us-east", "us-west"}, "disk": {"ssd"}, "rack": {"2"}, "os": {"linux"}}
	got := f.MachineMetadata()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MachineMetadata() = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		md   map[string]string
		want bool
	}{
		{map[string]string{"region": "us-west", "disk": "ssd", "rack": "2", "os": "linux"}, true},
		{map[string]string{"region": "eu", "disk": "ssd", "rack": "2", "os": "linux"}, false},
		{map[string]string{"region": "us-east", "rack": "2", "os": "linux"}, false},
	} {
		if got := MatchesMetadata(want, tc.md); got != tc.want {
			t.Errorf("MatchesMetadata(%v) = %v, want %v", tc.md, got, tc.want)
		}
	}
	if !MatchesMetadata(nil, nil) {
		t.Error("no requirement must match any machine")
	}
}
