package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/api/pki"
	"orch/nodeagent/daemon/epoch"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/daemon/serve"
)

// Fencing checks between members: a recovery asks the other members whether they still
// run (ProbePeers, GET /internal/cluster/state) before rewriting anything, and the leader
// tells a member removed while it was down that it was removed.

// getPeerState is GET /internal/cluster/state: another member (or a recovery's fencing
// check, presenting the cluster certificate) asks whether this member runs as a member.
func (d *Daemon) getPeerState(w http.ResponseWriter, r *http.Request) error {
	st := api.PeerState{Member: d.memberName(), Epoch: d.currentEpoch(), CutOff: d.cutOffState()}
	if s := d.store(); s != nil {
		st.Leader, _ = s.Leader()
	}
	return writeOK(w, st, "")
}

// PeerProbe is one member's answer to a fencing check.
type PeerProbe struct {
	// Member and Address say whom was asked.
	Member, Address string
	// State is the member's answer, nil when it did not answer as a member.
	State *api.PeerState
	// CutOff is set when the member refused the asker as cut off by a newer epoch.
	CutOff *api.CutOff
	// Err is why it did not answer.
	Err error
}

// Running reports whether the member answered as a running cluster member (not itself cut
// off), or as one of a newer epoch.
func (p PeerProbe) Running() bool {
	return p.CutOff != nil || (p.State != nil && p.State.CutOff == nil && p.State.Member != "")
}

// ProbeTimeout bounds each fencing check.
const ProbeTimeout = 2 * time.Second

// ProbePeers asks each of peers, over the cluster network with the cluster certificate of
// the agent directory dir (mutual TLS), whether it runs as a cluster member. self and
// epoch are the asker's name and epoch. It works with the asker's daemon stopped.
func ProbePeers(ctx context.Context, dir, self string, epoch api.Epoch, peers []api.DatabaseMember) ([]PeerProbe, error) {
	kp, err := pki.Load(dir, "cluster")
	if err != nil {
		return nil, fmt.Errorf("cluster certificate in %s: %w", dir, err)
	}
	cid, err := newClusterIdentity(kp)
	if err != nil {
		return nil, err
	}
	out := make([]PeerProbe, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		out[i] = PeerProbe{Member: p.Name, Address: p.Address}
		if p.Name == self {
			continue
		}
		wg.Add(1)
		go func(pr *PeerProbe) {
			defer wg.Done()
			probePeer(ctx, api.TLSConfig(cid.tls, cid.fingerprint), self, epoch, pr)
		}(&out[i])
	}
	wg.Wait()
	kept := out[:0]
	for _, p := range out {
		if p.Member != self {
			kept = append(kept, p)
		}
	}
	return kept, nil
}

// probePeer fills pr with the answer of one member.
func probePeer(ctx context.Context, conf *tls.Config, self string, ep api.Epoch, pr *PeerProbe) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	cl := api.NewTLSClient(pr.Address, conf)
	defer cl.Close()
	hdr := http.Header{epoch.Header: {epoch.Encode(ep)}, epoch.MemberHeader: {self}}
	resp, err := cl.Raw(ctx, http.MethodGet, "/internal/cluster/state", nil, hdr)
	if err != nil {
		pr.Err = err
		return
	}
	defer resp.Body.Close()
	if c := epoch.CutOffFor(resp.Header, self); c != nil {
		pr.CutOff = c
		return
	}
	var st api.PeerState
	err = serve.DecodeAnswer(resp, &st)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == http.StatusNotFound {
		// An agent older than the fencing check: it answered with the cluster
		// certificate, so it runs as a member.
		st, err = api.PeerState{Member: pr.Member}, nil
	}
	if err != nil {
		pr.Err = err
		return
	}
	pr.State = &st
}

// refuseRemoved wraps the leader's announce handler: a member that announces itself after
// a restart but is no longer in the members table was removed (`cluster remove --force`
// while it was down). It is told so (epoch.CutOffHeader), records it and stops, instead of
// standing for election forever with a stale member list.
func (d *Daemon) refuseRemoved(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var a announcement
		if err := json.Unmarshal(body, &a); err != nil || a.Name == "" {
			return h(w, r)
		}
		rows, err := d.query(r.Context(), `SELECT 1 FROM members WHERE name = ?`, a.Name)
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			return h(w, r)
		}
		epoch.SetCutOff(w, a.Name, api.CutOff{Removed: true, By: d.memberName()})
		d.log.Warn("a removed member announced itself; told it so", "member", a.Name)
		return rest.NotApplied(api.Errorf(http.StatusConflict, "member %s was removed from the cluster; wipe and rejoin it (e.g. `orch recover --rejoin`)", a.Name))
	}
}

// checkEpochAtStart asks the database members this member last knew of whether they are
// in a newer epoch, right after it starts: a member that was down during a recovery learns
// that it is cut off before its old peers can elect a leader among themselves (an election
// timeout away) and acknowledge a write the recovered cluster will never have. Its raft
// connections would teach it the same a moment later; this closes the window.
func (d *Daemon) checkEpochAtStart(ctx context.Context) {
	peers, err := d.local.RaftNodes()
	if err != nil || len(peers) < 2 {
		return
	}
	probes, err := ProbePeers(ctx, d.cfg.Dir, d.memberName(), d.currentEpoch(), peers)
	if err != nil {
		d.log.Warn("asking the other members for their epoch failed", "err", err)
		return
	}
	for _, p := range probes {
		if p.CutOff != nil {
			d.fence.BecomeCutOff(*p.CutOff)
			return
		}
		if p.State != nil && p.State.Epoch.Number > d.currentEpoch().Number {
			_, _ = d.fence.Judge(p.Member, p.State.Epoch)
			return
		}
	}
}
