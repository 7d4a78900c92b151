package registry_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

// TestClientReadBytes: a client with ReadBytes counts exactly the bytes of
// the answers it reads, as the reader gets them (Consul may gzip an answer
// this large on the wire), with Debug on or off.
func TestClientReadBytes(t *testing.T) {
	consul := testcluster.StartConsulT(t)
	plain, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("fleet "), 2000)
	if _, err := plain.KV().Put(&api.KVPair{Key: "read-bytes/k", Value: value}, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(consul.URL() + "/v1/kv/read-bytes/k")
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, debug := range []bool{false, true} {
		var n atomic.Int64
		o := registry.ClientOptions{ReadBytes: func(b int) { n.Add(int64(b)) }}
		var log strings.Builder
		if debug {
			o.Debug = &log
		}
		c, err := registry.NewClientWith(consul.URL(), "", o)
		if err != nil {
			t.Fatal(err)
		}
		p, _, err := c.KV().Get("read-bytes/k", nil)
		if err != nil || p == nil || !bytes.Equal(p.Value, value) {
			t.Fatalf("debug %v: read %v, %v", debug, p, err)
		}
		if n.Load() != int64(len(answer)) {
			t.Errorf("debug %v: counted %d bytes read, the answer has %d", debug, n.Load(), len(answer))
		}
		if debug != strings.Contains(log.String(), "GET /v1/kv/read-bytes/k") {
			t.Errorf("debug %v: debug log %q", debug, log.String())
		}
	}
}
