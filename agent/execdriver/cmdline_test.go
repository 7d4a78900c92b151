package execdriver

import (
	"reflect"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		line   string
		argv   []string
		ignore bool
	}{
		{`/bin/sh -c "while true; do echo Hello World; sleep 1; done"`, []string{"/bin/sh", "-c", "while true; do echo Hello World; sleep 1; done"}, false},
		{`-/usr/bin/docker kill busybox1`, []string{"/usr/bin/docker", "kill", "busybox1"}, true},
		{`/bin/echo 'a b'  c\ d`, []string{"/bin/echo", "a b", "c d"}, false},
		{`@/bin/true`, []string{"/bin/true"}, false},
	} {
		c, err := parseCommand(tc.line)
		if err != nil {
			t.Errorf("parseCommand(%q): %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(c.argv, tc.argv) || c.ignoreFailure != tc.ignore {
			t.Errorf("parseCommand(%q) = %q ignore=%v, want %q ignore=%v", tc.line, c.argv, c.ignoreFailure, tc.argv, tc.ignore)
		}
	}
	for _, bad := range []string{``, `-`, `/bin/echo "open`} {
		if _, err := parseCommand(bad); err == nil {
			t.Errorf("parseCommand(%q) succeeded, want an error", bad)
		}
	}
}

func TestExpand(t *testing.T) {
	spec := map[byte]string{'n': "web@1.service", 'i': "1", '%': "%"}
	if got := expand("echo %n %i 100%% %z", spec); got != "echo web@1.service 1 100% %z" {
		t.Errorf("expand = %q", got)
	}
}
