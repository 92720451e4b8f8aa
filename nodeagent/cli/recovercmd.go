package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon"
	"orch/nodeagent/localdb"
	"orch/nodeagent/store"
	"orch/output"
)

// ClusterListDatabaseCmd prints the database members, this member's last raft log entry
// and last applied entry, and its cluster epoch: from the daemon when it runs, from the
// agent directory's files otherwise (the raft log is read from a copy).
type ClusterListDatabaseCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
	Probe  bool          `help:"Also ask the other database members (cluster network, 2 s) whether they run."`
}

// Run prints the database members.
func (c *ClusterListDatabaseCmd) Run(g *Globals) error {
	if err := c.Format.Validate(); err != nil {
		return err
	}
	info, err := databaseInfo(g)
	if err != nil {
		return err
	}
	var probes []daemon.PeerProbe
	if c.Probe {
		if probes, err = probeOthers(g.Dir, info); err != nil {
			return err
		}
		for _, p := range probes {
			if p.Running() {
				info.Alive = append(info.Alive, p.Member)
			}
		}
	}
	if err := output.Render(g.Stdout, c.Format, info, func() ([]string, [][]string) {
		rows := [][]string{}
		for _, m := range info.Members {
			rows = append(rows, []string{m.Name, m.Address, m.Role})
		}
		return []string{"NAME", "ADDRESS", "ROLE"}, rows
	}); err != nil {
		return err
	}
	if c.Format == output.FormatTable || c.Format == "" {
		printPosition(g.Stdout, info)
		printProbes(g.Stdout, probes)
	}
	return nil
}

// printPosition prints the raft log position, epoch and cut-off state under the table.
func printPosition(w io.Writer, info *api.DatabaseInfo) {
	fmt.Fprintf(w, "Last raft log entry: index %d (term %d)\n", info.LastLogIndex, info.LastLogTerm)
	fmt.Fprintf(w, "Last applied entry: index %d (term %d)\n", info.LastIndex, info.LastTerm)
	fmt.Fprintf(w, "Cluster %s\n", info.Epoch)
	if info.CutOff != nil {
		fmt.Fprintf(w, "Cut off: %s\n", info.CutOff.Error())
	}
}

func printProbes(w io.Writer, probes []daemon.PeerProbe) {
	for _, p := range probes {
		state := "not answering"
		switch {
		case p.CutOff != nil:
			state = "running, in a newer epoch: " + p.CutOff.Error()
		case p.Running():
			state = "running as a cluster member"
		case p.State != nil && p.State.CutOff != nil:
			state = "running but cut off"
		case p.Err != nil:
			state = "not answering (" + p.Err.Error() + ")"
		}
		fmt.Fprintf(w, "Member %s (%s): %s\n", p.Member, p.Address, state)
	}
}

func databaseInfo(g *Globals) (*api.DatabaseInfo, error) {
	if daemonRunning(g) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := g.client().Database(ctx)
		if err != nil {
			return nil, fmt.Errorf("the daemon in %s runs but did not answer: %w (stop it to read its files)", g.Dir, err)
		}
		return info, nil
	}
	ldb, err := openLocal(g.Dir)
	if err != nil {
		return nil, err
	}
	defer ldb.Close()
	return offlineInfo(g.Dir, ldb)
}

// offlineInfo reads the database view of a stopped member from its files.
func offlineInfo(dir string, ldb *localdb.DB) (*api.DatabaseInfo, error) {
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

// probeOthers asks the other database members whether they run (the fencing check).
func probeOthers(dir string, info *api.DatabaseInfo) ([]daemon.PeerProbe, error) {
	if info.Member == "" {
		return nil, nil // not a member: nobody to ask
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*daemon.ProbeTimeout)
	defer cancel()
	return daemon.ProbePeers(ctx, dir, info.Member, info.Epoch, info.Members)
}

func openLocal(dir string) (*localdb.DB, error) {
	path := filepath.Join(dir, "local.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no agent in %s: %w", dir, err)
	}
	return localdb.Open(path)
}

