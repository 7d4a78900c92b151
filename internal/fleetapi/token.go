package fleetapi

import (
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
// token may (Server.ClientFor). A request without one is refused with 401.
type TokenClients struct {
	// New makes a client for a token.
	New func(token string) (*api.Client, error)
	// Close, when set, releases a client that is dropped.
	Close func(*api.Client)

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
