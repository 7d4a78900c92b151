package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/wasmfleet/fleet/internal/registry"
)

// consulLacks finds the permission and resource in Consul's refusal:
// lacks permission 'key:write' on "fleet/units/…".
var consulLacks = regexp.MustCompile(`lacks permission '([^']+)' on "([^"]*)"`)

// anonymousAccessor is the AccessorID of Consul's anonymous token, which
// Consul uses when a request carries none.
const anonymousAccessor = "00000000-0000-0000-0000-000000000002"

// permissionErr turns Consul's ACL refusal into what the operator needs:
// which permission on what is missing, and which of fleet's roles
// (contrib/acl, docs/acl.md) grants it. Other errors pass unchanged.
func permissionErr(err error) error {
	pe, ok := registry.AsPermissionError(err)
	if !ok {
		return err
	}
	if strings.Contains(pe.What, "ACL not found") {
		return fmt.Errorf("Consul does not know the ACL token fleetctl sent (ACL not found): check --token, FLEETCTL_TOKEN and CONSUL_HTTP_TOKEN")
	}
	m := consulLacks.FindStringSubmatch(pe.What)
	if m == nil {
		return fmt.Errorf("Permission denied by Consul: the ACL token lacks a permission this command needs (%s); docs/acl.md lists what each role may do", pe.What)
	}
	perm, resource := m[1], m[2]
	token := "the ACL token"
	if strings.Contains(pe.What, anonymousAccessor) {
		token = "no ACL token was given (--token, FLEETCTL_TOKEN or CONSUL_HTTP_TOKEN), and Consul's anonymous token"
	}
	msg := fmt.Sprintf("Permission denied by Consul: %s lacks permission %q on %q", token, perm, resource)
	if role := roleFor(perm, resource); role != "" {
		msg += fmt.Sprintf("; fleet's %s role grants it (contrib/acl/%s.hcl, docs/acl.md): use a token with that policy", role, role)
	}
	return fmt.Errorf("%s", msg)
}

// roleFor names the role of contrib/acl whose policy grants perm on
// resource to a fleetctl user, or "" when no fleetctl role should have it
// (the schedule, the lock, machines' keys belong to fleetd).
func roleFor(perm, resource string) string {
	has := func(parts ...string) bool {
		for _, p := range parts {
			if strings.Contains(resource, p) {
				return true
			}
		}
		return false
	}
	switch {
	case strings.HasSuffix(perm, ":read"):
		return "viewer"
	case perm != "key:write":
		return ""
	case has("/policies/", "/policy-default", "-chunks/"):
		return "publisher"
	case has("/units/", "/jobs/", "/machine-metadata/"):
		return "operator"
	}
	return ""
}