// daemonRunning reports whether a daemon listens on the agent directory's socket. It only
// connects: a daemon that lost quorum may not answer requests in time, yet it holds the
// database files and must not have them rewritten under it.
func daemonRunning(g *Globals) bool {
	c, err := net.DialTimeout("unix", daemon.SocketPath(g.Dir), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ErrMembersAlive is the fencing refusal of recover-from-quorum-loss.
var ErrMembersAlive = errors.New("other members answer as running cluster members")

// ClusterRecoverCmd rewrites the raft configuration so this member is the only voter.
type ClusterRecoverCmd struct {
	Yes   bool `help:"Do not ask for confirmation."`
	Force bool `help:"Recover even when other members answer as running (risks a split brain)."`
}

// Run refuses while the daemon runs or while another member answers as running (unless
// --force); backs the database up, recovers, and starts a new cluster epoch.
func (c *ClusterRecoverCmd) Run(g *Globals) error {
	if daemonRunning(g) {
		return fmt.Errorf("%w in %s: stop it first", daemon.ErrRunning, g.Dir)
	}
	ldb, err := openLocal(g.Dir)
	if err != nil {
		return err
	}
	defer ldb.Close()
	info, err := offlineInfo(g.Dir, ldb)
	if err != nil {
		return err
	}
	addr, _ := ldb.Get("cluster.https_address")
	if info.Member == "" || addr == "" {
		return fmt.Errorf("%s holds no cluster member", g.Dir)
	}
	if info.CutOff != nil {
		return fmt.Errorf("refusing to recover %s: %s", info.Member, info.CutOff.Error())
	}
	alive, err := c.fence(g, info)
	if err != nil {
		return err
	}
	next := daemon.NextEpoch(info.Epoch, info.Member)
	if !c.Yes && !confirm(g, recoverQuestion(info.Member, next, alive)) {
		return errors.New("aborted: nothing changed")
	}
	return recoverHere(g, ldb, info, addr, next)
}

// fence asks the other database members whether they run: any that answers means quorum
// may not be lost at all (a partition, or a mistake), and recovering would split the
// cluster. It refuses then, naming them, unless --force; with --force it returns them.
func (c *ClusterRecoverCmd) fence(g *Globals, info *api.DatabaseInfo) ([]string, error) {
	probes, err := probeOthers(g.Dir, info)
	if err != nil {
		return nil, err
	}
	var alive []string
	for _, p := range probes {
		if p.CutOff != nil {
			return nil, fmt.Errorf("refusing to recover %s: %s answers that %s", info.Member, p.Member, p.CutOff.Error())
		}
		if p.Running() {
			alive = append(alive, fmt.Sprintf("%s (%s)", p.Member, p.Address))
		}
	}
	if len(alive) > 0 && !c.Force {
		return nil, fmt.Errorf("%w: %s; refusing to recover %s: the cluster may still have quorum, and recovering now would split it in two (two leaders, diverging data). Stop those members or fix the network, then retry; --force recovers anyway",
			ErrMembersAlive, strings.Join(alive, ", "), info.Member)
	}
	return alive, nil
}

// recoverQuestion is the confirmation prompt: what recovery does and what it risks.
func recoverQuestion(name string, next api.Epoch, alive []string) string {
	q := fmt.Sprintf("Recover %s as the only database member and start cluster epoch %d? Every other member is cut off and must be wiped and rejoined.", name, next.Number)
	if len(alive) > 0 {
		q += fmt.Sprintf(" WARNING: %s answered as running: if they still hold a majority, this creates a split brain (two clusters accepting writes; the other side's writes are lost).", strings.Join(alive, ", "))
	} else {
		q += " If the other members are only unreachable from here and still hold a majority, this creates a split brain."
	}
	return q + " (yes/no) [default=no]: "
}

// recoverHere backs the database up, makes this member the only voter and records the new
// epoch.
func recoverHere(g *Globals, ldb *localdb.DB, info *api.DatabaseInfo, addr string, next api.Epoch) error {
	dbDir := filepath.Join(g.Dir, "database")
	backup := dbDir + ".backup-" + time.Now().UTC().Format("20060102-150405")
	if err := store.CopyTree(dbDir, backup); err != nil {
		return fmt.Errorf("backing up %s: %w", dbDir, err)
	}
	rec, err := store.RecoverSingleVoter(store.Config{Dir: dbDir, ID: info.Member, Address: addr})
	if err != nil {
		return err
	}
	if err := ldb.SetRaftNodes([]api.DatabaseMember{{Name: info.Member, Address: addr, Role: "voter"}}); err != nil {
		return err
	}
	if err := ldb.SetEpoch(next); err != nil {
		return err
	}
	if err := ldb.Set(map[string]string{localdb.KeyRecovered: "1"}); err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Recovered: %s is now the only database member, in cluster %s (backup in %s).\n", info.Member, next, backup)
	fmt.Fprintf(g.Stdout, "Kept %d log entries beyond the last known-committed index %d (log ends at index %d, term %d): they were in this member's log but it never learnt whether they were committed, so some may be writes no client saw acknowledged.\n",
		rec.Kept, rec.Before.AppliedIndex, rec.Before.LastLogIndex, rec.Before.LastLogTerm)
	fmt.Fprintf(g.Stdout, "Start the daemon, then remove the lost members with `nodeagent cluster remove --force NAME`; members of the old epoch are refused until wiped and rejoined.\n")
	return nil
}
