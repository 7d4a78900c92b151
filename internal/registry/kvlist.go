package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// list reads every key under prefix, as KV().List does. On a client made
// by NewClientWith, the answer's body is set aside whole (bodyTransport)
// and decoded by decodeKVList, which does in one pass what encoding/json's
// reflection does in several: at 100,000 keys, most of the CPU a list read
// costs the process that reads it.
func (r *Registry) list(prefix string, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
	sink := &bodySink{}
	q = q.WithContext(context.WithValue(q.Context(), bodySinkKey{}, sink))
	pairs, meta, err := r.c.KV().List(prefix, q)
	if err != nil || sink.body == nil {
		return pairs, meta, err
	}
	pairs, err = decodeKVList(sink.body)
	return pairs, meta, err
}

// bodySinkKey is the context key of a request whose answer's body
// bodyTransport hands to the bodySink instead of the Consul API client.
type bodySinkKey struct{}

type bodySink struct{ body []byte }

// bodyTransport hands the body of a successful answer to the request's
// bodySink, when it has one, and gives the API client an empty list to
// decode in its place; the status and headers (the index of a blocking
// query) go to the API client as they came.
type bodyTransport struct{ next http.RoundTripper }

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	sink, _ := r.Context().Value(bodySinkKey{}).(*bodySink)
	if err != nil || sink == nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	defer resp.Body.Close()
	if sink.body, err = readBody(resp.Body, resp.ContentLength); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader([]byte("[]")))
	resp.ContentLength = 2
	return resp, nil
}

