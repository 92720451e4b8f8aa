package daemon

import (
	"context"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/epoch"
)

// The daemon's side of cluster epochs (daemon/epoch): its names for the fence's state,
// stopping the raft node of a cut-off member, and recording the epoch in the replicated
// database after a recovery.

// ErrEpoch is the refusal of a peer whose epoch differs from this member's.
var ErrEpoch = epoch.ErrEpoch

// currentEpoch is this member's epoch.
func (d *Daemon) currentEpoch() api.Epoch { return d.fence.Current() }

// cutOffState is why this member was cut off, nil when it was not.
func (d *Daemon) cutOffState() *api.CutOff { return d.fence.CutOff() }

// adoptEpoch records the epoch of the cluster this member joins.
func (d *Daemon) adoptEpoch(e api.Epoch) error { return d.fence.Adopt(e) }

// NextEpoch is the epoch a recovery on member starts after from.
func NextEpoch(from api.Epoch, member string) api.Epoch { return epoch.Next(from, member) }

// retire stops the raft node and the member loops of a cut-off member; its listeners stay,
// to say why it refuses.
func (d *Daemon) retire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	d.stopMemberLoopsLocked()
	if st := d.st.Swap(nil); st != nil {
		if err := st.Close(); err != nil {
			d.log.Warn("closing the database", "err", err)
		}
	}
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
