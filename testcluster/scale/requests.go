package scale

import (
	"net/http"
	"sort"
	"strings"
	"sync"
)

// RequestCounter counts HTTP requests to Consul by method and endpoint
// (the API path without the key or ID: "GET kv", "PUT agent/check/update").
type RequestCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

// Counts returns a copy of the counts.
func (c *RequestCounter) Counts() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func (c *RequestCounter) add(key string) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[key]++
	c.mu.Unlock()
}

// Endpoint is the part of a Consul API path that names the operation:
// /v1/kv/fleet/x is "kv", /v1/agent/check/update/ID is
// "agent/check/update", /v1/session/info/ID is "session/info".
func Endpoint(path string) string {
	p := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	switch p[0] {
	case "kv", "txn":
		return p[0]
	case "agent":
		if len(p) >= 3 && (p[1] == "check" || p[1] == "service") {
			return strings.Join(p[:3], "/")
		}
	}
	if len(p) >= 2 {
		return p[0] + "/" + p[1]
	}
	return p[0]
}

// IsRead reports whether a counted request ("GET kv") reads.
func IsRead(key string) bool { return strings.HasPrefix(key, "GET ") }

// Sorted returns the keys of counts in order.
func Sorted(counts map[string]int64) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// countingTransport counts each request and, with states, records the
// unit states it writes.
type countingTransport struct {
	next    http.RoundTripper
	counter *RequestCounter
	states  *StateLog // nil: none recorded
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.counter.add(r.Method + " " + Endpoint(r.URL.Path))
	if t.states == nil {
		return t.next.RoundTrip(r)
	}
	return t.states.roundTrip(t.next, r)
}
