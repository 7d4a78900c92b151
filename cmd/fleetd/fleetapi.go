package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/fleetapi"
	"github.com/wasmfleet/fleet/internal/registry"
	"github.com/wasmfleet/fleet/internal/version"
)

// defaultFleetAPISocket is where fleet's own fleetctl and Go client look
// for fleet's HTTP API (their default endpoint is unix:///var/run/fleet.sock).
const defaultFleetAPISocket = "/var/run/fleet.sock"

// listenFleetAPI takes the sockets systemd passes fleetd (socket
// activation: contrib/fleet.socket), or else opens the unix socket that
// serves fleet's HTTP API v1 (--fleet-api-socket; "" for none): mode 0600, or 0660 owned by
// --fleet-api-group. A socket left by a fleetd that is gone is replaced.
// When the default path cannot be used (fleetd is not root, say) the API
// is off and a warning says why; a path asked for must work.
func (o *agentOptions) listenFleetAPI(d *daemon) error {
	activated, err := activation.Listeners()
	if err != nil {
		return fmt.Errorf("the sockets systemd passed: %w", err)
	}
	for _, l := range activated {
		if l != nil { // a passed descriptor that is no stream socket is not ours
			d.fleetAPI = append(d.fleetAPI, l)
		}
	}
	if len(d.fleetAPI) > 0 {
		d.log.Info("serving fleet's HTTP API on the sockets systemd passed (fleet.socket); --fleet-api-socket is not created", "sockets", len(d.fleetAPI))
		return nil
	}
	if o.fleetAPISocket == "" {
		return nil
	}
	l, err := listenUnix(o.fleetAPISocket, o.fleetAPIGroup)
	if err != nil {
		if o.loaded["fleet-api-socket"] != defaultFleetAPISocket || o.cmdline["fleet-api-socket"] != "" || o.fleetAPIGroup != "" {
			return fmt.Errorf("fleet's HTTP API on --fleet-api-socket: %w", err)
		}
		d.log.Warn("no fleet HTTP API: the default socket cannot be used; set --fleet-api-socket (\"\" for none)", "err", err)
		return nil
	}
	d.fleetAPI = append(d.fleetAPI, l)
	d.log.Info("serving fleet's HTTP API", "endpoint", "unix://"+o.fleetAPISocket)
	return nil
}

// listenUnix listens on a unix socket at path, readable and writable by
// root alone, or also by group when one is named (a name or a GID).
func listenUnix(path, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g, err = user.LookupGroupId(group); err != nil {
				return nil, fmt.Errorf("no group %q: %w", group, err)
			}
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("group %q has GID %q", group, g.Gid)
		}
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		err = os.Chown(path, -1, gid)
	}
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("set the mode of %s: %w", path, err)
	}
	return l, nil
}

// removeStaleSocket removes the socket at path if nothing answers on it.
// Anything else there is an error: another fleetd serving, or a file that
// is no socket.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another fleetd serves it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s exists and cannot be checked: %w", path, err)
	}
	return os.Remove(path)
}

// listenFleetAPITCP opens --fleet-api-addr, where fleet's HTTP API answers
// only requests that carry a Consul ACL token, each acting with exactly
// that token's rights (and, with --fleet-api-own-token-on-loopback, those
// without one from a loopback address, acting with fleetd's own); "" (the
// default) for none.
func (o *agentOptions) listenFleetAPITCP(d *daemon) error {
	if o.fleetAPIAddr == "" {
		return nil
	}
	l, err := d.listenTCP(o.fleetAPIAddr)
	if err != nil {
		return fmt.Errorf("fleet's HTTP API on --fleet-api-addr: %w", err)
	}
	d.fleetAPITCP = l
	d.log.Info("serving fleet's HTTP API to requests with a Consul ACL token", "endpoint", d.scheme()+"://"+l.Addr().String(),
		"own_token_on_loopback", o.fleetAPIOwnToken)
	return nil
}

// serveFleetAPI answers fleet's HTTP API on every listener until ctx is
// done: as this fleetd on its sockets, with each request's own token on
// --fleet-api-addr.
func (o *agentOptions) serveFleetAPI(ctx context.Context, d *daemon) {
	api := fleetapi.Server{Consul: d.reg.Client(), Prefix: o.prefix, TokenLimit: o.tokenLimit,
		Version: version.Version, Log: d.log.With("role", "fleet-api")}
	var wg sync.WaitGroup
	if len(d.fleetAPI) > 0 {
		wg.Go(func() { serveHTTP(ctx, d.log, api.Handler(), d.fleetAPI...) })
	}
	if d.fleetAPITCP != nil {
		tokens := &fleetapi.TokenClients{
			New:   func(token string) (*consulapi.Client, error) { return registry.NewClient(o.endpoint, token) },
			Close: registry.CloseIdle,
		}
		if o.fleetAPIOwnToken {
			tokens.OwnOnLoopback = d.reg.Client()
		}
		withTokens := api
		withTokens.Consul, withTokens.ClientFor = nil, tokens.ClientFor
		wg.Go(func() { serveHTTP(ctx, d.log, withTokens.Handler(), d.fleetAPITCP) })
	}
	wg.Wait()
}

// serveHTTP serves h on listeners until ctx is done.
func serveHTTP(ctx context.Context, log *slog.Logger, h http.Handler, listeners ...net.Listener) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("fleet HTTP API stopped", "addr", l.Addr().String(), "err", err)
			}
		})
	}
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	wg.Wait()
}
