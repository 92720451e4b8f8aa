package store

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raft's leader sends a follower its next heartbeat only once the previous one was
// answered, so over a slow link heartbeats arrive their interval plus a round trip apart,
// and the gap the follower's timeout and the leader's lease allow for shrinks by the
// round trip. The leader therefore shortens its heartbeat interval by the round trip of
// its slowest voter, measured on its own heartbeats: the gap stays what it is on a LAN.
// With the 800 ms defaults at 100 ms RTT: heartbeats 140-380 ms apart instead of 240-480,
// the longest gap 480 ms instead of 580, against a 790 ms lease.

// heartbeatRTTs are the leader's smoothed heartbeat round trips by follower.
type heartbeatRTTs struct {
	mu      sync.Mutex
	smooth  map[raft.ServerID]time.Duration
	checked time.Time // when the slowest voter was last worked out
}

// rttAlpha is the weight of a new round trip in the smoothed one (1/rttAlpha).
const rttAlpha = 4

// rttEvery is how often the leader works out its slowest voter's round trip again, and
// rttStep the least change it applies (raft.ReloadConfig).
const (
	rttEvery = time.Second
	rttStep  = 20 * time.Millisecond
)

// observe records one heartbeat's round trip to id and reports, at most every rttEvery,
// that the slowest voter's smoothed round trip should be worked out again.
func (h *heartbeatRTTs) observe(id raft.ServerID, d time.Duration, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.smooth == nil {
		h.smooth = map[raft.ServerID]time.Duration{}
	}
	if old, ok := h.smooth[id]; ok {
		d = old + (d-old)/rttAlpha
	}
	h.smooth[id] = d
	if now.Sub(h.checked) < rttEvery {
		return false
	}
	h.checked = now
	return true
}

// slowest is the largest smoothed round trip among the voters of conf other than self.
func (h *heartbeatRTTs) slowest(self raft.ServerID, conf raft.Configuration) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var worst time.Duration
	for _, sv := range conf.Servers {
		if sv.Suffrage == raft.Voter && sv.ID != self {
			worst = max(worst, h.smooth[sv.ID])
		}
	}
	return worst
}

// heartbeatAnswered is called on the leader for every heartbeat a follower answered, sent
// at sent: it keeps the slowest voter's round trip in the leader's running timeouts.
func (s *Store) heartbeatAnswered(id raft.ServerID, sent time.Time) {
	now := time.Now()
	if !s.rtts.observe(id, now.Sub(sent), now) {
		return
	}
	r := s.timers.node()
	if r == nil {
		return
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	s.timers.setRTT(s.rtts.slowest(raft.ServerID(s.cfg.ID), f.Configuration()))
}
