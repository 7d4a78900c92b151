package unitfile

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: whatever bytes a user (or a hostile writer of Consul keys)
// hands it, Parse returns a file or an error, never panics, and a file it
// accepts survives its own round trip with the same hash and options, within
// the limits.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/sh -c \"echo hi\"\n",
		"[X-Fleet]\nMachineMetadata=\"a=b c\" d=e\nConflicts=web@*.service\nGlobal=true\n",
		"[Service]\nExecStart=/bin/echo \\\n  continued\n",
		"; comment\n# comment\n[Service]\nEnvironment=A=1 B=2\n",
		"[Service\nExecStart=x\n",
		"[Service]\nExecStart=\xff\n",
		"[Service]\nA=\x00\n",
		"[Service]\nExecStart=/bin/echo x\\", // found by fuzzing: a trailing backslash changed meaning once stored
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		u, err := Parse(body)
		if err != nil {
			if u != nil {
				t.Fatal("an error with a file")
			}
			return
		}
		if len(u.Options) == 0 || len(u.Options) > MaxOptions || len(body) > MaxBodyBytes || !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
			t.Fatalf("accepted a file outside the limits: %d options, %d bytes", len(u.Options), len(body))
		}
		again, err := Parse(u.String())
		if err != nil {
			t.Fatalf("the canonical form of an accepted file does not parse: %v\n%q", err, u.String())
		}
		if again.Hash() != u.Hash() || len(again.Options) != len(u.Options) {
			t.Fatalf("round trip changed the file:\n%q\n%q", u.String(), again.String())
		}
	})
}

// FuzzValidateName: a name that passes can never leave the units directory
// or smuggle bytes systemd does not accept, and Mangle never panics.
func FuzzValidateName(f *testing.F) {
	for _, seed := range []string{"web.service", "web@1.service", "../etc/passwd.service", "/abs.service",
		"a\x00b.service", "x.mount", "@.service", "web@.service", "ü.service", strings.Repeat("a", 300) + ".service"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		_ = Mangle(name)
		_ = ParseName(name)
		if ValidateName(name) != nil {
			return
		}
		// A file name in the units directory: no separator, not "." or "..".
		if len(name) > 256 || strings.ContainsAny(name, "/\x00 \n") || name == "." || name == ".." {
			t.Fatalf("accepted %q", name)
		}
		for _, r := range name {
			if r > 127 {
				t.Fatalf("accepted a non-ASCII name %q", name)
			}
		}
	})
}
