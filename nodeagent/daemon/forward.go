package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/epoch"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// notAppliedHeader marks an error answer to a request that was refused before it could
// take effect (this member is not the leader, knows no leader, is not initialised, or
// refused one hop too many): whoever forwarded it may try another member. An error
// answer without it, above all a 503, may come from a write that was applied.
const notAppliedHeader = rest.NotAppliedHeader

// notApplied marks err as returned before anything was applied (rest.NotApplied).
func notApplied(err error) error { return rest.NotApplied(err) }

// knownNotApplied reports whether err certainly left the database unchanged: marked by
// notApplied, or a refusal that happens before a write enters the log.
func knownNotApplied(err error) bool {
	return rest.IsNotApplied(err) || errors.Is(err, store.ErrNotLeader) || errors.Is(err, ErrNotInitialised)
}

// decodeAnswer reads an API answer envelope: the metadata into out, an error answer as
// an *api.Error.
func decodeAnswer(resp *http.Response, out any) error {
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

// onLeader runs h on the raft leader: on any other member the whole request is forwarded
// to the leader over the cluster API (the caller was already authorised here; the leader
// sees the cluster certificate).
func (d *Daemon) onLeader(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		st := d.store()
		if st == nil {
			return ErrNotInitialised
		}
		if st.IsLeader() {
			return h(w, r)
		}
		return d.proxyToLeader(w, r)
	}
}

func (d *Daemon) proxyToLeader(w http.ResponseWriter, r *http.Request) error {
	hops, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	if hops >= maxHops {
		return notApplied(unavailable("no leader reachable (forwarded %d times)", hops))
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
	var lastErr error = notApplied(unavailable("no database leader known"))
	addrs := d.leaderCandidates()
	for i, addr := range addrs {
		c, err := d.peers.client(addr)
		if err != nil {
			return err
		}
		resp, err := c.Raw(r.Context(), r.Method, r.URL.RequestURI(), bytes.NewReader(body), hdr)
		if err != nil && notSent(err) {
			lastErr = notApplied(unavailable("forwarding to %s: %v", addr, err))
			continue
		}
		if err != nil {
			return unavailable("forwarding to %s: %v (the request may or may not have been applied)", addr, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 400 && resp.Header.Get(notAppliedHeader) != "" && i+1 < len(addrs) {
			lastErr = notApplied(decodeAnswer(resp, nil))
			continue
		}
		for _, k := range []string{"Content-Type", "ETag", notAppliedHeader, epoch.CutOffHeader, epoch.CutOffTarget} {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return d.noLeader(addrs, lastErr)
}
