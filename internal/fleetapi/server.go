package fleetapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/wasmfleet/fleet/internal/registry"
)

// DefaultTokenLimit is how many items a page holds unless Server says
// otherwise, as in fleet (token_limit).
const DefaultTokenLimit = 100

// Server answers fleet's HTTP API v1 from fleet's keys in Consul.
type Server struct {
	// Consul is the client every request reads and writes with, unless
	// ClientFor is set.
	Consul *api.Client
	// ClientFor, when set, gives the client a request acts with
	// (TokenClients: the request's own ACL token); an *Error it returns
	// is the answer, any other error a 500.
	ClientFor func(r *http.Request) (*api.Client, error)
	Prefix    string // fleet's key prefix; "" is registry.DefaultPrefix
	// TokenLimit is the number of items in a page, 1 to 65535; 0 is
	// DefaultTokenLimit.
	TokenLimit int
	Version    string // sent as Server: fleetd/<Version>
	Log        *slog.Logger
}

// Error is an answer other than success: fleet's error body with the HTTP
// status Code.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(code int, msg string) *Error { return &Error{Code: code, Message: msg} }

var (
	errNullOption    = errors.New("an option is null")
	errUnitNotFound  = errorf(http.StatusNotFound, "unit does not exist")
	errStateNotFound = errorf(http.StatusNotFound, "unit state does not exist")
	errOnlyGet       = errorf(http.StatusMethodNotAllowed, "only GET supported against this resource")
	errOnlyGetPatch  = errorf(http.StatusMethodNotAllowed, "only GET and PATCH supported against this resource")
	errUnitMethods   = errorf(http.StatusMethodNotAllowed, "only GET, PUT and DELETE supported against this resource")
	errBadPageToken  = errorf(http.StatusBadRequest, "invalid value for nextPageToken")
	errNotJSON       = errorf(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
	errNoSuchPath    = errorf(http.StatusNotFound, "not found")
)

// Prefixes are the paths the API is served under: fleet's and its legacy
// one.
var Prefixes = []string{"/fleet/v1", "/v1-alpha"}

// Handler is the API: every path of both prefixes; "/" and the prefixes
// themselves answer 405, other paths 404.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "fleetd/"+s.Version)
		// Who asks is settled first: nothing is answered to a request
		// that may not be, not even why its body is wrong.
		c, err := s.client(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
		for _, p := range Prefixes {
			if r.URL.Path == p || r.URL.Path == p+"/" {
				s.fail(w, r, errorf(http.StatusMethodNotAllowed, ""))
				return
			}
			if rest, ok := strings.CutPrefix(r.URL.Path, p+"/"); ok {
				s.route(w, r, rest)
				return
			}
		}
		if r.URL.Path == "/" {
			s.fail(w, r, errorf(http.StatusMethodNotAllowed, ""))
			return
		}
		s.fail(w, r, errNoSuchPath)
	})
}

// route sends a request for path (below a prefix) to its handler.
func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	collection, name, named := strings.Cut(path, "/")
	var err error
	switch {
	case collection == "discovery" && !named:
		err = s.discovery(w, r)
	case collection == "machines" && !named:
		err = s.machines(w, r)
	case collection == "units" && !named:
		err = s.units(w, r)
	case collection == "units" && name != "":
		err = s.unit(w, r, name)
	case collection == "state" && !named:
		err = s.states(w, r)
	case collection == "state" && name != "":
		err = s.state(w, r, name)
	default:
		err = errNoSuchPath
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

// clientKey holds the Consul client of a request in its context.
type clientKey struct{}

// client is the Consul client request r acts with.
func (s *Server) client(r *http.Request) (*api.Client, error) {
	if s.ClientFor == nil {
		return s.Consul, nil
	}
	return s.ClientFor(r) // an *Error in its error is answered as such (fail)
}

// registry is what a request reads and writes with: a Registry of its own,
// so the key schema is read afresh for each write.
func (s *Server) registry(r *http.Request) *registry.Registry {
	return registry.New(r.Context().Value(clientKey{}).(*api.Client), s.Prefix)
}

// fail sends err as fleet's error body: an *Error as it is, a refusal of
// the key schema as 503, of an ACL as 403, anything else (Consul did not
// answer, say) as 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	var se *registry.SchemaError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &se):
		e = errorf(http.StatusServiceUnavailable, err.Error())
	default:
		if pe, ok := registry.AsPermissionError(err); ok {
			e = errorf(http.StatusForbidden, pe.Error())
		} else {
			e = errorf(http.StatusInternalServerError, err.Error())
		}
	}
	if e.Code >= 500 && s.Log != nil {
		s.Log.Error("fleet API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{}
	body.Error.Code, body.Error.Message = e.Code, e.Message
	s.send(w, e.Code, body)
}

// send writes v as JSON with the status code.
func (s *Server) send(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":{"code":500,"message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (s *Server) limit() int {
	if s.TokenLimit <= 0 || s.TokenLimit > 0xffff {
		return DefaultTokenLimit
	}
	return s.TokenLimit
}

// page is the slice [start, end) of n items that the request's
// nextPageToken asks for, and the token of the page after it ("" on the
// last). A token is base64url of two little-endian uint16, the limit and
// the page, numbered from 1; one made with another limit is refused.
func (s *Server) page(r *http.Request, n int) (start, end int, next string, err error) {
	limit, pageNo := s.limit(), 1
	if t := r.URL.Query().Get("nextPageToken"); t != "" {
		b, derr := base64.URLEncoding.DecodeString(t)
		if derr != nil || len(b) != 4 {
			return 0, 0, "", errBadPageToken
		}
		l, p := int(binary.LittleEndian.Uint16(b)), int(binary.LittleEndian.Uint16(b[2:]))
		if l != limit || p == 0 {
			return 0, 0, "", errBadPageToken
		}
		pageNo = p
	}
	start = min((pageNo-1)*limit, n)
	end = min(start+limit, n)
	if end < n {
		b := make([]byte, 4)
		binary.LittleEndian.PutUint16(b, uint16(limit))
		binary.LittleEndian.PutUint16(b[2:], uint16(pageNo+1))
		next = base64.URLEncoding.EncodeToString(b)
	}
	return start, end, next, nil
}
