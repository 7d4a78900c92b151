package registry

import (
	"errors"
	"strings"

	"github.com/hashicorp/consul/api"
)

// PermissionError is Consul refusing a request because the token lacks an
// ACL permission. What is Consul's own words, which name the permission and
// the resource ("lacks permission 'key:write' on \"fleet/units/...\"").
type PermissionError struct {
	What string
}

func (e *PermissionError) Error() string { return e.What }

// isPermissionDenied reports whether Consul's message is an ACL refusal.
func isPermissionDenied(what string) bool {
	return strings.Contains(what, "Permission denied") || strings.Contains(what, "ACL not found")
}

// AsPermissionError finds Consul's ACL refusal in err: a transaction's
// (PermissionError) or an HTTP 403 from any other endpoint.
func AsPermissionError(err error) (*PermissionError, bool) {
	var pe *PermissionError
	if errors.As(err, &pe) {
		return pe, true
	}
	var se api.StatusError
	if errors.As(err, &se) && se.Code == 403 {
		return &PermissionError{What: strings.TrimSpace(se.Body)}, true
	}
	if err != nil && isPermissionDenied(err.Error()) {
		return &PermissionError{What: err.Error()}, true
	}
	return nil, false
}
