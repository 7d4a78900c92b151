package testcluster

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// FleetAPIClient is an HTTP client for fleet's HTTP API at endpoint: a
// unix://PATH endpoint is dialled whatever the URL's host (fleet's clients
// send Host: domain-sock), any other is used as it is.
func FleetAPIClient(endpoint string) *http.Client {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		return &http.Client{}
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}
