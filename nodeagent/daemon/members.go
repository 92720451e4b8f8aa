package daemon

import (
	"context"
	"time"

	"orch/nodeagent/config"
	"orch/nodeagent/version"
)

// memberRow is one row of the members table.
type memberRow struct {
	id            int64
	name, address string
	clientAddress string
	ver           version.Info
	heartbeat     time.Time
}

// online reports whether the member's last heartbeat is at most threshold old at now, a
// time of the leader's clock (Daemon.clusterNow): heartbeats are recorded by the leader's
// clock, so comparing them with another member's clock would make every member look
// OFFLINE (or ONLINE forever) on a member whose clock is off.
func (m memberRow) online(now time.Time, threshold time.Duration) bool {
	return m.age(now) <= threshold
}

// age is how long ago, at now (the leader's clock), the member's last heartbeat was.
func (m memberRow) age(now time.Time) time.Duration { return now.Sub(m.heartbeat) }

const memberColumns = `id, name, address, client_address, version, schema, api_level, heartbeat`

func scanMembers(rows Rows) []memberRow {
	out := make([]memberRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, memberRow{
			id: i64(r[0]), name: str(r[1]), address: str(r[2]), clientAddress: str(r[3]),
			ver:       version.Info{Version: str(r[4]), Schema: int(i64(r[5])), APILevel: int(i64(r[6]))},
			heartbeat: time.UnixMilli(i64(r[7])),
		})
	}
	return out
}

// members reads every member, linearizably.
func (d *Daemon) members(ctx context.Context) ([]memberRow, error) {
	rows, err := d.query(ctx, `SELECT `+memberColumns+` FROM members ORDER BY id`)
	return scanMembers(rows), err
}

// membersLocal reads every member from the local replica (leader-side loops).
func (d *Daemon) membersLocal(ctx context.Context) ([]memberRow, error) {
	rows, err := d.queryLocal(ctx, `SELECT `+memberColumns+` FROM members ORDER BY id`)
	return scanMembers(rows), err
}

// globalConfig reads the cluster-wide configuration (defaults applied), linearizably.
func (d *Daemon) globalConfig(ctx context.Context) (map[string]string, error) {
	rows, err := d.query(ctx, `SELECT key, value FROM config`)
	return configFromRows(rows), err
}

func (d *Daemon) globalConfigLocal(ctx context.Context) (map[string]string, error) {
	rows, err := d.queryLocal(ctx, `SELECT key, value FROM config`)
	return configFromRows(rows), err
}

func configFromRows(rows Rows) map[string]string {
	cfg := config.Defaults()
	for _, r := range rows {
		cfg[str(r[0])] = str(r[1])
	}
	return cfg
}

func offlineThreshold(cfg map[string]string) time.Duration {
	return time.Duration(config.Int(cfg, "cluster.offline_threshold")) * time.Second
}

// onlineMembers lists the members whose heartbeat is recent, in id order.
func (d *Daemon) onlineMembers(ctx context.Context) ([]memberRow, error) {
	ms, err := d.members(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := d.globalConfig(ctx)
	if err != nil {
		return nil, err
	}
	th, now := offlineThreshold(cfg), d.clusterNow()
	var out []memberRow
	for _, m := range ms {
		if m.online(now, th) {
			out = append(out, m)
		}
	}
	return out, nil
}