// readBody reads a body of size bytes (-1: unknown). A large answer comes
// chunked, of unknown size: it is read into pieces of growing size and
// copied once into a buffer of its size, where a buffer grown as it fills
// would copy it, and the operating system map the memory, many times.
func readBody(r io.Reader, size int64) ([]byte, error) {
	if size >= 0 {
		b := make([]byte, size)
		_, err := io.ReadFull(r, b)
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	var pieces [][]byte
	total := 0
	for n := 64 << 10; ; n = min(2*n, 4<<20) {
		p := make([]byte, n)
		got, err := io.ReadFull(r, p)
		pieces, total = append(pieces, p[:got]), total+got
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(pieces) == 1 {
		return pieces[0], nil
	}
	b := make([]byte, 0, total)
	for _, p := range pieces {
		b = append(b, p...)
	}
	return b, nil
}

// decodeKVList decodes Consul's answer to a list read (a JSON array of
// KV pairs). It reads the fields fleet uses of the shape Consul writes, any
// spacing, and string escapes; anything else it does not expect, it hands
// to encoding/json, so the answer is always what json.Unmarshal gives.
func decodeKVList(b []byte) (api.KVPairs, error) {
	if pairs, ok := scanKVList(b); ok {
		return pairs, nil
	}
	var pairs api.KVPairs
	if err := json.Unmarshal(b, &pairs); err != nil {
		return nil, errors.New("Consul's answer is not a list of keys: " + err.Error())
	}
	return pairs, nil
}

// scanKVList is decodeKVList's one pass; ok is false when b holds
// anything it does not read.
func scanKVList(b []byte) (pairs api.KVPairs, ok bool) {
	s := scanner{b: b}
	pairs = api.KVPairs{}
	if !s.byte('[') {
		return nil, false
	}
	if s.byte(']') {
		return pairs, s.end()
	}
	for {
		p, ok := s.pair()
		if !ok {
			return nil, false
		}
		pairs = append(pairs, p)
		if s.byte(']') {
			return pairs, s.end()
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// scanner reads JSON from b at i.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\t' || s.b[s.i] == '\r') {
		s.i++
	}
}

// byte consumes c after any spacing, if c comes next.
func (s *scanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// object reads a JSON object, calling member with each member's name to
// read its value; false when no object comes next or member fails.
func (s *scanner) object(member func(name string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		name, ok := s.str()
		if !ok || !s.byte(':') || !member(name) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// pair reads one KV pair object.
func (s *scanner) pair() (*api.KVPair, bool) {
	p := &api.KVPair{}
	ok := s.object(func(name string) (ok bool) {
		switch name {
		case "Key":
			p.Key, ok = s.str()
		case "Session":
			p.Session, ok = s.str()
		case "Namespace":
			p.Namespace, ok = s.str()
		case "Partition":
			p.Partition, ok = s.str()
		case "Value":
			p.Value, ok = s.value()
		case "LockIndex":
			p.LockIndex, ok = s.uint()
		case "Flags":
			p.Flags, ok = s.uint()
		case "CreateIndex":
			p.CreateIndex, ok = s.uint()
		case "ModifyIndex":
			p.ModifyIndex, ok = s.uint()
		}
		return ok
	})
	return p, ok
}

// str reads a JSON string: a slice of b copied when it has no escapes,
// else what encoding/json makes of it.
func (s *scanner) str() (string, bool) {
	raw, escaped, ok := s.rawString()
	if !ok {
		return "", false
	}
	if !escaped {
		return string(raw[1 : len(raw)-1]), true
	}
	var v string
	return v, json.Unmarshal(raw, &v) == nil
}

// rawString reads a JSON string's bytes, quotes included.
func (s *scanner) rawString() (raw []byte, escaped, ok bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '\\':
			escaped = true
			s.i++
		case c == '"':
			s.i++
			return s.b[start:s.i], escaped, true
		case c < 0x20:
			return nil, false, false
		}
	}
	return nil, false, false
}

// value reads a pair's Value: base64 in a JSON string, or null.
func (s *scanner) value() ([]byte, bool) {
	s.space()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return nil, true
	}
	raw, escaped, ok := s.rawString()
	if !ok || escaped {
		return nil, false
	}
	enc := raw[1 : len(raw)-1]
	v := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(v, enc)
	return v[:n], err == nil
}

// uint reads a JSON number that is a whole number of 64 bits at most.
func (s *scanner) uint() (uint64, bool) {
	s.space()
	start := s.i
	var n uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		d := uint64(s.b[s.i] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, s.i > start
}

// scanStrings reads a JSON object whose values are all strings, handing
// each member to set; false when b is anything else, or set refuses a
// member (a name it does not know), and the caller then hands b to
// encoding/json.
func scanStrings(b []byte, set func(name, value string) bool) bool {
	s := scanner{b: b}
	return s.object(func(name string) bool {
		v, ok := s.str()
		return ok && set(name, v)
	}) && s.end()
}

// unmarshalState is json.Unmarshal of a unit's state, in one pass when it
// is the object of strings agents write (every state, at 100,000 units
// most of what list-units reads).
func unmarshalState(b []byte, st *UnitState) error {
	if scanStrings(b, st.set) {
		return nil
	}
	*st = UnitState{}
	return json.Unmarshal(b, st)
}

// set sets the field of st whose JSON name is name to v; false when st
// has no such field of strings.
func (st *UnitState) set(name, v string) bool {
	switch name {
	case "name":
		st.Name = v
	case "machine":
		st.Machine = v
	case "hash":
		st.Hash = v
	case "state":
		st.State = DesiredState(v)
	case "load":
		st.Load = v
	case "active":
		st.Active = v
	case "sub":
		st.Sub = v
	case "error":
		st.Error = v
	default:
		return false
	}
	return true
}

// unmarshalJob is json.Unmarshal of a job, in one pass when it is the
// object of strings fleetctl writes (the leader reads every job at each
// change of one).
func unmarshalJob(b []byte, o *jobObject) error {
	if scanStrings(b, func(name, v string) bool {
		switch name {
		case "name":
			o.Name = v
		case "hash":
			o.Hash = v
		case "desired":
			o.Desired = DesiredState(v)
		default:
			return false
		}
		return true
	}) {
		return nil
	}
	*o = jobObject{}
	return json.Unmarshal(b, o)
}
