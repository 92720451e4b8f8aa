package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon"
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
		if probes, err = daemon.ProbeOthers(g.Dir, info); err != nil {
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
	if daemon.Running(g.Dir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := g.client().Database(ctx)
		if err != nil && strings.Contains(err.Error(), daemon.ErrStopping.Error()) {
			return nil, fmt.Errorf("the daemon in %s: %w; run list-database again once it has stopped to read its files", g.Dir, err)
		}
		if err != nil {
			return nil, fmt.Errorf("the daemon in %s runs but did not answer: %w (stop it to read its files)", g.Dir, err)
		}
		return info, nil
	}
	ldb, err := daemon.OpenLocal(g.Dir)
	if err != nil {
		return nil, err
	}
	defer ldb.Close()
	return daemon.OfflineInfo(g.Dir, ldb)
}

// ErrMembersAlive is the fencing refusal of recover-from-quorum-loss.
var ErrMembersAlive = daemon.ErrMembersAlive

// ClusterRecoverCmd rewrites the raft configuration so this member is the only voter.
type ClusterRecoverCmd struct {
	Yes   bool `help:"Do not ask for confirmation."`
	Force bool `help:"Recover even when other members answer as running (risks a split brain)."`
}

// Run refuses while the daemon runs or while another member answers as running (unless
// --force); backs the database up, recovers, and starts a new cluster epoch
// (daemon.PlanRecovery, RecoveryPlan.Fence, RecoveryPlan.Recover).
func (c *ClusterRecoverCmd) Run(g *Globals) error {
	if daemon.Running(g.Dir) {
		return fmt.Errorf("%w in %s: stop it first", daemon.ErrRunning, g.Dir)
	}
	ldb, err := daemon.OpenLocal(g.Dir)
	if err != nil {
		return err
	}
	defer ldb.Close()
	plan, err := daemon.PlanRecovery(g.Dir, ldb)
	if err != nil {
		return err
	}
	alive, err := plan.Fence(c.Force)
	if err != nil {
		return err
	}
	if !c.Yes && !confirm(g, recoverQuestion(plan.Info.Member, plan.Next, alive)) {
		return errors.New("aborted: nothing changed")
	}
	res, err := plan.Recover(ldb, time.Now())
	if err != nil {
		return err
	}
	printRecovered(g.Stdout, plan, res)
	return nil
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

// printRecovered says what the recovery did and what to do next.
func printRecovered(w io.Writer, plan daemon.RecoveryPlan, res daemon.RecoveryResult) {
	fmt.Fprintf(w, "Recovered: %s is now the only database member, in cluster %s (backup in %s).\n", plan.Info.Member, plan.Next, res.Backup)
	fmt.Fprintf(w, "Kept %d log entries beyond the last known-committed index %d (log ends at index %d, term %d): they were in this member's log but it never learnt whether they were committed, so some may be writes no client saw acknowledged.\n",
		res.Kept, res.Before.AppliedIndex, res.Before.LastLogIndex, res.Before.LastLogTerm)
	fmt.Fprintf(w, "Start the daemon, then remove the lost members with `nodeagent cluster remove --force NAME`; members of the old epoch are refused until wiped and rejoined.\n")
}
