// Package rest is what every domain of the daemon needs to answer API requests: the
// handler type and access levels routes are registered with, the success answer, strict
// decoding of request bodies, and the API errors (LXD-style envelopes are written by the
// daemon from the *api.Error these return).
//
// It is a leaf: it imports nodeagent/api, nodeagent/store and the standard library only,
// never the daemon, a domain package, orchestrator, playbooks or inventory.
package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/store"
)

// ErrNotInitialised is the answer of anything that needs the cluster database on a member
// that has none yet (the daemon answers it 503).
var ErrNotInitialised = errors.New("this member is not initialised: run `nodeagent init`")

// ErrStarting is the answer of anything that needs the cluster database on a member that
// is initialised but has not reopened its database yet after a start (503: try again).
var ErrStarting = errors.New("this member is starting: its cluster database is not open yet, try again in a moment")

// ErrStopping is the answer of anything that needs the cluster database on a member whose
// daemon is shutting down (503: ask another member, or this one once it runs again).
var ErrStopping = errors.New("this member is stopping: its cluster database is closed")

// ErrRepairing is the answer of anything that needs the cluster database on a member whose
// database broke (disk full, I/O error, a corrupt file) while it reopens it from the raft
// snapshot and log (503: try again, or another member).
var ErrRepairing = errors.New("this member's database broke and is being reopened from the raft log; try again in a moment")

// NoDatabase reports the errors a member without an open cluster database answers with
// (ErrNotInitialised, ErrStarting, ErrStopping, ErrRepairing): each left the database
// unchanged.
func NoDatabase(err error) bool {
	return errors.Is(err, ErrNotInitialised) || errors.Is(err, ErrStarting) || errors.Is(err, ErrStopping) || errors.Is(err, ErrRepairing)
}

// Access is what a route requires of its caller.
type Access int

// Access levels of routes.
const (
	Public  Access = iota // anyone (the handler authenticates what it must)
	Trusted               // the local socket, a trusted client certificate or a member
	Local                 // the local socket only
	Member                // another member (cluster certificate) or the local socket
)

// HandlerFunc is a route's handler; a returned error becomes an LXD-style error response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// WriteOK writes a sync success response with metadata (may be nil) and an optional ETag.
func WriteOK(w http.ResponseWriter, meta any, etag string) error {
	body, err := SyncBody(meta)
	if err != nil {
		return err
	}
	return WriteBody(w, body, etag)
}

// syncPrefix is how an encoded api.Response of a sync success begins, up to its metadata.
const syncPrefix = `{"type":"sync","status":"Success","status_code":200,"metadata":`

// SyncBody is the encoded sync success response with metadata, as json.Encoder writes
// api.Response{Type: "sync", Status: "Success", StatusCode: 200, Metadata: ...}, without
// encoding the metadata twice (once on its own, then compacted again inside the envelope).
func SyncBody(meta any) ([]byte, error) {
	raw, err := json.Marshal(meta) // compact and HTML-escaped, as the envelope would have it
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(syncPrefix)+len(raw)+2)
	body = append(body, syncPrefix...)
	body = append(body, raw...)
	return append(body, "}\n"...), nil
}

// WriteBody writes an encoded success response (SyncBody) with an optional ETag. Its
// length is sent too: net/http would otherwise send a body of more than 2 KiB (GET /1.0's)
// chunked, in more writes.
func WriteBody(w http.ResponseWriter, body []byte, etag string) error {
	h := w.Header()
	if etag != "" {
		h["Etag"] = []string{etag}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, err := w.Write(body)
	return err
}

// maxBody is how much of a JSON request body is read; a longer one fails to decode.
const maxBody = 16 << 20

// DecodeBody reads a JSON request body into v, rejecting unknown fields.
func DecodeBody(r *http.Request, v any) error {
	data, err := ReadBody(r)
	if err != nil {
		return err
	}
	return DecodeJSON(data, v)
}

// ReadBody reads a request body (up to 16 MiB: DecodeJSON then finds the document cut
// short), for a handler that looks at the bytes before DecodeJSON.
func ReadBody(r *http.Request) ([]byte, error) {
	size := 512
	if r.ContentLength > 0 && r.ContentLength < maxBody {
		size = int(r.ContentLength) + 1 // room for the read that finds the end
	}
	data := make([]byte, 0, size)
	body := io.LimitReader(r.Body, maxBody)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, api.Errorf(http.StatusBadRequest, "request body: %v", err)
		}
	}
}

// DecodeJSON decodes a request body read by ReadBody into v, rejecting unknown fields and
// anything after the document.
func DecodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(http.StatusBadRequest, "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Errorf(http.StatusBadRequest, "request body: unexpected data after the JSON document")
	}
	return nil
}

// BadRequest is a 400 answer.
func BadRequest(format string, args ...any) error {
	return api.Errorf(http.StatusBadRequest, format, args...)
}

// NotFound is a 404 answer.
func NotFound(format string, args ...any) error {
	return api.Errorf(http.StatusNotFound, format, args...)
}

// Conflict is a 409 answer.
func Conflict(format string, args ...any) error {
	return api.Errorf(http.StatusConflict, format, args...)
}

// Unavailable is a 503 answer.
func Unavailable(format string, args ...any) error {
	return api.Errorf(http.StatusServiceUnavailable, format, args...)
}

// PathName returns the {name} path value, refusing empty and odd names.
func PathName(r *http.Request) (string, error) {
	n := r.PathValue("name")
	if n == "" || strings.ContainsAny(n, "/\x00") {
		return "", BadRequest("bad name %q", n)
	}
	return n, nil
}

// Target reads ?target= (the member a request is about).
func Target(r *http.Request) string { return r.URL.Query().Get("target") }

// WithStatus gives err the HTTP status code(err) says (an API error with that code and
// err's message); an API error, nil and an error code answers 0 for are returned as they
// are. Domains pass the classification of their drivers' errors.
func WithStatus(err error, code func(error) int) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	c := code(err)
	if c == 0 {
		return err
	}
	return api.Errorf(c, "%v", err)
}

// NotAppliedHeader marks an error answer to a request that was refused before it could
// take effect: whoever forwarded it may try another member.
const NotAppliedHeader = "X-Orch-Not-Applied"

// notAppliedError is an error returned before the request entered the raft log, so
// that retrying it elsewhere cannot apply it twice.
type notAppliedError struct{ err error }

func (e *notAppliedError) Error() string { return e.err.Error() }
func (e *notAppliedError) Unwrap() error { return e.err }

// NotApplied marks err as returned before anything was applied.
func NotApplied(err error) error { return &notAppliedError{err: err} }

// IsNotApplied reports whether err was marked by NotApplied.
func IsNotApplied(err error) bool {
	var na *notAppliedError
	return errors.As(err, &na)
}

// IsUnique reports a write refused by a UNIQUE constraint.
func IsUnique(err error) bool { return err != nil && strings.Contains(err.Error(), "UNIQUE") }

// IsConflict reports a write whose expectation (store.Statement.Expect) failed.
func IsConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

// ChangedKey is the first key (sorted) whose value differs between a and b, counting a key
// present in only one of them, and skipping the keys mayChange allows (nil: none): what a
// PUT or PATCH would change that the object does not let change.
func ChangedKey(a, b map[string]string, mayChange func(key string) bool) (string, bool) {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if (oka != okb || va != vb) && (mayChange == nil || !mayChange(k)) {
			return k, true
		}
	}
	return "", false
}
