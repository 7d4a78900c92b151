package fleetapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/fleetapi"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/testcluster"
)

const machineID = "0b74315d25b2420598da488d181b35a7"

// world is a real Consul with one live machine, whose session also holds
// the leader lock, and the API served over it.
type world struct {
	t       *testing.T
	client  *api.Client
	reg     *registry.Registry
	session string
	srv     *httptest.Server
}

func newWorld(t *testing.T, tokenLimit int) *world {
	t.Helper()
	consul := testcluster.StartConsulT(t)
	client, err := consul.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	reg := registry.New(client, "")
	session, _, err := client.Session().Create(&api.SessionEntry{Behavior: api.SessionBehaviorDelete, LockDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &registry.Machine{ID: machineID, IP: "127.0.0.1", Metadata: map[string]string{"node": "fleet1"}}
	if err := reg.PublishMachine(ctx, m, session); err != nil {
		t.Fatal(err)
	}
	if ok, err := reg.AcquireLeader(ctx, session, machineID); !ok || err != nil {
		t.Fatalf("acquire the leader lock: %v %v", ok, err)
	}
	s := &fleetapi.Server{Consul: client, TokenLimit: tokenLimit, Version: "test"}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &world{t: t, client: client, reg: reg, session: session, srv: srv}
}

// do sends a request; body, when not "", is sent as JSON unless headers
// set a Content-Type ("-" sends none).
func (w *world) do(method, path, body string, contentType ...string) (int, string, http.Header) {
	w.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(contentType) == 0 && body != "" {
		contentType = []string{"application/json"}
	}
	for _, ct := range contentType {
		if ct != "-" {
			req.Header.Add("Content-Type", ct)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// keys is every key in Consul with its ModifyIndex.
func (w *world) keys() map[string]uint64 {
	w.t.Helper()
	pairs, _, err := w.client.KV().List("", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, p := range pairs {
		out[p.Key] = p.ModifyIndex
	}
	return out
}

func (w *world) job(name string) *registry.Job {
	w.t.Helper()
	j, err := w.reg.Job(context.Background(), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

// report publishes what the machine reports for the unit.
func (w *world) report(j *registry.Job, state registry.DesiredState, active, sub string) {
	w.t.Helper()
	st := &registry.UnitState{Name: j.Name, Machine: machineID, Hash: j.Hash.String(), State: state, Load: "loaded", Active: active, Sub: sub}
	errs, err := w.reg.Publish(context.Background(), []registry.Write{w.reg.StateWrite(st, w.session)})
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

const helloBody = `{"name":"hello.service","options":[{"section":"Unit","name":"Description","value":"Hello World"},{"section":"Service","name":"ExecStart","value":"/bin/sleep 1000"}]}`

func expect(t *testing.T, what string, gotCode int, got string, wantCode int, want string) {
	t.Helper()
	if gotCode != wantCode || got != want {
		t.Errorf("%s: got %d %s\nwant %d %s", what, gotCode, got, wantCode, want)
	}
}

// TestLifecycle takes a unit through fleetctl's calls and checks each
// answer and what the registry holds after it.
func TestLifecycle(t *testing.T) {
	w := newWorld(t, 0)
	ctx := context.Background()

	code, body, hdr := w.do("GET", "/fleet/v1/units?alt=json", "")
	expect(t, "no units", code, body, 200, `{}`)
	if hdr.Get("Server") != "fleetd/test" || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", hdr)
	}
	code, body, _ = w.do("GET", "/fleet/v1/machines", "")
	expect(t, "machines", code, body, 200, `{"machines":[{"id":"`+machineID+`","metadata":{"node":"fleet1"},"primaryIP":"127.0.0.1"}]}`)

	code, body, _ = w.do("PUT", "/fleet/v1/units/hello.service?alt=json", helloBody)
	expect(t, "create", code, body, 201, "")
	j := w.job("hello.service")
	if j.Desired != registry.Inactive || j.Unit.String() != "[Unit]\nDescription=Hello World\n\n[Service]\nExecStart=/bin/sleep 1000\n" {
		t.Fatalf("created %+v %q", j, j.Unit.String())
	}
	opts := `"options":[{"name":"Description","section":"Unit","value":"Hello World"},{"name":"ExecStart","section":"Service","value":"/bin/sleep 1000"}]`
	code, body, _ = w.do("GET", "/fleet/v1/units/hello.service", "")
	expect(t, "get", code, body, 200, `{"currentState":"inactive","desiredState":"inactive","name":"hello.service",`+opts+`}`)

	code, body, _ = w.do("PUT", "/fleet/v1/units/hello.service", `{"desiredState":"launched","name":"hello.service"}`)
	expect(t, "launch", code, body, 204, "")
	if j = w.job("hello.service"); j.Desired != registry.Launched {
		t.Fatalf("desired %s", j.Desired)
	}
	if ok, err := w.reg.Schedule(ctx, j, machineID, w.session); !ok || err != nil {
		t.Fatalf("schedule: %v %v", ok, err)
	}
	w.report(j, registry.Launched, "active", "running")
	code, body, _ = w.do("GET", "/fleet/v1/units/hello.service", "")
	expect(t, "launched", code, body, 200, `{"currentState":"launched","desiredState":"launched","machineID":"`+machineID+`","name":"hello.service",`+opts+`}`)
	stateJSON := `{"hash":"` + j.Hash.String() + `","machineID":"` + machineID + `","name":"hello.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}`
	code, body, _ = w.do("GET", "/fleet/v1/state/hello.service", "")
	expect(t, "state", code, body, 200, stateJSON)
	for _, q := range []string{"", "?unitName=hello.service", "?machineID=" + machineID} {
		code, body, _ = w.do("GET", "/fleet/v1/state"+q, "")
		expect(t, "states"+q, code, body, 200, `{"states":[`+stateJSON+`]}`)
	}
	for _, q := range []string{"?unitName=other.service", "?machineID=other"} {
		code, body, _ = w.do("GET", "/fleet/v1/state"+q, "")
		expect(t, "states"+q, code, body, 200, `{}`)
	}
	code, body, _ = w.do("GET", "/v1-alpha/units", "")
	expect(t, "legacy prefix", code, body, 200, `{"units":[{"currentState":"launched","desiredState":"launched","machineID":"`+machineID+`","name":"hello.service",`+opts+`}]}`)

	// Other options: the body is replaced, the desired state kept.
	code, body, _ = w.do("PUT", "/fleet/v1/units/hello.service", strings.Replace(helloBody, "1000", "2000", 1))
	expect(t, "replace", code, body, 201, "")
	if r := w.job("hello.service"); r.Hash == j.Hash || r.Desired != registry.Launched {
		t.Errorf("replaced: hash %s (was %s), desired %s", r.Hash, j.Hash, r.Desired)
	}
	// The same options and a desired state: only the state changes.
	code, body, _ = w.do("PUT", "/fleet/v1/units/hello.service", strings.Replace(helloBody, "1000", "2000", 1)[:len(helloBody)-1]+`,"desiredState":"loaded"}`)
	expect(t, "same body, loaded", code, body, 204, "")
	if r := w.job("hello.service"); r.Desired != registry.Loaded {
		t.Errorf("desired %s, want loaded", r.Desired)
	}

	code, body, _ = w.do("DELETE", "/fleet/v1/units/hello.service", "")
	expect(t, "destroy", code, body, 204, "")
	if _, err := w.reg.Job(ctx, "hello.service"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("after destroy: %v", err)
	}
}

// TestTemplates creates a template and an instance with a desired state,
// and refuses to activate the template.
func TestTemplates(t *testing.T) {
	w := newWorld(t, 0)
	tpl := `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo %i"}]}`
	code, body, _ := w.do("PUT", "/fleet/v1/units/echo@.service", tpl)
	expect(t, "template", code, body, 201, "")
	code, body, _ = w.do("PUT", "/fleet/v1/units/echo@1.service", tpl[:len(tpl)-1]+`,"desiredState":"launched"}`)
	expect(t, "instance", code, body, 201, "")
	if j := w.job("echo@1.service"); j.Desired != registry.Launched || j.Hash != w.job("echo@.service").Hash {
		t.Errorf("instance %+v", j)
	}
	before := w.keys()
	code, body, _ = w.do("PUT", "/fleet/v1/units/echo@.service", `{"desiredState":"launched"}`)
	if code != 400 || !strings.Contains(body, `cannot activate template \"echo@.service\"`) {
		t.Errorf("activate template: %d %s", code, body)
	}
	if after := w.keys(); !maps.Equal(before, after) {
		t.Errorf("a refused request wrote: %v -> %v", before, after)
	}
}

// TestRefused sends each kind of bad request, checks fleet's status and
// message, and that no key changed.
func TestRefused(t *testing.T) {
	w := newWorld(t, 0)
	if code, body, _ := w.do("PUT", "/fleet/v1/units/hello.service", helloBody); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	tpl := `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`
	if code, body, _ := w.do("PUT", "/fleet/v1/units/t@.service", tpl); code != 201 {
		t.Fatalf("create template: %d %s", code, body)
	}
	opt := func(section, name, value string) string {
		return fmt.Sprintf(`{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":%q,"name":%q,"value":%q}]}`, section, name, value)
	}
	for _, c := range []struct {
		name, method, path, body string
		contentType              []string
		code                     int
		message                  string // a part of the message; "" for an empty one
	}{
		{"no content type", "PUT", "/fleet/v1/units/new.service", helloBody, []string{"-"}, 415, "application/json"},
		{"text content type", "PUT", "/fleet/v1/units/new.service", helloBody, []string{"text/plain"}, 415, "application/json"},
		{"two content types", "PUT", "/fleet/v1/units/new.service", helloBody, []string{"application/json", "application/json"}, 415, "application/json"},
		{"unparsable body", "PUT", "/fleet/v1/units/new.service", `{"name":`, nil, 400, "unable to decode body: "},
		{"names differ", "PUT", "/fleet/v1/units/new.service", helloBody, nil, 400, `name in URL \"new.service\" differs from unit name in request body \"hello.service\"`},
		{"bad name", "PUT", "/fleet/v1/units/new", `{"options":[]}`, nil, 400, "new"},
		{"bad suffix", "PUT", "/fleet/v1/units/x.foo", tpl, nil, 400, "x.foo"},
		{"bad desired state", "PUT", "/fleet/v1/units/hello.service", `{"desiredState":"running"}`, nil, 400, `unknown desired state \"running\"`},
		{"new without options", "PUT", "/fleet/v1/units/new.service", `{"desiredState":"launched"}`, nil, 409, "unit does not exist and options field empty"},
		{"conflicting X-Fleet", "PUT", "/fleet/v1/units/new.service", `{"options":[{"section":"X-Fleet","name":"MachineID","value":"a"},{"section":"X-Fleet","name":"MachineOf","value":"b.service"}]}`, nil, 400, "MachineID cannot be used with Peers"},
		{"unknown X-Fleet option", "PUT", "/fleet/v1/units/new.service", opt("X-Fleet", "Nonsense", "1"), nil, 400, `unknown [X-Fleet] option \"Nonsense\"`},
		{"option not kept", "PUT", "/fleet/v1/units/new.service", opt("Service", "Environment", " padded"), nil, 400, "invalid unit options"},
		{"null option", "PUT", "/fleet/v1/units/new.service", `{"options":[null]}`, nil, 400, "invalid unit options"},
		{"existing without state", "PUT", "/fleet/v1/units/hello.service", `{"name":"hello.service"}`, nil, 409, "must provide DesiredState to update existing unit"},
		{"start a template", "PUT", "/fleet/v1/units/t@.service", `{"desiredState":"loaded"}`, nil, 400, `cannot activate template`},
		{"create an active template", "PUT", "/fleet/v1/units/u@.service", tpl[:len(tpl)-1] + `,"desiredState":"launched"}`, nil, 400, `cannot activate template`},
		{"destroy unknown", "DELETE", "/fleet/v1/units/nope.service", "", nil, 404, "unit does not exist"},
		{"get unknown", "GET", "/fleet/v1/units/nope.service", "", nil, 404, "unit does not exist"},
		{"state of unknown", "GET", "/fleet/v1/state/nope.service", "", nil, 404, "unit does not exist"},
		{"state of unplaced", "GET", "/fleet/v1/state/hello.service", "", nil, 404, "unit state does not exist"},
		{"post units", "POST", "/fleet/v1/units", tpl, nil, 405, "only GET supported against this resource"},
		{"post a unit", "POST", "/fleet/v1/units/hello.service", tpl, nil, 405, "only GET, PUT and DELETE supported"},
		{"delete machines", "DELETE", "/fleet/v1/machines", "", nil, 405, "only GET and PATCH supported"},
		{"root", "GET", "/", "", nil, 405, ""},
		{"prefix", "GET", "/fleet/v1", "", nil, 405, ""},
		{"unknown path", "GET", "/fleet/v1/nope", "", nil, 404, "not found"},
		{"garbage page token", "GET", "/fleet/v1/units?nextPageToken=%21%21", "", nil, 400, "nextPageToken"},
		{"page token of another limit", "GET", "/fleet/v1/units?nextPageToken=CgACAA==", "", nil, 400, "nextPageToken"},
		{"page zero", "GET", "/fleet/v1/machines?nextPageToken=ZAAAAA==", "", nil, 400, "nextPageToken"},
		{"bad metadata op", "PATCH", "/fleet/v1/machines", `[{"op":"move","path":"/m/metadata/k","value":{"value":"v"}}]`, nil, 400, "invalid op"},
		{"bad metadata path", "PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/m/k","value":{"value":"v"}}]`, nil, 400, "invalid path"},
		{"empty metadata value", "PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/m/metadata/a","value":{"value":"v"}},{"op":"add","path":"/m/metadata/k","value":{"value":""}}]`, nil, 400, "the value is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := w.keys()
			code, body, _ := w.do(c.method, c.path, c.body, c.contentType...)
			var e struct {
				Error struct {
					Code    int     `json:"code"`
					Message *string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Message == nil {
				t.Fatalf("%d %q is not fleet's error body: %v", code, body, err)
			}
			if code != c.code || e.Error.Code != c.code || !strings.Contains(body, c.message) || (c.message == "" && *e.Error.Message != "") {
				t.Errorf("got %d %s, want %d and a message with %q", code, body, c.code, c.message)
			}
			if after := w.keys(); !maps.Equal(before, after) {
				t.Errorf("a refused request wrote: %v -> %v", before, after)
			}
		})
	}
}

// TestPages walks the pages of units and states with a limit of 2.
func TestPages(t *testing.T) {
	w := newWorld(t, 2)
	for i := range 5 {
		name := fmt.Sprintf("u%d.service", i)
		if code, body, _ := w.do("PUT", "/fleet/v1/units/"+name, `{"options":[{"section":"Service","name":"ExecStart","value":"/bin/true"}]}`); code != 201 {
			t.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	var names []string
	token := ""
	for pages := 1; ; pages++ {
		code, body, _ := w.do("GET", "/fleet/v1/units?alt=json&nextPageToken="+token, "")
		var page fleetapi.UnitPage
		if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil {
			t.Fatalf("page %d: %d %s %v", pages, code, body, err)
		}
		for _, u := range page.Units {
			names = append(names, u.Name)
		}
		if page.NextPageToken == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
		if pages > 3 {
			t.Fatalf("more than 3 pages: %v", names)
		}
		token = page.NextPageToken
	}
	if strings.Join(names, " ") != "u0.service u1.service u2.service u3.service u4.service" {
		t.Errorf("units over pages: %v", names)
	}
	// fleet's own token for page 2 at its default limit of 100 is refused
	// here, where the limit is 2.
	if code, _, _ := w.do("GET", "/fleet/v1/units?nextPageToken=ZAACAA==", ""); code != 400 {
		t.Errorf("a token of limit 100: %d", code)
	}
}

// TestPageToken checks the token's encoding is fleet's: limit 100, page 2
// is ZAACAA==.
func TestPageToken(t *testing.T) {
	w := newWorld(t, 0)
	ctx := context.Background()
	for i := range 101 {
		m := &registry.Machine{ID: fmt.Sprintf("m%03d", i), IP: "127.0.0.1"}
		if err := w.reg.PublishMachine(ctx, m, w.session); err != nil {
			t.Fatal(err)
		}
	}
	var page fleetapi.MachinePage
	_, body, _ := w.do("GET", "/fleet/v1/machines", "")
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Machines) != 100 || page.NextPageToken != "ZAACAA==" {
		t.Fatalf("first page: %d machines, token %q, %v", len(page.Machines), page.NextPageToken, err)
	}
	_, body, _ = w.do("GET", "/fleet/v1/machines?nextPageToken=ZAACAA==", "")
	page = fleetapi.MachinePage{}
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Machines) != 2 || page.NextPageToken != "" {
		t.Fatalf("second page: %s", body)
	}
}

// TestMachineMetadata sets and removes dynamic metadata with PATCH.
func TestMachineMetadata(t *testing.T) {
	w := newWorld(t, 0)
	code, body, _ := w.do("PATCH", "/fleet/v1/machines", `[{"op":"add","path":"/`+machineID+`/metadata/disk","value":{"value":"ssd"}}]`)
	expect(t, "add", code, body, 204, "")
	code, body, _ = w.do("GET", "/fleet/v1/machines", "")
	expect(t, "merged", code, body, 200, `{"machines":[{"id":"`+machineID+`","metadata":{"disk":"ssd","node":"fleet1"},"primaryIP":"127.0.0.1"}]}`)
	code, body, _ = w.do("PATCH", "/fleet/v1/machines", `[{"op":"remove","path":"/`+machineID+`/metadata/disk"}]`)
	expect(t, "remove", code, body, 204, "")
	code, body, _ = w.do("GET", "/fleet/v1/machines", "")
	expect(t, "removed", code, body, 200, `{"machines":[{"id":"`+machineID+`","metadata":{"node":"fleet1"},"primaryIP":"127.0.0.1"}]}`)
	code, body, _ = w.do("GET", "/fleet/v1/discovery", "")
	if code != 200 || !strings.Contains(body, `"servicePath": "fleet/v1/"`) {
		t.Errorf("discovery: %d %.100s", code, body)
	}
}

// TestGlobal reads a global unit: no machine and no current state of its
// own, as fleet answered, and the state a machine running it reports.
func TestGlobal(t *testing.T) {
	w := newWorld(t, 0)
	body := `{"desiredState":"launched","options":[{"section":"Service","name":"ExecStart","value":"/bin/true"},{"section":"X-Fleet","name":"Global","value":"true"}]}`
	code, got, _ := w.do("PUT", "/fleet/v1/units/g.service", body)
	expect(t, "create", code, got, 201, "")
	j := w.job("g.service")
	w.report(j, registry.Launched, "active", "running")
	code, got, _ = w.do("GET", "/fleet/v1/units/g.service", "")
	expect(t, "get", code, got, 200, `{"desiredState":"launched","name":"g.service","options":[{"name":"ExecStart","section":"Service","value":"/bin/true"},{"name":"Global","section":"X-Fleet","value":"true"}]}`)
	code, got, _ = w.do("GET", "/fleet/v1/state/g.service", "")
	expect(t, "state", code, got, 200, `{"hash":"`+j.Hash.String()+`","machineID":"`+machineID+`","name":"g.service","systemdActiveState":"active","systemdLoadState":"loaded","systemdSubState":"running"}`)
}

// TestNewerSchema refuses writes with 503 when the cluster's keys are in a
// schema this build does not know, and writes nothing; reads still answer.
func TestNewerSchema(t *testing.T) {
	w := newWorld(t, 0)
	if _, err := w.client.KV().Put(&api.KVPair{Key: "fleet/schema", Value: []byte(`{"version":99}`)}, nil); err != nil {
		t.Fatal(err)
	}
	before := w.keys()
	code, body, _ := w.do("PUT", "/fleet/v1/units/hello.service", helloBody)
	if code != 503 || !strings.Contains(body, "schema version 99") {
		t.Errorf("create on a newer schema: %d %s", code, body)
	}
	if after := w.keys(); !maps.Equal(before, after) {
		t.Errorf("a refused request wrote: %v -> %v", before, after)
	}
	code, body, _ = w.do("GET", "/fleet/v1/units", "")
	expect(t, "list", code, body, 200, "{}")
}
