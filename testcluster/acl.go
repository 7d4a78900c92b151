package testcluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"
)

// policies numbers the ACL policies Token creates: Consul wants each name
// once.
var policies atomic.Int64

// Token creates, through admin (a management token's client), an ACL
// token holding one policy for each of rules, and returns its secret.
func Token(t testing.TB, admin *api.Client, rules ...string) string {
	t.Helper()
	var links []*api.ACLTokenPolicyLink
	for _, r := range rules {
		p, _, err := admin.ACL().PolicyCreate(&api.ACLPolicy{Name: fmt.Sprintf("test-%d", policies.Add(1)), Rules: r}, nil)
		if err != nil {
			t.Fatalf("ACL policy: %v\n%s", err, r)
		}
		links = append(links, &api.ACLTokenPolicyLink{ID: p.ID})
	}
	tok, _, err := admin.ACL().TokenCreate(&api.ACLToken{Policies: links}, nil)
	if err != nil {
		t.Fatalf("ACL token: %v", err)
	}
	return tok.SecretID
}
