package unitfile

import (
	"strings"
	"testing"
)

// TestFromOptions takes a unit sent as options, as fleet's HTTP API does,
// and refuses options its unit file would not give back as sent.
func TestFromOptions(t *testing.T) {
	ok := []Option{{Section: "Unit", Name: "Description", Value: "web"}, {Section: "Service", Name: "ExecStart", Value: "/bin/sleep 1"}}
	f, err := FromOptions(ok)
	if err != nil || f.String() != "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/sleep 1\n" {
		t.Fatalf("FromOptions(%v) = %q, %v", ok, f, err)
	}
	for _, c := range []struct {
		name string
		opts []Option
		want string
	}{
		{"none", nil, "no options"},
		{"padded value", []Option{{Section: "Service", Name: "ExecStart", Value: " /bin/true"}}, "would be stored as"},
		{"name with =", []Option{{Section: "Service", Name: "A=B", Value: "c"}}, "would be stored as"},
		{"value with a line break", []Option{{Section: "Service", Name: "ExecStart", Value: "a\nb"}}, ""},
		{"too many", make([]Option, MaxOptions+1), "limit"},
	} {
		_, err := FromOptions(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
