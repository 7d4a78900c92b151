package registry

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// NewClient returns a Consul client configured as the consul CLI would be
// (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, CONSUL_CLIENT_CERT and
// friends), with endpoint and token overriding the environment when given.
// An endpoint is a URL (http://127.0.0.1:8500, https://...) or host:port.
func NewClient(endpoint, token string) (*api.Client, error) {
	return NewClientWith(endpoint, token, ClientOptions{})
}

// ClientOptions tune a client beyond what the consul CLI's environment says.
type ClientOptions struct {
	// DialTimeout bounds connecting to Consul; zero keeps Go's default.
	// (A request's own time is not bounded: blocking queries wait minutes.)
	DialTimeout time.Duration
	// Debug, when set, gets one line per request: method, path, status and
	// time taken.
	Debug io.Writer
	// ReadBytes, when set, is called with the size of each piece of an
	// answer's body as the client reads it: the bytes this process takes
	// in from Consul (after Go's transparent gzip decoding, so what it
	// decodes), which fleetd exports as fleet_consul_read_bytes_total.
	// It is called from many goroutines at once.
	ReadBytes func(n int)
	// Transport, when set, adjusts the HTTP transport before use (its
	// connection pool), and Wrap wraps what sends each request (to count
	// them): for a harness whose one client stands for many fleetds, so
	// that they read and decode as fleetd does.
	Transport func(*http.Transport)
	Wrap      func(http.RoundTripper) http.RoundTripper
}

// NewClientWith is NewClient with options.
func NewClientWith(endpoint, token string, o ClientOptions) (*api.Client, error) {
	cfg := consulConfig(endpoint)
	if token != "" {
		cfg.Token = token
	}
	if o.DialTimeout > 0 {
		cfg.Transport.DialContext = (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
		cfg.Transport.TLSHandshakeTimeout = o.DialTimeout
	}
	// Consul gzips an answer for a client that accepts it, as Go's does
	// by default: on the loopback, to the local Consul agent fleetd talks
	// to, that is CPU spent on both sides to save nothing (a tenth of a
	// Consul server's CPU while it places units, measured).
	cfg.Transport.DisableCompression = IsLocal(cfg.Address)
	if o.Transport != nil {
		o.Transport(cfg.Transport)
	}
	hc, err := api.NewHttpClient(cfg.Transport, cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("configure Consul client for %s: %w", cfg.Address, err)
	}
	if o.Wrap != nil {
		hc.Transport = o.Wrap(hc.Transport)
	}
	if o.ReadBytes != nil {
		hc.Transport = readCountingTransport{next: hc.Transport, add: o.ReadBytes}
	}
	if o.Debug != nil {
		hc.Transport = debugTransport{next: hc.Transport, w: o.Debug}
	}
	hc.Transport = bodyTransport{next: hc.Transport}
	cfg.HttpClient = hc
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure Consul client for %s: %w", cfg.Address, err)
	}
	transports.Store(c, cfg.Transport)
	return c, nil
}

// ConsulTLS is how a client NewClient(endpoint, ...) makes reaches Consul:
// whether over TLS (https), and the TLS settings the environment gives it
// (CONSUL_CACERT, CONSUL_CAPATH, CONSUL_CLIENT_CERT, ...).
func ConsulTLS(endpoint string) (api.TLSConfig, bool) {
	cfg := consulConfig(endpoint)
	return cfg.TLSConfig, cfg.Scheme == "https" || strings.HasPrefix(cfg.Address, "https://")
}

// consulConfig is the consul CLI's configuration from the environment,
// with endpoint (a URL or host:port) winning over CONSUL_HTTP_ADDR.
func consulConfig(endpoint string) *api.Config {
	cfg := api.DefaultConfig()
	if endpoint == "" {
		return cfg
	}
	switch {
	case strings.HasPrefix(endpoint, "http://"):
		// The scheme stays DefaultConfig's: http, or https when
		// CONSUL_HTTP_SSL=true, which the consul CLI never downgrades.
		cfg.Address = strings.TrimPrefix(endpoint, "http://")
	case strings.HasPrefix(endpoint, "https://"):
		cfg.Scheme, cfg.Address = "https", strings.TrimPrefix(endpoint, "https://")
	default:
		cfg.Address = endpoint
	}
	cfg.Address = strings.TrimSuffix(cfg.Address, "/")
	return cfg
}

// transports holds each client NewClientWith made, with its transport:
// for CloseIdle, and for sendTxn, which sends and reads a transaction
// through bodyTransport only on such a client (after CloseIdle, through
// the API client alone).
var transports sync.Map // *api.Client -> *http.Transport

// CloseIdle closes the idle connections of a client NewClientWith made,
// which is done with: Consul limits the connections one address may hold
// (200 by default), and a process that makes many clients (tests running
// fleetctl in process) would otherwise keep theirs open until they time out.
func CloseIdle(c *api.Client) {
	if t, ok := transports.LoadAndDelete(c); ok {
		t.(*http.Transport).CloseIdleConnections()
	}
}

// IsLocal reports whether a Consul address (host:port, or a unix socket)
// is on this host.
func IsLocal(addr string) bool {
	if strings.HasPrefix(addr, "unix://") {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// debugTransport logs each request to Consul (never its token, which
// travels in a header).
type debugTransport struct {
	next http.RoundTripper
	w    io.Writer
}

func (t debugTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	took := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(t.w, "DEBUG consul %s %s: %v (%s)\n", r.Method, r.URL.RequestURI(), err, took)
	} else {
		fmt.Fprintf(t.w, "DEBUG consul %s %s: %s (%s)\n", r.Method, r.URL.RequestURI(), resp.Status, took)
	}
	return resp, err
}

// readCountingTransport reports the bytes of each answer's body as they
// are read (by the caller, or by the api client draining what it left).
type readCountingTransport struct {
	next http.RoundTripper
	add  func(int)
}

func (t readCountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err == nil && resp.Body != nil {
		resp.Body = countingBody{ReadCloser: resp.Body, add: t.add}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	add func(int)
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.add(n)
	}
	return n, err
}

// Endpoint describes where c talks to, for messages.
func Endpoint(endpoint string) string {
	if endpoint != "" {
		return endpoint
	}
	cfg := api.DefaultConfig()
	if strings.Contains(cfg.Address, "://") { // CONSUL_HTTP_ADDR=https://...
		return cfg.Address
	}
	return cfg.Scheme + "://" + cfg.Address
}
