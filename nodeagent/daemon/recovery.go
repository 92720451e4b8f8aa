package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
)

// Recovery from quorum loss, with the daemon stopped (`nodeagent cluster list-database`,
// `nodeagent cluster recover-from-quorum-loss`): reading the member's database view from
// its files, the fencing check, and the recovery itself (backup, raft configuration
// rewrite, node-local database update). The CLI parses flags, confirms and prints.

// Recovery errors.
var (
	// ErrMembersAlive is the fencing refusal: other members answer as running.
	ErrMembersAlive = errors.New("other members answer as running cluster members")
	// ErrNoMember means the agent directory holds no cluster member.
	ErrNoMember = errors.New("holds no cluster member")
)

// Running reports whether a daemon listens on the agent directory's socket. It only
// connects: a daemon that lost quorum may not answer requests in time, yet it holds the
// database files and must not have them rewritten under it.
func Running(dir string) bool {
	c, err := net.DialTimeout("unix", SocketPath(dir), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// OpenLocal opens the node-local database of the agent directory dir, refusing a
// directory that holds no agent (rather than creating one).
func OpenLocal(dir string) (*localdb.DB, error) {
	path := filepath.Join(dir, "local.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no agent in %s: %w", dir, err)
	}
	return localdb.Open(path)
}

// OfflineInfo reads the database view of a stopped member from its files (the raft log is
// read from a copy).
func OfflineInfo(dir string, ldb *localdb.DB) (*api.DatabaseInfo, error) {
	info := &api.DatabaseInfo{}
	var err error
	if info.Member, err = ldb.Get(localdb.KeyMemberName); err != nil {
		return nil, err
	}
	if info.Members, err = ldb.RaftNodes(); err != nil {
		return nil, err
	}
	if info.Members == nil {
		info.Members = []api.DatabaseMember{}
	}
	if info.Epoch, err = ldb.Epoch(); err != nil {
		return nil, err
	}
	if info.CutOff, err = ldb.CutOff(); err != nil {
		return nil, err
	}
	pos, err := store.Inspect(filepath.Join(dir, "database"))
	if err != nil {
		return nil, err
	}
	info.LastIndex, info.LastTerm = pos.AppliedIndex, pos.AppliedTerm
	info.LastLogIndex, info.LastLogTerm = pos.LastLogIndex, pos.LastLogTerm
	return info, nil
}

// ProbeOthers asks the other database members of info whether they run (the fencing
// check); nobody is asked when dir holds no member.
func ProbeOthers(dir string, info *api.DatabaseInfo) ([]PeerProbe, error) {
	if info.Member == "" {
		return nil, nil // not a member: nobody to ask
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*ProbeTimeout)
	defer cancel()
	return ProbePeers(ctx, dir, info.Member, info.Epoch, info.Members)
}

// RecoveryPlan is a recovery from quorum loss that passed its checks: the stopped member
// it makes the only voter and the epoch it starts.
type RecoveryPlan struct {
	// Dir is the agent directory.
	Dir string
	// Info is the member's database view, read from its files.
	Info *api.DatabaseInfo
	// Address is the member's cluster address.
	Address string
	// Next is the cluster epoch the recovery starts.
	Next api.Epoch
}

// PlanRecovery checks that the member of dir can be recovered: its daemon is stopped, it
// is a member, and it is not cut off by a recovery elsewhere. ldb is dir's node-local
// database (OpenLocal).
func PlanRecovery(dir string, ldb *localdb.DB) (RecoveryPlan, error) {
	if Running(dir) {
		return RecoveryPlan{}, fmt.Errorf("%w in %s: stop it first", ErrRunning, dir)
	}
	info, err := OfflineInfo(dir, ldb)
	if err != nil {
		return RecoveryPlan{}, err
	}
	addr, _ := ldb.Get("cluster.https_address")
	if info.Member == "" || addr == "" {
		return RecoveryPlan{}, fmt.Errorf("%s %w", dir, ErrNoMember)
	}
	if info.CutOff != nil {
		return RecoveryPlan{}, fmt.Errorf("refusing to recover %s: %s", info.Member, info.CutOff.Error())
	}
	return RecoveryPlan{Dir: dir, Info: info, Address: addr, Next: NextEpoch(info.Epoch, info.Member)}, nil
}

// Fence asks the other database members whether they run: any that answers means quorum
// may not be lost at all (a partition, or a mistake), and recovering would split the
// cluster. It refuses then, naming them (ErrMembersAlive), unless force; with force it
// returns them ("name (address)").
func (p RecoveryPlan) Fence(force bool) ([]string, error) {
	probes, err := ProbeOthers(p.Dir, p.Info)
	if err != nil {
		return nil, err
	}
	var alive []string
	for _, pr := range probes {
		if pr.CutOff != nil {
			return nil, fmt.Errorf("refusing to recover %s: %s answers that %s", p.Info.Member, pr.Member, pr.CutOff.Error())
		}
		if pr.Running() {
			alive = append(alive, fmt.Sprintf("%s (%s)", pr.Member, pr.Address))
		}
	}
	if len(alive) > 0 && !force {
		return nil, fmt.Errorf("%w: %s; refusing to recover %s: the cluster may still have quorum, and recovering now would split it in two (two leaders, diverging data). Stop those members or fix the network, then retry; --force recovers anyway",
			ErrMembersAlive, strings.Join(alive, ", "), p.Info.Member)
	}
	return alive, nil
}

// RecoveryResult says what Recover did.
type RecoveryResult struct {
	store.Recovery
	// Backup is the copy of the database directory taken before anything changed.
	Backup string
}

// Recover backs the database up (DIR/database.backup-<now, UTC>), makes this member the
// only voter, and records in the node-local database ldb the new raft members, the new
// epoch and that the next start follows a recovery (afterRecovery).
func (p RecoveryPlan) Recover(ldb *localdb.DB, now time.Time) (RecoveryResult, error) {
	dbDir := filepath.Join(p.Dir, "database")
	res := RecoveryResult{Backup: dbDir + ".backup-" + now.UTC().Format("20060102-150405")}
	if err := store.CopyTree(dbDir, res.Backup); err != nil {
		return res, fmt.Errorf("backing up %s: %w", dbDir, err)
	}
	rec, err := store.RecoverSingleVoter(store.Config{Dir: dbDir, ID: p.Info.Member, Address: p.Address})
	if err != nil {
		return res, err
	}
	res.Recovery = rec
	if err := ldb.SetRaftNodes([]api.DatabaseMember{{Name: p.Info.Member, Address: p.Address, Role: "voter"}}); err != nil {
		return res, err
	}
	if err := ldb.SetEpoch(p.Next); err != nil {
		return res, err
	}
	return res, ldb.Set(map[string]string{localdb.KeyRecovered: "1"})
}
