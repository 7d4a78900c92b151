package unitfile

import "testing"

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web.service", true},
		{"web@1.service", true},
		{"web@.service", true},
		{"a:b-c_d.e\\f.socket", true},
		{"web.timer", true},
		{"", false},
		{"web", false},
		{"web.", false},
		{"@web.service", false},
		{"web.unknown", false},
		{"web@1.mount", false},
		{"we b.service", false},
		{"web/1.service", false},
		{".service", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestMangle(t *testing.T) {
	for in, want := range map[string]string{
		"myapp":               "myapp.service",
		"myapp.service":       "myapp.service",
		"units/myapp.service": "myapp.service",
		"apache@1":            "apache@1.service",
		"web.socket":          "web.socket",
		"web.target":          "web.target.service", // fleetctl did not recognize .target
	} {
		if got := Mangle(in); got != want {
			t.Errorf("Mangle(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseName(t *testing.T) {
	ni := ParseName("apache@web.1.service")
	if ni.Prefix != "apache" || ni.Instance != "web.1" || ni.Suffix != ".service" {
		t.Errorf("ParseName = %+v", ni)
	}
	if !ni.IsInstance() || ni.IsTemplate() || ni.Template() != "apache@.service" {
		t.Errorf("instance info wrong: %+v template %q", ni, ni.Template())
	}
	tpl := ParseName("apache@.service")
	if !tpl.IsTemplate() || tpl.IsInstance() || tpl.Template() != "" {
		t.Errorf("template info wrong: %+v", tpl)
	}
	if plain := ParseName("web.service"); plain.IsTemplate() || plain.IsInstance() {
		t.Errorf("plain unit info wrong: %+v", plain)
	}
}
