package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"orch/nodeagent/config"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
)

// raftTimings follows the cluster's raft timing keys (config.RaftTimings) on this member.
type raftTimings struct {
	// fixed is set when the daemon was started with explicit timings (its test flags):
	// then the cluster's keys are not followed.
	fixed   bool
	mu      sync.Mutex
	applied uint64 // the replica's applied index when the keys were last read
	warned  string // the timings a warning was last logged for
}

// storeTimings are the raft timings to open the store with: the explicit ones, or the
// cluster's as this member last applied them (defaults before it ever did).
func (d *Daemon) storeTimings() store.Timings {
	if d.timings.fixed {
		return d.cfg.Timings
	}
	t := store.DefaultTimings()
	v, err := d.local.Get(localdb.KeyRaftTimings)
	if err != nil || v == "" {
		return t
	}
	saved, err := parseRaftTimings(t, v)
	if err != nil {
		d.log.Warn("ignoring the recorded raft timings", "value", v, "err", err)
		return t
	}
	return saved
}

// clusterTimings are the default timings with the three of the cluster's configuration,
// brought in line with what raft requires should concurrent changes have combined badly.
func clusterTimings(cfg map[string]string) store.Timings {
	t := store.DefaultTimings()
	hb, el, lease := config.RaftTimings(cfg)
	t.Heartbeat, t.Election, t.LeaderLease = hb, max(el, hb), min(lease, hb)
	return t
}

// formatRaftTimings is the node-local record of the heartbeat, election and lease timeouts.
func formatRaftTimings(t store.Timings) string {
	return fmt.Sprintf("%v %v %v", t.Heartbeat, t.Election, t.LeaderLease)
}

func parseRaftTimings(base store.Timings, v string) (store.Timings, error) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return base, fmt.Errorf("want three durations, got %q", v)
	}
	var ds [3]time.Duration
	for i, s := range f {
		d, err := time.ParseDuration(s)
		if err != nil {
			return base, err
		}
		ds[i] = d
	}
	base.Heartbeat, base.Election, base.LeaderLease = ds[0], ds[1], ds[2]
	return base, base.Validate()
}

// followRaftTimings applies the cluster's raft timing keys from this member's replica when
// it has applied new entries: the heartbeat and election timeouts at once, all three (the
// leader lease included) from the daemon's next start, through the node-local record. The
// leader calls it each heartbeat round, the other members on each heartbeat.
func (d *Daemon) followRaftTimings(ctx context.Context) {
	st := d.store()
	if d.timings.fixed || st == nil {
		return
	}
	d.timings.mu.Lock()
	defer d.timings.mu.Unlock()
	applied := st.AppliedIndex()
	if applied == d.timings.applied {
		return
	}
	cfg, err := d.globalConfigLocal(ctx)
	if err != nil {
		return
	}
	d.timings.applied = applied
	t := clusterTimings(cfg)
	rec := formatRaftTimings(t)
	if cur, _ := d.local.Get(localdb.KeyRaftTimings); cur != rec {
		if err := d.local.Set(map[string]string{localdb.KeyRaftTimings: rec}); err != nil {
			d.log.Warn("recording the raft timings failed", "err", err)
		}
	}
	if hb, el := st.ElectionTimings(); hb == t.Heartbeat && el == t.Election {
		return
	}
	if err := st.SetElectionTimings(t.Heartbeat, t.Election); err != nil {
		if d.timings.warned != rec {
			d.timings.warned = rec
			d.log.Warn("raft timings take effect when the daemon restarts", "timings", rec, "err", err)
		}
		return
	}
	d.log.Info("raft timings applied", "heartbeat", t.Heartbeat, "election", t.Election, "leader_lease_from_restart", t.LeaderLease)
}
