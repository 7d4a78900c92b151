package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmfleet/fleet/agent"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/unitfile"
	"github.com/wasmfleet/fleet/testcluster"
)

// echoInspector answers with the unit's name: the test is about who may ask,
// not about what systemd says.
type echoInspector struct{}

func (echoInspector) Status(_ context.Context, name string, w io.Writer) error {
	_, err := fmt.Fprintf(w, "status of %s\n", name)
	return err
}

func (echoInspector) Journal(_ context.Context, name string, q agent.JournalQuery, w io.Writer) error {
	_, err := fmt.Fprintf(w, "journal of %s%s\n", name, q.Output)
	return err
}

// TestInspectFollowsConsulACLs runs the status server against a Consul with
// ACLs on: a token that may read a unit's key may read its status, others may
// not, and nobody learns anything about units this machine does not run.
func TestInspectFollowsConsulACLs(t *testing.T) {
	consul := testcluster.StartConsulWith(t, testcluster.ConsulOptions{ACLToken: "root-token"})
	admin, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(admin, "")
	ctx := context.Background()
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	for _, n := range []string{"web.service", "secret.service", "elsewhere.service"} {
		if err := reg.CreateJob(ctx, n, f, registry.Launched); err != nil {
			t.Fatal(err)
		}
	}
	webReader := testcluster.Token(t, admin, `key "fleet/jobs/web.service" { policy = "read" }`)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &agent.InspectServer{Registry: reg, Inspector: echoInspector{}, Log: slog.New(slog.DiscardHandler),
		Has: func(name string) bool { return name != "elsewhere.service" }}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = srv.Serve(sctx, l) }()

	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+path, nil)
		if token != "" {
			req.Header.Set("X-Consul-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, token string
		code        int
		body        string
	}{
		{"/v1/units/web.service/status", webReader, 200, "status of web.service"},
		{"/v1/units/web.service/journal?lines=5", webReader, 200, "journal of web.service"},
		{"/v1/units/web.service/journal?output=json", webReader, 200, "journal of web.servicejson"},
		{"/v1/units/web.service/journal?output=bogus", webReader, 400, "unknown journal output"},
		{"/v1/units/secret.service/status", webReader, 403, "may not read"},
		{"/v1/units/web.service/status", "", 403, "may not read"},
		{"/v1/units/web.service/status", "not-a-token", 403, ""},
		{"/v1/units/elsewhere.service/status", "root-token", 404, "not appear to be loaded"},
		{"/v1/units/nope.service/status", "root-token", 404, "does not exist"},
	} {
		code, body := get(tc.path, tc.token)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s with token %q: %d %q, want %d containing %q", tc.path, tc.token, code, body, tc.code, tc.body)
		}
	}
}
