package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// list reads every key under prefix, as KV().List does. On a client made
// by NewClientWith, the answer's body is set aside whole (bodyTransport)
// and decoded by decodeKVList, which does in one pass what encoding/json's
// reflection does in several: at 100,000 keys, most of the CPU a list read
// costs the process that reads it.
func (r *Registry) list(prefix string, q *api.QueryOptions) (api.KVPairs, *api.QueryMeta, error) {
	return r.listAs(prefix, q, false)
}

// listAs is list, whose values with inPlace are decoded where they lie in
// the answer instead of each into a copy of its own: for a reader that
// keeps no value past its read (decode copies what it keeps), since a
// value kept keeps a piece of the answer of up to 4 MiB. At 100,000
// units the copies were a sixth of what list-units allocated.
func (r *Registry) listAs(prefix string, q *api.QueryOptions, inPlace bool) (api.KVPairs, *api.QueryMeta, error) {
	sink := &bodySink{}
	q = q.WithContext(context.WithValue(q.Context(), bodySinkKey{}, sink))
	pairs, meta, err := r.c.KV().List(prefix, q)
	if err != nil || sink.body == nil {
		return pairs, meta, err
	}
	pairs, err = decodeKVList(sink.body, inPlace)
	return pairs, meta, err
}

// bodySinkKey is the context key of a request whose answer's body
// bodyTransport hands to the bodySink instead of the Consul API client.
type bodySinkKey struct{}

type bodySink struct{ body [][]byte }

// bodyTransport hands the body of a successful answer to the request's
// bodySink, when it has one, and gives the API client an empty list to
// decode in its place; the status and headers (the index of a blocking
// query) go to the API client as they came. It does the same for a
// transaction that fleet's client sends (txnCall), whose compact body it
// sends in place of the API client's, and whose answer, applied or rolled
// back, it sets aside.
type bodyTransport struct{ next http.RoundTripper }

