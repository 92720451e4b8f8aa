package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"orch/nodeagent/api"
)

// Cluster epochs (shared/DESIGN.md: "Recovery from quorum loss starts a new cluster epoch;
// members of an older epoch are fenced"). A recovery records epoch N+1 with its member and
// time, in the node-local database at once and in the replicated database once it leads.
// Every member-to-member connection carries the epoch: raft connections in the netmux
// handshake (Fence), cluster API requests in epochHeader. A peer of an older epoch is
// refused and told which recovery cut it off; it records that, stops its raft node and
// from then on refuses client requests with that message until it is wiped and rejoined.

// Headers of member-to-member requests.
const (
	epochHeader  = "X-Orch-Epoch"          // the sender's epoch (JSON api.Epoch)
	memberHeader = "X-Orch-Member"         // the sender's member name
	cutOffHeader = "X-Orch-Cut-Off"        // on a refusal: why a member is cut off (JSON api.CutOff)
	cutOffTarget = "X-Orch-Cut-Off-Member" // the member cutOffHeader is about (a forwarded answer passes through others)
	peerEpochHdr = "X-Orch-Member-Epoch"   // on every answer to a member: the answering member's epoch
)

// ErrEpoch is the refusal of a peer whose epoch differs from this member's.
var ErrEpoch = errors.New("cluster epoch mismatch")

// epochHello is what a member sends when it opens a raft connection.
type epochHello struct {
	Member string    `json:"member"`
	Epoch  api.Epoch `json:"epoch"`
}

// epochAnswer is the acceptor's answer to an epochHello.
type epochAnswer struct {
	OK     bool        `json:"ok"`
	Member string      `json:"member"`
	Epoch  api.Epoch   `json:"epoch"`
	CutOff *api.CutOff `json:"cut_off,omitempty"` // set when the dialer is cut off
	Error  string      `json:"error,omitempty"`
}

// currentEpoch is this member's epoch.
func (d *Daemon) currentEpoch() api.Epoch {
	if e := d.epoch.Load(); e != nil {
		return *e
	}
	return api.Epoch{}
}

// cutOffState is why this member was cut off, nil when it was not.
func (d *Daemon) cutOffState() *api.CutOff { return d.cutOff.Load() }

// loadEpoch reads the epoch and the cut-off state from the node-local database.
func (d *Daemon) loadEpoch() error {
	e, err := d.local.Epoch()
	if err != nil {
		return err
	}
	d.epoch.Store(&e)
	c, err := d.local.CutOff()
	if err != nil {
		return err
	}
	d.cutOff.Store(c)
	return nil
}

// adoptEpoch records the epoch of the cluster this member joins.
func (d *Daemon) adoptEpoch(e api.Epoch) error {
	if err := d.local.SetEpoch(e); err != nil {
		return err
	}
	d.epoch.Store(&e)
	return nil
}

// judgePeer decides whether a peer (member name, epoch) may talk to this member. It
// returns nil to go on; otherwise the refusal, and, when the peer belongs to an older
// epoch, what to tell it. A peer of a newer epoch means this member is the one cut off.
func (d *Daemon) judgePeer(member string, peer api.Epoch) (*api.CutOff, error) {
	if c := d.cutOffState(); c != nil {
		return nil, fmt.Errorf("%w: %s is cut off from the cluster: %s", ErrEpoch, d.memberName(), c.Error())
	}
	local := d.currentEpoch()
	switch {
	case local.Same(peer):
		return nil, nil
	case peer.Number < local.Number:
		d.log.Warn("refused a member of an older cluster epoch", "member", member, "its_epoch", peer.String(), "epoch", local.String())
		return &api.CutOff{Epoch: local, By: d.memberName()}, fmt.Errorf("%w: member %s belongs to %s, but the cluster is in %s: it was cut off; wipe and rejoin it (e.g. `orch recover --rejoin`)",
			ErrEpoch, member, peer, local)
	case peer.Number > local.Number:
		d.becomeCutOff(api.CutOff{Epoch: peer, By: member})
		return nil, fmt.Errorf("%w: %s is in %s, newer than this member's %s: this member is cut off", ErrEpoch, member, peer, local)
	}
	return nil, fmt.Errorf("%w: member %s is in %s but this member is in %s: two recoveries diverged; keep one side and wipe and rejoin the other",
		ErrEpoch, member, peer, local)
}

// becomeCutOff records that this member no longer belongs to the cluster and stops its raft
// node, once.
func (d *Daemon) becomeCutOff(c api.CutOff) {
	if !d.cutOff.CompareAndSwap(nil, &c) {
		return
	}
	d.log.Error("this member is cut off from the cluster", "reason", c.Error())
	if err := d.local.SetCutOff(c); err != nil {
		d.log.Warn("recording the cut-off failed", "err", err)
	}
	go d.retire()
}

// retire stops the raft node and the member loops of a cut-off member; its listeners stay,
// to say why it refuses.
func (d *Daemon) retire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopLoops != nil {
		d.stopLoops()
		d.loops.Wait()
		d.stopLoops = nil
	}
	if st := d.st.Swap(nil); st != nil {
		if err := st.Close(); err != nil {
			d.log.Warn("closing the database", "err", err)
		}
	}
}

// raftFence is the netmux.Fence of this member's raft connections.
type raftFence struct{ d *Daemon }

// Hello implements netmux.Fence.
func (f raftFence) Hello() []byte {
	b, _ := json.Marshal(epochHello{Member: f.d.memberName(), Epoch: f.d.currentEpoch()})
	return b
}

