package store

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Recovery says what RecoverSingleVoter did.
type Recovery struct {
	// Before is the member's position before the recovery.
	Before Position
	// Kept is how many log entries beyond the last known-committed (applied) index the
	// recovery kept: raft.RecoverCluster applies the whole log, so entries that were
	// written here but never committed (never acknowledged to a client) become part of
	// the recovered database.
	Kept uint64
}

// RecoverSingleVoter rewrites the raft configuration of a stopped member so
// that it is the only voter, keeping every row: the log is applied to the
// database, a snapshot with the new configuration is written and the log is
// compacted (raft.RecoverCluster). cfg.Stream is not used. Backing up cfg.Dir
// first is the caller's job. The next Open starts a one-voter cluster that
// elects this member.
func RecoverSingleVoter(cfg Config) (Recovery, error) {
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		return Recovery{}, err
	}
	hlog := newHCLogger(cfg.Logger)
	d, err := openDisk(cfg, hlog)
	if err != nil {
		return Recovery{}, err
	}
	var rec Recovery
	applied, _, _ := d.fsm.state()
	rec.Before = Position{AppliedIndex: applied.index, AppliedTerm: applied.term}
	if rec.Before.LastLogIndex, rec.Before.LastLogTerm, err = lastEntry(d.logs, cfg.Dir); err == nil {
		rec.Kept = rec.Before.Unapplied()
		err = recoverDisk(cfg, hlog, d)
	}
	if err != nil {
		d.close()
		return rec, fmt.Errorf("recovering %s in %s: %w", cfg.ID, cfg.Dir, err)
	}
	return rec, d.close()
}

// recoverDisk runs raft.RecoverCluster on an opened disk.
func recoverDisk(cfg Config, hlog hclog.Logger, d *disk) error {
	rc := cfg.Timings.raftConfig(cfg.ID)
	rc.Logger = hlog.Named("raft")
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.Address),
	}}}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.Address))
	defer trans.Close()
	if err := raft.RecoverCluster(rc, d.fsm, d.logs, d.logs, d.snaps, trans, conf); err != nil {
		return err
	}
	// The database now holds every entry up to the new snapshot's index (the
	// ones after its last command are no-ops); record that so the next Open
	// does not restore the snapshot again.
	metas, err := d.snaps.List()
	if err != nil {
		return fmt.Errorf("listing snapshots after recovery: %w", err)
	}
	if len(metas) == 0 {
		return fmt.Errorf("no snapshot after recovery in %s", cfg.Dir)
	}
	return d.fsm.forceApplied(position{metas[0].Index, metas[0].Term})
}