func (t bodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	call, _ := r.Context().Value(txnCallKey{}).(*txnCall)
	if call != nil && call.body != nil && r.Method == http.MethodPut {
		r = withBody(r, call.body)
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	sink, _ := r.Context().Value(bodySinkKey{}).(*bodySink)
	switch {
	case call != nil && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict):
		call.answer, err = takeBody(resp, "{}")
		call.answered = true
	case sink != nil && resp.StatusCode == http.StatusOK:
		sink.body, err = takeBody(resp, "[]")
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// takeBody reads resp's body (readBody) and leaves placeholder in its
// place.
func takeBody(resp *http.Response, placeholder string) ([][]byte, error) {
	defer resp.Body.Close()
	body, err := readBody(resp.Body, resp.ContentLength)
	resp.Body = io.NopCloser(strings.NewReader(placeholder))
	resp.ContentLength = int64(len(placeholder))
	return body, err
}

// readBody reads a body of size bytes (-1: unknown) in pieces: one of its
// size when it is known; else, as a large answer comes (chunked), pieces
// of growing size, which the decode reads in turn (pieceScanner).
// Copying them into one buffer would touch the body's memory twice: at
// 100,000 units, a seventh of the CPU list-units took.
func readBody(r io.Reader, size int64) ([][]byte, error) {
	if size >= 0 {
		b := make([]byte, size)
		_, err := io.ReadFull(r, b)
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	var pieces [][]byte
	for n := 64 << 10; ; n = min(2*n, 4<<20) {
		p := make([]byte, n)
		got, err := io.ReadFull(r, p)
		if got > 0 {
			pieces = append(pieces, p[:got])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return pieces, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// decodeKVList decodes Consul's answer to a list read (a JSON array of
// KV pairs), the pieces of its body in turn; with inPlace, the values are
// decoded where they lie in the pieces. It reads the fields fleet uses
// of the shape Consul writes, any spacing, and string escapes; anything
// else it does not expect, it hands to encoding/json, so the answer is
// always what json.Unmarshal gives.
func decodeKVList(body [][]byte, inPlace bool) (api.KVPairs, error) {
	pairs, ok := scanKVList(body, inPlace, joinMin)
	switch {
	case ok && inPlace:
		if err := decodeValues(pairs); err != nil {
			return nil, errors.New("Consul's answer is not a list of keys: " + err.Error())
		}
		return pairs, nil
	case ok:
		return pairs, nil
	}
	if err := json.Unmarshal(bytes.Join(body, nil), &pairs); err != nil {
		return nil, errors.New("Consul's answer is not a list of keys: " + err.Error())
	}
	return pairs, nil
}

// joinMin is the fewest bytes of a piece that a join takes.
const joinMin = 64 << 10

// scanKVList is decodeKVList's one pass, joining pieces by at least join
// bytes where a pair spans two; ok is false when the body holds anything
// it does not read. It leaves the pieces as they came.
func scanKVList(body [][]byte, inPlace bool, join int) (pairs api.KVPairs, ok bool) {
	p := &pieceScanner{s: scanner{inPlace: inPlace}, rest: body, join: join}
	empty := false
	if !p.read(func(s *scanner) bool {
		if !s.byte('[') || s.end() {
			return false // not a list, or what follows is further on
		}
		empty = s.byte(']')
		return true
	}) {
		return nil, false
	}
	pairs = api.KVPairs{}
	for last := empty; !last; {
		var pair *api.KVPair
		if !p.read(func(s *scanner) (ok bool) {
			if pair, ok = s.pair(); !ok {
				return false
			}
			last = s.byte(']')
			return last || s.byte(',')
		}) {
			return nil, false
		}
		pairs = append(pairs, pair)
	}
	return pairs, p.end()
}

// pieceScanner reads JSON from the pieces of a body in turn: a scanner
// over a window of the body, a piece or a join of two where what it reads
// spans them.
type pieceScanner struct {
	s    scanner
	rest [][]byte // the pieces after the window
	join int      // bytes of the next piece a join takes at least
	// In a join, the window's bytes from backAt on are the start of the
	// piece back.
	back   []byte
	backAt int
}

// read calls f at the scanner's position. Where f fails, at the end of
// the window or at what it does not read, read calls it again from there
// on a longer window, until f succeeds or the body ends.
func (p *pieceScanner) read(f func(s *scanner) bool) bool {
	for {
		if p.back != nil && p.s.i >= p.backAt {
			// Past the join: read on in the piece itself.
			p.s.b, p.s.i, p.back = p.back, p.s.i-p.backAt, nil
		}
		start := p.s.i
		if f(&p.s) {
			return true
		}
		if !p.extend(start) {
			return false
		}
	}
}

// extend makes the window its bytes from start followed by more of the
// body: the next piece itself when none are left, else a copy of them
// joined with the start of the piece that follows them, twice as long as
// they are and at least p.join bytes. False at the end of the body.
func (p *pieceScanner) extend(start int) bool {
	tail, next, had := p.s.b[start:], p.back, 0
	if next != nil {
		tail, had = p.s.b[start:p.backAt], len(p.s.b)-p.backAt
	}
	if had == len(next) { // the window holds all of back, or there is none
		if len(p.rest) == 0 {
			return false
		}
		tail, next, had = p.s.b[start:], p.rest[0], 0
		p.rest = p.rest[1:]
	}
	if len(tail) == 0 {
		p.s.b, p.s.i, p.back = next, 0, nil
		return true
	}
	n := min(len(next), max(2*(len(tail)+had), p.join))
	w := make([]byte, len(tail)+n)
	copy(w[copy(w, tail):], next[:n])
	p.s.b, p.s.i, p.back, p.backAt = w, 0, next, len(tail)
	return true
}

// end reports whether nothing but spacing is left of the body.
func (p *pieceScanner) end() bool {
	rest := p.rest
	if p.back != nil {
		rest = append([][]byte{p.back[len(p.s.b)-p.backAt:]}, rest...)
	}
	if !p.s.end() {
		return false
	}
	for _, b := range rest {
		if s := (scanner{b: b}); !s.end() {
			return false
		}
	}
	return true
}

// scanner reads JSON from b at i; with inPlace it reads a pair's value as
// the base64 it is, which decodeValues decodes where it lies.
type scanner struct {
	b       []byte
	i       int
	inPlace bool
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

// list reads null or a JSON array, calling item to read each element.
func (s *scanner) list(item func() bool) bool {
	if s.null() {
		return true
	}
	if !s.byte('[') {
		return false
	}
	if s.byte(']') {
		return true
	}
	for {
		if !item() {
			return false
		}
		if s.byte(']') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// skip reads past one JSON value of any kind.
func (s *scanner) skip() bool {
	s.space()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		raw, escaped, ok := s.rawString()
		return ok && (!escaped || json.Valid(raw))
	case '{':
		return s.object(func(string) bool { return s.skip() })
	case '[':
		return s.list(s.skip)
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case 'n':
		return s.null()
	}
	return s.number()
}

// null consumes null, if it comes next.
func (s *scanner) null() bool { return s.word("null") }

// word consumes w, if it comes next after any spacing.
func (s *scanner) word(w string) bool {
	s.space()
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}

// number reads past a JSON number.
func (s *scanner) number() bool {
	digits := func() bool {
		start := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		return s.i > start
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	start := s.i
	if !digits() || s.b[start] == '0' && s.i > start+1 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		return digits()
	}
	return true
}

// pair reads one KV pair object. A second Value in one object (Consul
// writes none) goes to encoding/json, which decodes each and fails at the
// first bad one, where a value decoded in place would be only the last.
func (s *scanner) pair() (*api.KVPair, bool) {
	p := &api.KVPair{}
	valued := false
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
			if valued {
				return false
			}
			valued = true
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
		// Eight bytes at a time up to the next that matters: most of a
		// list is values' base64.
		for s.i+8 <= len(s.b) && !special(binary.LittleEndian.Uint64(s.b[s.i:])) {
			s.i += 8
		}
		if s.i == len(s.b) {
			break
		}
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

// special reports whether any of the eight bytes of x ends or escapes a
// JSON string, or may not be in one: a quote, a backslash, or a byte
// below 0x20. (The tests for a byte below n and for a zero byte from Sean
// Anderson's Bit Twiddling Hacks; a byte of 0x80 or more sets no flag.)
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := func(x, n uint64) bool { return (x-n*ones)&^x&highs != 0 }
	return below(x, 0x20) || below(x^'"'*ones, 1) || below(x^'\\'*ones, 1)
}

// value reads a pair's Value: base64 in a JSON string, or null.
func (s *scanner) value() ([]byte, bool) {
	if s.null() {
		return nil, true
	}
	raw, escaped, ok := s.rawString()
	if !ok || escaped {
		return nil, false
	}
	enc := raw[1 : len(raw)-1]
	if s.inPlace {
		return enc, true // decoded once the whole list is read (decodeValues)
	}
	v := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(v, enc)
	return v[:n], err == nil
}

// decodeValues decodes the base64 of the pairs' values where it lies,
// once the whole list is read: until then b is left as it came, for
// encoding/json to read if the list is not what scanKVList reads.
func decodeValues(pairs api.KVPairs) error {
	for _, p := range pairs {
		if p.Value == nil {
			continue // null
		}
		var ok bool
		if p.Value, ok = decodeInPlace(p.Value); !ok {
			return fmt.Errorf("the value of %s is not base64", p.Key)
		}
	}
	return nil
}

// decodeInPlace decodes base64 into the bytes that hold it. It decodes a
// piece at a time into a buffer of its own and copies it back behind
// where it reads, so that it needs nothing of how base64 decodes.
func decodeInPlace(enc []byte) ([]byte, bool) {
	var buf [3 << 10]byte
	n := 0
	for i := 0; i < len(enc); i += 4 << 10 {
		got, err := base64.StdEncoding.Decode(buf[:], enc[i:min(i+4<<10, len(enc))])
		if err != nil {
			return nil, false
		}
		n += copy(enc[n:], buf[:got])
	}
	return enc[:n], true
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
	// JSON writes no leading zero: "00" is none of its numbers.
	return n, s.i > start && (s.b[start] != '0' || s.i == start+1)
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
