package cli

import (
	"context"

	"orch/nodeagent/api"
	"orch/orchestrator"
)

// inventoryMember is how orch reaches a member for the cluster verbs: mutual TLS to the
// first inventory host (--limit applied) that answers and trusts orch's certificate.
type inventoryMember struct{ g *Globals }

// Reach returns a client of that member and its name, which starts the errors of the
// verbs (orch may reach any member); a target restricts the candidates to its host.
func (m inventoryMember) Reach(ctx context.Context, target string) (*api.Client, string, func(), error) {
	mb, done, err := orchestrator.ClusterMember(ctx, m.g.options(), target)
	if err != nil {
		return nil, "", nil, err
	}
	return mb.Client, mb.Name, done, nil
}
