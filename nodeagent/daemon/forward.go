package daemon

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

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
		return unavailable("no leader reachable (forwarded %d times)", hops)
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
	var lastErr error = unavailable("no database leader known")
	for _, addr := range d.leaderCandidates() {
		c, err := d.peers.client(addr)
		if err != nil {
			return err
		}
		resp, err := c.Raw(r.Context(), r.Method, r.URL.RequestURI(), bytes.NewReader(body), hdr)
		if err != nil && notSent(err) {
			lastErr = unavailable("forwarding to the leader at %s: %v", addr, err)
			continue
		}
		if err != nil {
			return unavailable("forwarding to %s: %v (the request may or may not have been applied)", addr, err)
		}
		defer resp.Body.Close()
		for _, k := range []string{"Content-Type", "ETag"} {
			if v := resp.Header.Get(k); v != "" {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return lastErr
}
