package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// Inspector is what a driver offers for "fleetctl status" and "fleetctl
// journal": the init system's own view of a unit and its output.
type Inspector interface {
	// Status writes the unit's status, as "systemctl status" shows it.
	Status(ctx context.Context, name string, w io.Writer) error
	// Journal writes the unit's last lines of output, and with follow
	// keeps writing new lines until ctx is done.
	Journal(ctx context.Context, name string, q JournalQuery, w io.Writer) error
}

// JournalQuery is what "fleetctl journal" asks for.
type JournalQuery struct {
	Lines  int
	Follow bool
	// Output is a journalctl output mode (JournalOutputs); "" is short.
	// Drivers without a journal print their plain log lines for every mode.
	Output string
}

// JournalOutputs are the journalctl output modes fleetctl journal --output
// accepts, as fleet passed them to journalctl.
var JournalOutputs = []string{"short", "short-iso", "short-iso-precise", "short-precise", "short-monotonic",
	"short-unix", "short-full", "verbose", "export", "json", "json-pretty", "json-sse", "json-seq", "cat", "with-unit"}

// InspectServer serves a machine's unit status and journal over HTTP, so
// fleetctl reads them without SSH. A caller may read a unit's status if its
// Consul token may read the unit's key in Consul: with ACLs on, fleet's
// access rules are Consul's.
type InspectServer struct {
	Registry  *registry.Registry
	Inspector Inspector
	Has       func(name string) bool // whether the unit is on this machine
	Log       *slog.Logger
}

// Serve answers on l until ctx is done.
func (s *InspectServer) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/units/{name}/status", s.status)
	mux.HandleFunc("GET /v1/units/{name}/journal", s.journal)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// authorize checks the caller's token may read the unit in Consul and that
// the unit is here; it writes the error response when not.
func (s *InspectServer) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	token := r.Header.Get("X-Consul-Token")
	if token == "" {
		// Not fleetd's own token: a caller without one gets what
		// Consul's anonymous token may do.
		token = "anonymous"
	}
	key := s.Registry.Prefix() + "jobs/" + name
	p, _, err := s.Registry.Client().KV().Get(key, (&api.QueryOptions{Token: token}).WithContext(r.Context()))
	var se api.StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		http.Error(w, "your Consul token may not read unit "+name, http.StatusForbidden)
		return "", false
	case err != nil:
		http.Error(w, "checking access with Consul: "+err.Error(), http.StatusBadGateway)
		return "", false
	case p == nil:
		http.Error(w, "Unit "+name+" does not exist.", http.StatusNotFound)
		return "", false
	case !s.Has(name):
		http.Error(w, "Unit "+name+" does not appear to be loaded on this machine.", http.StatusNotFound)
		return "", false
	}
	return name, true
}

func (s *InspectServer) status(w http.ResponseWriter, r *http.Request) {
	name, ok := s.authorize(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Inspector.Status(r.Context(), name, w); err != nil {
		fmt.Fprintf(w, "\nfleetd: %v\n", err)
	}
}

// flushWriter flushes after every write so a followed journal streams.
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

func (s *InspectServer) journal(w http.ResponseWriter, r *http.Request) {
	name, ok := s.authorize(w, r)
	if !ok {
		return
	}
	lines := 10
	if v := r.URL.Query().Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "lines must be a non-negative number", http.StatusBadRequest)
			return
		}
		lines = n
	}
	follow := strings.EqualFold(r.URL.Query().Get("follow"), "true") || r.URL.Query().Get("follow") == "1"
	output := r.URL.Query().Get("output")
	if output != "" && !slices.Contains(JournalOutputs, output) {
		http.Error(w, fmt.Sprintf("unknown journal output %q; use one of %s", output, strings.Join(JournalOutputs, ", ")), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var out io.Writer = w
	if f, ok := w.(http.Flusher); ok {
		out = flushWriter{w: w, f: f}
	}
	if err := s.Inspector.Journal(r.Context(), name, JournalQuery{Lines: lines, Follow: follow, Output: output}, out); err != nil && r.Context().Err() == nil {
		s.Log.Warn("journal failed", "unit", name, "err", err)
		fmt.Fprintf(out, "fleetd: %v\n", err)
	}
}
