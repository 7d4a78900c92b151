package registry

import (
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// NewClient returns a Consul client configured as the consul CLI would be
// (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, CONSUL_CLIENT_CERT and
// friends), with endpoint and token overriding the environment when given.
// An endpoint is a URL (http://127.0.0.1:8500, https://...) or host:port.
func NewClient(endpoint, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if endpoint != "" {
		switch {
		case strings.HasPrefix(endpoint, "http://"):
			cfg.Scheme, cfg.Address = "http", strings.TrimPrefix(endpoint, "http://")
		case strings.HasPrefix(endpoint, "https://"):
			cfg.Scheme, cfg.Address = "https", strings.TrimPrefix(endpoint, "https://")
		default:
			cfg.Address = endpoint
		}
		cfg.Address = strings.TrimSuffix(cfg.Address, "/")
	}
	if token != "" {
		cfg.Token = token
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure Consul client for %s: %w", cfg.Address, err)
	}
	return c, nil
}

// Endpoint describes where c talks to, for messages.
func Endpoint(endpoint string) string {
	if endpoint != "" {
		return endpoint
	}
	cfg := api.DefaultConfig()
	return cfg.Scheme + "://" + cfg.Address
}
