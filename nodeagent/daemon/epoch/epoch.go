// Package epoch owns cluster epochs and fencing: this member's epoch and cut-off state
// (persisted in the node-local database), judging a peer's epoch, the raft connection
// handshake (netmux.Fence), the cluster API's epoch headers both ways, and refusing the
// requests of a cut-off member. Stopping the raft node of a cut-off member is the
// daemon's, handed in as a function.
//
// It must not import the daemon, another domain package of the daemon, orchestrator,
// playbooks or inventory.
package epoch

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/netmux"
)

// Cluster epochs (shared/DESIGN.md: "Recovery from quorum loss starts a new cluster epoch;
// members of an older epoch are fenced"). A recovery records epoch N+1 with its member and
// time, in the node-local database at once and in the replicated database once it leads.
// Every member-to-member connection carries the epoch: raft connections in the netmux
// handshake (Fence), cluster API requests in Header. A peer of an older epoch is
// refused and told which recovery cut it off; it records that, stops its raft node and
// from then on refuses client requests with that message until it is wiped and rejoined.

// Local is where the epoch and the cut-off state persist (the node-local database).
type Local interface {
	Epoch() (api.Epoch, error)
	SetEpoch(e api.Epoch) error
	CutOff() (*api.CutOff, error)
	SetCutOff(c api.CutOff) error
}

// Fence is this member's epoch and cut-off state, and the checks of every
// member-to-member connection against it.
type Fence struct {
	local  Local
	self   func() string
	log    *slog.Logger
	retire func()
	epoch  atomic.Pointer[api.Epoch]
	cutOff atomic.Pointer[api.CutOff]
}

// New builds the fence of a member: self names it, retire (run once, in its own
// goroutine) stops its raft node when it is cut off. Load reads the persisted state.
func New(local Local, self func() string, log *slog.Logger, retire func()) *Fence {
	return &Fence{local: local, self: self, log: log, retire: retire}
}

