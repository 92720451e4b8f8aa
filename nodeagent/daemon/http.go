package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
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

// access is what a route requires of its caller (rest.Access).
type access = rest.Access

const (
	public  = rest.Public  // anyone (the handler authenticates what it must)
	trusted = rest.Trusted // the local socket, a trusted client certificate or a member
	local   = rest.Local   // the local socket only
	member  = rest.Member  // another member (cluster certificate) or the local socket
)

// handlerFunc is a route's handler; a returned error becomes an LXD-style error response.
type handlerFunc = rest.HandlerFunc

// caller classifies the request's origin.
type caller struct {
	unix    bool
	member  bool
	trusted bool
	fp      string // client certificate fingerprint, if any
}

func (d *Daemon) callerOf(r *http.Request) caller {
	if o, _ := r.Context().Value(originKey).(origin); o == originUnix {
		return caller{unix: true, member: true, trusted: true}
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return caller{}
	}
	cert := r.TLS.PeerCertificates[0]
	c := caller{fp: api.Fingerprint(cert.Raw)}
	if d.isClusterCert(cert) {
		c.member, c.trusted = true, true
		return c
	}
	c.trusted = d.trust.IsTrusted(r.Context(), c.fp)
	return c
}

func (d *Daemon) handle(mux *http.ServeMux, pattern string, need access, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := d.callerOf(r)
		var err error
		switch {
		case need == local && !c.unix:
			err = api.Errorf(http.StatusForbidden, "only available on the local socket")
		case need == member && !c.member:
			err = api.Errorf(http.StatusForbidden, "only available to cluster members")
		case need == trusted && !c.trusted:
			err = api.Errorf(http.StatusForbidden, "not authorized: client certificate not trusted")
		default:
			if c.member && !c.unix {
				err = d.fence.CheckPeer(w, r)
			}
			if err == nil {
				err = d.fence.RefuseIfCutOff(pattern, c.unix)
			}
			if err == nil {
				err = d.checkBlocked(r, c, need)
			}
			if err == nil {
				err = h(w, r)
			}
		}
		if err != nil {
			d.writeError(w, r, err)
		}
	})
}

// writeOK writes a sync success response with metadata (may be nil) and an optional ETag.
func writeOK(w http.ResponseWriter, meta any, etag string) error {
	return rest.WriteOK(w, meta, etag)
}

func (d *Daemon) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(err)
	if code >= 500 {
		d.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if knownNotApplied(err) {
		w.Header().Set(notAppliedHeader, "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.Response{Type: "error", Error: err.Error(), ErrorCode: code})
}

func errorCode(err error) int {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return ae.Code
	case errors.Is(err, ErrNotInitialised), errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, store.ErrConflict):
		return http.StatusPreconditionFailed
	case errors.Is(err, ErrInitialised), errors.Is(err, ErrHasData):
		return http.StatusConflict
	case errors.Is(err, store.ErrBadArg):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// decodeBody reads a JSON request body into v, rejecting unknown fields.
func decodeBody(r *http.Request, v any) error { return rest.DecodeBody(r, v) }

// badRequest, notFound, conflict and unavailable are the rest package's API errors.
var (
	badRequest  = rest.BadRequest
	notFound    = rest.NotFound
	conflict    = rest.Conflict
	unavailable = rest.Unavailable
)

// routes is the API of every listener; access rules differ per route, not per listener.
func (d *Daemon) routes() http.Handler {
	m := http.NewServeMux()
	d.handle(m, "GET /1.0", public, d.getServer)
	d.conf.Routes(router{d: d, mux: m})
	d.handle(m, "GET /1.0/cluster", trusted, d.getCluster)
	d.handle(m, "PUT /1.0/cluster", trusted, d.putCluster)
	d.handle(m, "GET /1.0/cluster/members", trusted, d.onLeader(d.getMembers))
	d.tokens.Routes(router{d: d, mux: m})
	d.handle(m, "GET /1.0/cluster/members/{name}", trusted, d.onLeader(d.getMember))
	d.handle(m, "DELETE /1.0/cluster/members/{name}", trusted, d.onLeader(d.deleteMember))
	d.infos.Routes(router{d: d, mux: m})
	d.trust.Routes(router{d: d, mux: m})
	d.handle(m, "POST /internal/init", local, d.postInit)
	d.handle(m, "GET /internal/database", local, d.getDatabase)
	d.handle(m, "POST /internal/db/exec", member, d.postExec)
	d.handle(m, "POST /internal/db/query", member, d.postQuery)
	d.handle(m, "POST /internal/cluster/accept", public, d.acceptRoute)
	d.handle(m, "POST /internal/cluster/join-info", public, d.onLeader(d.postJoinInfo))
	d.handle(m, "POST /internal/cluster/complete", member, d.onLeader(d.postComplete))
	d.handle(m, "POST /internal/cluster/abort", member, d.onLeader(d.postAbort))
	d.handle(m, "POST /internal/cluster/removed", member, d.postRemoved)
	d.handle(m, "GET /internal/cluster/state", member, d.getPeerState)
	d.handle(m, "POST /internal/cluster/handover", member, d.onLeader(d.postHandover))
	d.handle(m, "POST /internal/heartbeat", member, d.postHeartbeat)
	d.handle(m, "POST /internal/announce", member, d.onLeader(d.refuseRemoved(d.postAnnounce)))
	d.ents.Routes(router{d: d, mux: m})
	d.insts.Routes(router{d: d, mux: m})
	d.imgs.Routes(router{d: d, mux: m})
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.writeError(w, r, notFound("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return m
}

// pathName returns the {name} path value, refusing empty and odd names.
func pathName(r *http.Request) (string, error) { return rest.PathName(r) }

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