// Admit implements netmux.Fence.
func (f raftFence) Admit(hello []byte) ([]byte, bool) {
	ans := epochAnswer{Member: f.d.memberName(), Epoch: f.d.currentEpoch()}
	var h epochHello
	if err := json.Unmarshal(hello, &h); err != nil {
		ans.Error = "bad raft hello: " + err.Error()
	} else if cut, err := f.d.judgePeer(h.Member, h.Epoch); err != nil {
		ans.Error, ans.CutOff = err.Error(), cut
	} else {
		ans.OK = true
	}
	b, _ := json.Marshal(ans)
	return b, ans.OK
}

// Answered implements netmux.Fence.
func (f raftFence) Answered(addr string, answer []byte) error {
	var a epochAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	if a.CutOff != nil {
		f.d.becomeCutOff(*a.CutOff)
	}
	if a.OK {
		// The acceptor admitted us; a newer epoch on its side is still ours to notice.
		_, err := f.d.judgePeer(a.Member, a.Epoch)
		return err
	}
	return fmt.Errorf("raft connection refused by %s (%s): %s", a.Member, addr, a.Error)
}

// Legacy implements netmux.Fence: an agent older than epochs is in epoch 0, so it may
// speak raft only while this member is in epoch 0 too.
func (f raftFence) Legacy() bool {
	return f.d.cutOffState() == nil && f.d.currentEpoch().Number == 0
}

// checkPeerEpoch is the cluster API's half of the fence: a request from another member
// (cluster certificate) carries its epoch; a different one is refused, and a requester of
// an older epoch is told it was cut off.
func (d *Daemon) checkPeerEpoch(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set(peerEpochHdr, encodeEpoch(d.currentEpoch()))
	var peer api.Epoch
	if v := r.Header.Get(epochHeader); v != "" {
		if err := json.Unmarshal([]byte(v), &peer); err != nil {
			return badRequest("%s: %v", epochHeader, err)
		}
	}
	cut, err := d.judgePeer(r.Header.Get(memberHeader), peer)
	if err == nil {
		return nil
	}
	if cut != nil {
		setCutOff(w, r.Header.Get(memberHeader), *cut)
	}
	return notApplied(api.Errorf(http.StatusConflict, "%v", err))
}

// setCutOff tells member, in the answer's headers, why it is cut off.
func setCutOff(w http.ResponseWriter, member string, c api.CutOff) {
	b, _ := json.Marshal(c)
	w.Header().Set(cutOffHeader, string(b))
	w.Header().Set(cutOffTarget, member)
}

// cutOffFor reads a cut-off notice addressed to member from an answer's headers.
func cutOffFor(h http.Header, member string) *api.CutOff {
	v := h.Get(cutOffHeader)
	if v == "" || h.Get(cutOffTarget) != member {
		return nil
	}
	var c api.CutOff
	if json.Unmarshal([]byte(v), &c) != nil {
		return nil
	}
	return &c
}

func encodeEpoch(e api.Epoch) string {
	b, _ := json.Marshal(e)
	return string(b)
}

// epochTransport adds this member's epoch to every request to another member and learns
// from the answers: a refusal carrying cutOffHeader, or an answer from a newer epoch, cuts
// this member off.
type epochTransport struct {
	d    *Daemon
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t epochTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(epochHeader, encodeEpoch(t.d.currentEpoch()))
	req.Header.Set(memberHeader, t.d.memberName())
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if c := cutOffFor(resp.Header, t.d.memberName()); c != nil {
		t.d.becomeCutOff(*c)
	} else if v := resp.Header.Get(peerEpochHdr); v != "" {
		var e api.Epoch
		if json.Unmarshal([]byte(v), &e) == nil && e.Number > t.d.currentEpoch().Number {
			_, _ = t.d.judgePeer(req.URL.Host, e)
		}
	}
	return resp, nil
}

// CloseIdleConnections passes the call on, so that api.Client.Close still releases them.
func (t epochTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// cutOffAllowed lists the routes a cut-off member still serves: the local database view,
// the peer state (for fencing checks) and init (to wipe and rejoin); its status only on
// the local socket (waitready, info), where it holds no global configuration to show.
var cutOffAllowed = map[string]bool{
	"GET /internal/database": true, "GET /internal/cluster/state": true,
	"POST /internal/init": true, "PUT /1.0/cluster": true,
}

// refuseIfCutOff refuses every other request of a cut-off member, saying why.
func (d *Daemon) refuseIfCutOff(pattern string, unix bool) error {
	c := d.cutOffState()
	if c == nil || cutOffAllowed[pattern] || unix && pattern == "GET /1.0" {
		return nil
	}
	return notApplied(api.Errorf(http.StatusServiceUnavailable, "%s: %s", d.memberName(), c.Error()))
}

// recordEpochReplicated writes the epoch into the replicated database (meta rows), once
// this member leads after a recovery.
func (d *Daemon) recordEpochReplicated(ctx context.Context) error {
	e := d.currentEpoch()
	if e.Number == 0 {
		return nil
	}
	up := `INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`
	_, err := d.exec(ctx,
		storeStmt(up, "epoch", int64(e.Number)),
		storeStmt(up, "epoch_time", e.Time.UnixMilli()),
		storeStmt(up, "epoch_member:"+e.Member, int64(e.Number)))
	return err
}

// NextEpoch is the epoch a recovery on member starts after from.
func NextEpoch(from api.Epoch, member string) api.Epoch {
	return api.Epoch{Number: from.Number + 1, Member: member, Time: time.Now().UTC().Truncate(time.Millisecond)}
}
