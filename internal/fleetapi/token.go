package fleetapi

import (
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"
)

// errNoToken refuses a request without a token where one is required.
var errNoToken = errorf(http.StatusUnauthorized,
	"a Consul ACL token is required: send it as Authorization: Bearer <token> or X-Consul-Token: <token>")

// RequestToken is the Consul ACL token a request carries: its
// Authorization: Bearer header, else its X-Consul-Token header; "" when
// neither.
func RequestToken(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(r.Header.Get("X-Consul-Token"))
}

// TokenClients gives each request a Consul client holding the request's
// own ACL token and nothing else, so the request may do exactly what that
// token may (Server.ClientFor). A request without one is refused with 401,
// unless OwnOnLoopback is set and it comes from a loopback address.
type TokenClients struct {
	// New makes a client for a token.
	New func(token string) (*api.Client, error)
	// Close, when set, releases a client that is dropped.
	Close func(*api.Client)
	// OwnOnLoopback, when set, is the client (fleetd's own, with fleetd's
	// token) a request without a token acts with when it comes from a
	// loopback address: a process on the machine gets what the unix
	// socket gives it. A request with a token still acts with its own.
	OwnOnLoopback *api.Client

	mu      sync.Mutex
	clients map[string]*api.Client
}

// maxTokenClients bounds the clients kept, one per token: past it they
// are all dropped and made again as needed.
const maxTokenClients = 64

// ClientFor is the client of r's token.
func (tc *TokenClients) ClientFor(r *http.Request) (*api.Client, error) {
	token := RequestToken(r)
	if token == "" {
		if tc.OwnOnLoopback != nil && fromLoopback(r) {
			return tc.OwnOnLoopback, nil
		}
		return nil, errNoToken
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if c := tc.clients[token]; c != nil {
		return c, nil
	}
	if len(tc.clients) >= maxTokenClients || tc.clients == nil {
		for _, c := range tc.clients {
			if tc.Close != nil {
				tc.Close(c)
			}
		}
		tc.clients = map[string]*api.Client{}
	}
	c, err := tc.New(token)
	if err != nil {
		return nil, err
	}
	tc.clients[token] = c
	return c, nil
}

// fromLoopback reports whether r came from a loopback address (all of
// 127.0.0.0/8, and ::1).
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
