package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spf13/pflag"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "fleet.conf")
	if err := os.WriteFile(conf, []byte("# fleet\n[global]\nmetadata = \"region=file\"\npublic_ip=10.0.0.1\nagent_ttl = 7s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	md := fs.String("metadata", "", "")
	ip := fs.String("public-ip", "", "")
	ttl := fs.Duration("agent-ttl", 0, "")
	if err := fs.Parse([]string{"--public-ip", "10.9.9.9"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEET_METADATA", "region=env")
	if err := Apply(fs, "FLEET_", file); err != nil {
		t.Fatal(err)
	}
	if *md != "region=env" || *ip != "10.9.9.9" || ttl.String() != "7s" {
		t.Errorf("metadata=%q public-ip=%q agent-ttl=%s; want env, flag and file to win in turn", *md, *ip, ttl)
	}
	t.Setenv("FLEET_AGENT_TTL", "soon")
	fs2 := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs2.Duration("agent-ttl", 0, "")
	if err := Apply(fs2, "FLEET_", nil); err == nil {
		t.Error("a bad duration in the environment must be an error")
	}
}

func TestParseMetadata(t *testing.T) {
	md, err := ParseMetadata(" region = east, disk=ssd ,region=west")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"region": "west", "disk": "ssd"}; !reflect.DeepEqual(md, want) {
		t.Errorf("ParseMetadata = %v, want %v", md, want)
	}
	for _, bad := range []string{"region", "=east"} {
		if _, err := ParseMetadata(bad); err == nil {
			t.Errorf("ParseMetadata(%q) succeeded", bad)
		}
	}
}
