package instances

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"orch/modules/image"
	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// forwardedHeader marks a request a member forwarded to the instance's owner, which must
// then handle it itself.
const forwardedHeader = "X-Orch-Forwarded"

// ownerHandler handles a request about an instance on the member that owns it.
type ownerHandler func(w http.ResponseWriter, r *http.Request, row instanceRow) error

// onOwner runs h on the member owning the {name} instance: here, or forwarded over the
// cluster API. An OFFLINE owner fails the request at once with an error naming it.
func (s *Service) onOwner(h ownerHandler) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := rest.PathName(r)
		if err != nil {
			return err
		}
		row, err := s.instance(r.Context(), name)
		if err != nil {
			return err
		}
		if row.member == s.members.Self() {
			return h(w, r, row)
		}
		if r.Header.Get(forwardedHeader) != "" {
			return rest.Conflict("instance %q belongs to member %s, not %s", name, row.member, s.members.Self())
		}
		if err := s.members.RequireOnline(r.Context(), row.member); err != nil {
			return fmt.Errorf("instance %q is on member %s: %w", name, row.member, err)
		}
		return s.proxyTo(w, r, row.member, row.address)
	}
}

// proxyHeaders are the request and response headers passed through a forward.
var proxyHeaders = []string{"Content-Type", "ETag", "Location", api.HeaderFileMode, api.HeaderFileUID, api.HeaderFileGID, api.HeaderFileType, api.HeaderFileWrite, api.HeaderImageAliases}

// proxyTo streams the request to member at addr and its answer back, in both directions at
// once (exec's stdin and output).
func (s *Service) proxyTo(w http.ResponseWriter, r *http.Request, member, addr string) error {
	c, err := s.peers.Client(addr)
	if err != nil {
		return err
	}
	hdr := http.Header{forwardedHeader: {s.members.Self()}}
	for _, k := range proxyHeaders {
		if v := r.Header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	_ = http.NewResponseController(w).EnableFullDuplex()
	var body io.Reader = r.Body
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		body = nil
	}
	resp, err := c.Raw(r.Context(), r.Method, r.URL.RequestURI(), body, hdr)
	if err != nil {
		return api.Errorf(http.StatusBadGateway, "member %s (%s) did not answer: %v", member, addr, err)
	}
	defer resp.Body.Close()
	for _, k := range proxyHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	// Once the status is sent a copy error cannot be reported: the client sees the stream end.
	_, _ = io.Copy(flushWriter{w}, resp.Body)
	return nil
}

// flushWriter flushes after every write, so streamed output reaches the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	_ = http.NewResponseController(f.w).Flush()
	return n, err
}

// driverError gives errors of the lxc and image modules their HTTP status.
func driverError(err error) error { return rest.WithStatus(err, driverStatus) }

// driverStatus is the HTTP status of an lxc or image module error, 0 when it has none.
func driverStatus(err error) int {
	switch {
	case errors.Is(err, lxc.ErrNotFound), errors.Is(err, image.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, lxc.ErrRunning), errors.Is(err, lxc.ErrNotRunning), errors.Is(err, lxc.ErrExists):
		return http.StatusConflict
	case errors.Is(err, lxc.ErrInvalidName), errors.Is(err, lxc.ErrPathEscapes), errors.Is(err, image.ErrInvalid),
		errors.Is(err, fs.ErrInvalid), strings.Contains(err.Error(), "not a regular file"):
		return http.StatusBadRequest
	}
	return 0
}
