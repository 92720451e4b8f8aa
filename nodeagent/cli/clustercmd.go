package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"orch/nodeagent/api/pki"
	"orch/nodeagent/api/verbs"
)

// ClusterCmd is the shared `cluster` verbs plus what only the agent can do: read its
// own database with the daemon stopped, recover from quorum loss, print its fingerprint.
type ClusterCmd struct {
	verbs.ClusterCmd      `embed:""`
	ListDatabase          ClusterListDatabaseCmd `cmd:"" name:"list-database" help:"List the database members (works with the daemon stopped)."`
	RecoverFromQuorumLoss ClusterRecoverCmd      `cmd:"" name:"recover-from-quorum-loss" help:"Make this member the only database voter after losing quorum (daemon stopped)."`
	Fingerprint           ClusterFingerprintCmd  `cmd:"" help:"Print the cluster certificate's fingerprint."`
}

// confirm asks a yes/no question on the CLI's streams.
func confirm(g *Globals, question string) bool { return verbs.Confirm(g.Stdin, g.Stdout, question) }

// ClusterFingerprintCmd prints the cluster certificate's fingerprint, to confirm a join.
type ClusterFingerprintCmd struct{}

// Run reads DIR/cluster.crt.
func (c *ClusterFingerprintCmd) Run(g *Globals) error {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cluster.crt"))
	if err != nil {
		return fmt.Errorf("this member has no cluster certificate: %w", err)
	}
	fp, err := pki.FingerprintPEM(b)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, fp)
	return nil
}