// Headers of member-to-member requests.
const (
	Header       = "X-Orch-Epoch"          // the sender's epoch (JSON api.Epoch)
	MemberHeader = "X-Orch-Member"         // the sender's member name
	CutOffHeader = "X-Orch-Cut-Off"        // on a refusal: why a member is cut off (JSON api.CutOff)
	CutOffTarget = "X-Orch-Cut-Off-Member" // the member CutOffHeader is about (a forwarded answer passes through others)
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

// Current is this member's epoch.
func (f *Fence) Current() api.Epoch {
	if e := f.epoch.Load(); e != nil {
		return *e
	}
	return api.Epoch{}
}

// CutOff is why this member was cut off, nil when it was not.
func (f *Fence) CutOff() *api.CutOff { return f.cutOff.Load() }

// Load reads the epoch and the cut-off state from the node-local database.
func (f *Fence) Load() error {
	e, err := f.local.Epoch()
	if err != nil {
		return err
	}
	f.epoch.Store(&e)
	c, err := f.local.CutOff()
	if err != nil {
		return err
	}
	f.cutOff.Store(c)
	return nil
}

// Reset forgets the epoch and the cut-off state in memory (a wiped member).
func (f *Fence) Reset() {
	f.epoch.Store(&api.Epoch{})
	f.cutOff.Store(nil)
}

// Adopt records the epoch of the cluster this member joins.
func (f *Fence) Adopt(e api.Epoch) error {
	if err := f.local.SetEpoch(e); err != nil {
		return err
	}
	f.epoch.Store(&e)
	return nil
}

// Judge decides whether a peer (member name, epoch) may talk to this member. It
// returns nil to go on; otherwise the refusal, and, when the peer belongs to an older
// epoch, what to tell it. A peer of a newer epoch means this member is the one cut off.
func (f *Fence) Judge(member string, peer api.Epoch) (*api.CutOff, error) {
	if c := f.CutOff(); c != nil {
		return nil, fmt.Errorf("%w: %s is cut off from the cluster: %s", ErrEpoch, f.self(), c.Error())
	}
	local := f.Current()
	switch {
	case local.Same(peer):
		return nil, nil
	case peer.Number < local.Number:
		f.log.Warn("refused a member of an older cluster epoch", "member", member, "its_epoch", peer.String(), "epoch", local.String())
		return &api.CutOff{Epoch: local, By: f.self()}, fmt.Errorf("%w: member %s belongs to %s, but the cluster is in %s: it was cut off; wipe and rejoin it (e.g. `orch recover --rejoin`)",
			ErrEpoch, member, peer, local)
	case peer.Number > local.Number:
		f.BecomeCutOff(api.CutOff{Epoch: peer, By: member})
		return nil, fmt.Errorf("%w: %s is in %s, newer than this member's %s: this member is cut off", ErrEpoch, member, peer, local)
	}
	return nil, fmt.Errorf("%w: member %s is in %s but this member is in %s: two recoveries diverged; keep one side and wipe and rejoin the other",
		ErrEpoch, member, peer, local)
}

// BecomeCutOff records that this member no longer belongs to the cluster and stops its raft
// node, once.
func (f *Fence) BecomeCutOff(c api.CutOff) {
	if !f.cutOff.CompareAndSwap(nil, &c) {
		return
	}
	f.log.Error("this member is cut off from the cluster", "reason", c.Error())
	if err := f.local.SetCutOff(c); err != nil {
		f.log.Warn("recording the cut-off failed", "err", err)
	}
	go f.retire()
}

// raftFence is the netmux.Fence of this member's raft connections.
type raftFence struct{ d *Fence }

// Raft is the netmux.Fence of this member's raft connections.
func (f *Fence) Raft() netmux.Fence { return raftFence{d: f} }

// Hello implements netmux.Fence.
func (f raftFence) Hello() []byte {
	b, _ := json.Marshal(epochHello{Member: f.d.self(), Epoch: f.d.Current()})
	return b
}

// Admit implements netmux.Fence.
func (f raftFence) Admit(hello []byte) ([]byte, bool) {
	ans := epochAnswer{Member: f.d.self(), Epoch: f.d.Current()}
	var h epochHello
	if err := json.Unmarshal(hello, &h); err != nil {
		ans.Error = "bad raft hello: " + err.Error()
	} else if cut, err := f.d.Judge(h.Member, h.Epoch); err != nil {
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
		f.d.BecomeCutOff(*a.CutOff)
	}
	if a.OK {
		// The acceptor admitted us; a newer epoch on its side is still ours to notice.
		_, err := f.d.Judge(a.Member, a.Epoch)
		return err
	}
	return fmt.Errorf("raft connection refused by %s (%s): %s", a.Member, addr, a.Error)
}

// Legacy implements netmux.Fence: an agent older than epochs is in epoch 0, so it may
// speak raft only while this member is in epoch 0 too.
func (f raftFence) Legacy() bool {
	return f.d.CutOff() == nil && f.d.Current().Number == 0
}

// CheckPeer is the cluster API's half of the fence: a request from another member
// (cluster certificate) carries its epoch; a different one is refused, and a requester of
// an older epoch is told it was cut off.
func (f *Fence) CheckPeer(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set(peerEpochHdr, Encode(f.Current()))
	var peer api.Epoch
	if v := r.Header.Get(Header); v != "" {
		if err := json.Unmarshal([]byte(v), &peer); err != nil {
			return rest.BadRequest("%s: %v", Header, err)
		}
	}
	cut, err := f.Judge(r.Header.Get(MemberHeader), peer)
	if err == nil {
		return nil
	}
	if cut != nil {
		SetCutOff(w, r.Header.Get(MemberHeader), *cut)
	}
	return rest.NotApplied(api.Errorf(http.StatusConflict, "%v", err))
}

// SetCutOff tells member, in the answer's headers, why it is cut off.
func SetCutOff(w http.ResponseWriter, member string, c api.CutOff) {
	b, _ := json.Marshal(c)
	w.Header().Set(CutOffHeader, string(b))
	w.Header().Set(CutOffTarget, member)
}

// CutOffFor reads a cut-off notice addressed to member from an answer's headers.
func CutOffFor(h http.Header, member string) *api.CutOff {
	v := h.Get(CutOffHeader)
	if v == "" || h.Get(CutOffTarget) != member {
		return nil
	}
	var c api.CutOff
	if json.Unmarshal([]byte(v), &c) != nil {
		return nil
	}
	return &c
}

// Encode is e as a header value.
func Encode(e api.Epoch) string {
	b, _ := json.Marshal(e)
	return string(b)
}

// epochTransport adds this member's epoch to every request to another member and learns
// from the answers: a refusal carrying CutOffHeader, or an answer from a newer epoch, cuts
// this member off.
type epochTransport struct {
	d    *Fence
	next http.RoundTripper
}

// Transport wraps next so that every request to another member carries this member's
// epoch and every answer is judged (epochTransport).
func (f *Fence) Transport(next http.RoundTripper) http.RoundTripper {
	return epochTransport{d: f, next: next}
}

// RoundTrip implements http.RoundTripper.
func (t epochTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set(Header, Encode(t.d.Current()))
	req.Header.Set(MemberHeader, t.d.self())
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if c := CutOffFor(resp.Header, t.d.self()); c != nil {
		t.d.BecomeCutOff(*c)
	} else if v := resp.Header.Get(peerEpochHdr); v != "" {
		var e api.Epoch
		if json.Unmarshal([]byte(v), &e) == nil && e.Number > t.d.Current().Number {
			_, _ = t.d.Judge(req.URL.Host, e)
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

// RefuseIfCutOff refuses every other request of a cut-off member, saying why.
func (f *Fence) RefuseIfCutOff(pattern string, unix bool) error {
	c := f.CutOff()
	if c == nil || cutOffAllowed[pattern] || unix && pattern == "GET /1.0" {
		return nil
	}
	return rest.NotApplied(api.Errorf(http.StatusServiceUnavailable, "%s: %s", f.self(), c.Error()))
}

// Next is the epoch a recovery on member starts after from.
func Next(from api.Epoch, member string) api.Epoch {
	return api.Epoch{Number: from.Number + 1, Member: member, Time: time.Now().UTC().Truncate(time.Millisecond)}
}
