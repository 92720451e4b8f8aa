package daemon

import (
	"context"
	"net/http"

	"orch/modules/lxc"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/metrics"
	"orch/nodeagent/store"
)

// newMetrics builds GET /1.0/metrics over the daemon (daemon/metrics declares what it needs).
func newMetrics(d *Daemon) *metrics.Service {
	return metrics.New(metrics.Deps{
		Callers: metricsAccess{d}, Trust: metricsAccess{d}, Config: memberAccess{d}, Members: memberAccess{d},
		Peers: peerAccess{d}, Cluster: metricsAccess{d}, Instances: metricsAccess{d}.instances,
		Started: d.now(), Log: d.log,
	})
}

// metricsAccess is the daemon as the metrics domain sees it.
type metricsAccess struct{ d *Daemon }

// Caller is who sent r.
func (a metricsAccess) Caller(r *http.Request) metrics.Caller {
	c := a.d.srv.CallerOf(r)
	return metrics.Caller{Fingerprint: c.FP, Trusted: c.Trusted}
}

// IsMetricsClient reports whether fp is a certificate of type metrics (daemon/trust).
func (a metricsAccess) IsMetricsClient(ctx context.Context, fp string) bool {
	return a.d.trust.IsMetricsClient(ctx, fp)
}

// Raft is this member's database role and indexes.
func (a metricsAccess) Raft() (metrics.Raft, bool) {
	st := a.d.store()
	if st == nil {
		return metrics.Raft{}, false
	}
	r := metrics.Raft{Role: "spare", AppliedIndex: st.AppliedIndex(), CommitIndex: st.CommitIndex()}
	if p, err := st.Position(); err == nil {
		r.LastLogIndex = p.LastLogIndex
	}
	servers, _ := st.Servers()
	for _, s := range servers {
		switch {
		case s.ID != a.d.memberName():
		case st.IsLeader():
			r.Role = api.RoleDatabaseLeader
		case s.Suffrage == store.SuffrageVoter:
			r.Role = api.RoleDatabase
		case s.Suffrage == store.SuffrageNonvoter:
			r.Role = api.RoleDatabaseStandby
		}
	}
	return r, true
}

// Members are the members with their status and heartbeat age by the leader's clock.
func (a metricsAccess) Members(ctx context.Context) ([]metrics.MemberHealth, error) {
	ms, err := a.d.members(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := a.d.globalConfig(ctx)
	if err != nil {
		return nil, err
	}
	th, now := offlineThreshold(cfg), a.d.clusterNow()
	out := make([]metrics.MemberHealth, 0, len(ms))
	for _, m := range ms {
		st := api.StatusOffline
		if m.online(now, th) {
			st = api.StatusOnline
		}
		out = append(out, metrics.MemberHealth{Name: m.name, Status: st, HeartbeatAge: max(m.age(now), 0)})
	}
	return out, nil
}

// instances are this member's running containers.
func (a metricsAccess) instances(ctx context.Context) ([]metrics.Instance, error) {
	m, _, err := a.d.drivers()
	if err != nil {
		return nil, err
	}
	infos, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []metrics.Instance
	for _, in := range infos {
		if in.State == lxc.StateRunning && in.PID > 0 {
			out = append(out, metrics.Instance{Name: in.Name, Project: "default", Type: "container", PID: in.PID})
		}
	}
	return out, nil
}
