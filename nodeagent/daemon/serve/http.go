package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

type origin int

const (
	originUnix origin = iota + 1
	originTLS
)

type ctxKey int

const originKey ctxKey = iota

// OnSocket marks ctx as a request's arriving on the local unix socket (the listener does
// it; tests that call a handler directly too).
func OnSocket(ctx context.Context) context.Context {
	return context.WithValue(ctx, originKey, originUnix)
}

// OnTLS marks ctx as a request's arriving on a TLS listener.
func OnTLS(ctx context.Context) context.Context {
	return context.WithValue(ctx, originKey, originTLS)
}

// Caller classifies the request's origin.
type Caller struct {
	Unix    bool
	Member  bool
	Trusted bool
	FP      string // client certificate fingerprint, if any
	// Undecided is why an untrusted-looking certificate could not be checked (the member's
	// database is not open yet, or no leader answered): such a caller is answered 503, not
	// 403, so that it tries again instead of taking it as a refusal.
	Undecided error
}

// CallerOf is who sent r.
func (s *Server) CallerOf(r *http.Request) Caller {
	if o, _ := r.Context().Value(originKey).(origin); o == originUnix {
		return Caller{Unix: true, Member: true, Trusted: true}
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return Caller{}
	}
	cert := r.TLS.PeerCertificates[0]
	c := Caller{FP: api.Fingerprint(cert.Raw)}
	if s.isClusterCert(cert) {
		c.Member, c.Trusted = true, true
		return c
	}
	c.Trusted, c.Undecided = s.Trust.IsTrusted(r.Context(), c.FP)
	return c
}

func (s *Server) handle(mux *http.ServeMux, pattern string, need rest.Access, h rest.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := s.CallerOf(r)
		var err error
		switch {
		case need == rest.Local && !c.Unix:
			err = api.Errorf(http.StatusForbidden, "only available on the local socket")
		case need == rest.Member && !c.Member:
			err = api.Errorf(http.StatusForbidden, "only available to cluster members")
		case need == rest.Trusted && !c.Trusted && c.Undecided != nil:
			err = c.Undecided
		case need == rest.Trusted && !c.Trusted:
			err = api.Errorf(http.StatusForbidden, "not authorized: client certificate not trusted")
		default:
			if c.Member && !c.Unix {
				err = s.Fence.CheckPeer(w, r)
			}
			if err == nil {
				err = s.Fence.RefuseIfCutOff(pattern, c.Unix)
			}
			if err == nil {
				err = s.Gate.CheckBlocked(r, c, need)
			}
			if err == nil {
				err = h(w, r)
			}
		}
		if err != nil {
			s.WriteError(w, r, err)
		}
	})
}

// WriteError answers err as an LXD-style error response, marked not applied when it
// certainly left the database unchanged; a 5xx is logged.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	code := s.ErrorCode(err)
	if code >= 500 {
		s.Log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if KnownNotApplied(err) {
		w.Header().Set(rest.NotAppliedHeader, "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Response{Type: "error", Error: err.Error(), ErrorCode: code})
}

// ErrorCode is the HTTP status err is answered with.
func (s *Server) ErrorCode(err error) int {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return ae.Code
	case rest.NoDatabase(err), errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrConflict):
		return http.StatusPreconditionFailed
	case s.isConflict(err):
		return http.StatusConflict
	case errors.Is(err, store.ErrBadArg):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func (s *Server) isConflict(err error) bool {
	for _, c := range s.Conflicts {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// KnownNotApplied reports whether err certainly left the database unchanged: marked by
// rest.NotApplied, or a refusal that happens before a write enters the log.
func KnownNotApplied(err error) bool {
	return rest.IsNotApplied(err) || errors.Is(err, store.ErrNotLeader) || rest.NoDatabase(err)
}

// Handler is the API of every listener: every domain's routes, then the database's
// internal endpoints; access rules differ per route, not per listener.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	r := Router{s: s, mux: m}
	for _, mount := range s.Domains {
		mount(r)
	}
	r.Handle("POST /internal/db/exec", rest.Member, s.postExec)
	r.Handle("POST /internal/db/query", rest.Member, s.postQuery)
	r.Handle("POST "+ReadIndexPath, rest.Member, s.postReadIndex)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.WriteError(w, r, rest.NotFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return m
}

// Router registers a domain's routes on one route table with the access checks, the
// epoch and cut-off checks, the version gate and the error answers.
type Router struct {
	s   *Server
	mux *http.ServeMux
}

// Handle registers h at pattern, reachable by callers that have need.
func (r Router) Handle(pattern string, need rest.Access, h rest.HandlerFunc) {
	r.s.handle(r.mux, pattern, need, h)
}

// OnLeader wraps h to run on the raft leader (Server.OnLeader).
func (r Router) OnLeader(h rest.HandlerFunc) rest.HandlerFunc { return r.s.OnLeader(h) }
