package fleetapi

import (
	_ "embed"
	"net/http"
)

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return errOnlyGet
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(discoveryJSON)
	return nil
}

// discoveryJSON is the API's discovery document, in Google's discovery
// format as fleet served it.
//
//go:embed discovery.json
var discoveryJSON []byte
