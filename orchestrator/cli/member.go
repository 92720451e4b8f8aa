package cli

import (
	"context"

	"orch/nodeagent/api"
	"orch/orchestrator"
)

// inventoryMember is how orch reaches a member for the cluster verbs: mutual TLS to the
// first inventory host (--limit applied) that answers and trusts orch's certificate.
type inventoryMember struct{ g *Globals }

// Reach returns a client of that member; a target restricts the candidates to its host.
func (m inventoryMember) Reach(ctx context.Context, target string) (*api.Client, func(), error) {
	mb, done, err := orchestrator.ClusterMember(ctx, m.g.options(), target)
	if err != nil {
		return nil, nil, err
	}
	return mb.Client, done, nil
}
