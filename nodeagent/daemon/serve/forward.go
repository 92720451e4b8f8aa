package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// DecodeAnswer reads an API answer envelope: the metadata into out, an error answer as
// an *api.Error.
func DecodeAnswer(resp *http.Response, out any) error {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env api.Response
	if err := json.Unmarshal(data, &env); err != nil {
		return &api.Error{Code: resp.StatusCode, Message: fmt.Sprintf("unexpected answer (HTTP %d): %.200s", resp.StatusCode, data)}
	}
	if env.Type == "error" || resp.StatusCode >= 400 {
		code := env.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}
		return &api.Error{Code: code, Message: env.Error}
	}
	if out != nil && len(env.Metadata) > 0 {
		return json.Unmarshal(env.Metadata, out)
	}
	return nil
}

// OnLeader runs h on the raft leader: on any other member the whole request is forwarded
// to the leader over the cluster API (the caller was already authorised here; the leader
// sees the cluster certificate). A member that becomes the leader while it waits out an
// election runs h itself.
func (s *Server) OnLeader(h rest.HandlerFunc) rest.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := s.Members.Store()
		if st == nil {
			return s.Members.NoStore()
		}
		if st.IsLeader() {
			return h(w, r)
		}
		return s.proxyOrRun(w, r, h)
	}
}

// ProxyToLeader forwards the whole request to the leader and copies its answer back.
func (s *Server) ProxyToLeader(w http.ResponseWriter, r *http.Request) error {
	return s.proxyOrRun(w, r, nil)
}

// proxyOrRun forwards the whole request to the leader and copies its answer back. The
// member that received it from the client waits out an election as toLeaderWaiting does:
// an answer that certainly changed nothing and says the database is unavailable is asked
// again until electionWait has passed, a safe request (GET, HEAD) waiting on a leader that
// went silent is asked again once this member knows of another leader, and when this
// member became the leader meanwhile it runs h itself (h nil: it answers not leader).
func (s *Server) proxyOrRun(w http.ResponseWriter, r *http.Request, h rest.HandlerFunc) error {
	hops, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	if hops >= maxHops {
		return rest.NotApplied(rest.Unavailable("no leader reachable (forwarded %d times)", hops))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return err
	}
	hdr := http.Header{hopsHeader: {strconv.Itoa(hops + 1)}}
	for _, k := range []string{"Content-Type", "If-Match"} {
		if v := r.Header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	waiter := s.electionWaiter(r.Context())
	for {
		if h != nil && s.leads() {
			r.Body = io.NopCloser(bytes.NewReader(body))
			return h(w, r)
		}
		answered, err := s.proxyRound(w, r, body, hdr)
		if answered || hops > 0 || !waiter.again(err) {
			return err
		}
	}
}

// proxyRound tries the leader candidates in turn; answered is false when none took the
// request and nothing was applied (err says why).
func (s *Server) proxyRound(w http.ResponseWriter, r *http.Request, body []byte, hdr http.Header) (answered bool, err error) {
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead
	var lastErr error = rest.NotApplied(rest.Unavailable("no database leader known"))
	addrs := s.leaderCandidates()
	for i, addr := range addrs {
		c, err := s.peers.client(addr)
		if err != nil {
			return true, err
		}
		ctx, done := s.untilLeaderMoves(r.Context(), safe)
		defer done()
		resp, err := c.Raw(ctx, r.Method, r.URL.RequestURI(), bytes.NewReader(body), hdr)
		switch moved := s.movedAnswer(r.Context(), ctx, err, safe, addr); {
		case err != nil && notSent(err):
			lastErr = rest.NotApplied(rest.Unavailable("forwarding to %s: %v", addr, err))
			continue
		case moved != nil:
			return !safe, moved // a safe request is asked again of the next leader
		case err != nil && safe:
			// A safe request changes nothing: one cut off (a leader killed as it answered) is
			// asked again.
			lastErr = rest.NotApplied(rest.Unavailable("forwarding to %s: %v", addr, err))
			continue
		case err != nil:
			return true, rest.Unavailable("forwarding to %s: %v (the request may or may not have been applied)", addr, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 && resp.Header.Get(rest.NotAppliedHeader) != "" && (i+1 < len(addrs) || resp.StatusCode == http.StatusServiceUnavailable) {
			// Not applied: the next candidate, or (an election under way) a later round.
			lastErr = rest.NotApplied(DecodeAnswer(resp, nil))
			continue
		}
		for _, k := range append([]string{"Content-Type", "ETag", rest.NotAppliedHeader}, s.AnswerHeaders...) {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, err = io.Copy(w, resp.Body)
		return true, err
	}
	return false, s.noLeader(addrs, lastErr)
}
