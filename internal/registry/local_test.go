package registry

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLoopbackUncompressed: a client of a Consul on this host asks for no
// gzip, which would cost CPU on both sides for nothing; one of a remote
// Consul does.
func TestLoopbackUncompressed(t *testing.T) {
	for _, tc := range []struct {
		addr string
		gzip bool
	}{{"127.0.0.1:8500", false}, {"localhost:8500", false}, {"[::1]:8500", false}, {"unix:///run/consul.sock", false},
		{"10.0.0.5:8500", true}, {"consul.example.com:8500", true}} {
		if got := !IsLocal(tc.addr); got != tc.gzip {
			t.Errorf("%s: compressed %v, want %v", tc.addr, got, tc.gzip)
		}
	}
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Accept-Encoding"))
		w.Header().Set("X-Consul-Index", "1")
		fmt.Fprint(w, "[]")
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer CloseIdle(c)
	if _, _, err := c.KV().List("fleet/", nil); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "" {
		t.Fatalf("Accept-Encoding sent to a Consul on 127.0.0.1: %q", got)
	}
}

// TestWaves: a write waits for every earlier write of its name; the
// others go together.
func TestWaves(t *testing.T) {
	var ws []Write
	for _, n := range []string{"a", "b", "a", "c", "a", "b"} {
		ws = append(ws, Write{Name: n})
	}
	got := fmt.Sprint(waves(ws))
	if want := "[[0 1 3] [2 5] [4]]"; got != want {
		t.Fatalf("waves = %s, want %s", got, want)
	}
}
