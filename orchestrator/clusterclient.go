package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// ErrNoSuchMember means no inventory host is the member a command asked for (--target).
var ErrNoSuchMember = errors.New("no inventory host is that member")

// Cluster returns an API client of the first reachable member named by the inventory (in
// inventory order, --limit applied), authenticated with orch's client certificate and
// pinned to a cluster certificate orch saved during `orch up`.
func Cluster(ctx context.Context, opts Options) (*api.Client, func(), error) {
	m, done, err := ClusterMember(ctx, opts, "")
	if err != nil {
		return nil, nil, err
	}
	return m.Client, done, nil
}

// Member is an API client of one cluster member and the inventory host it is.
type Member struct {
	*api.Client
	// Host is the member's inventory host name.
	Host string
	// Name is its member (node) name in the cluster.
	Name string
	// Address is the client API address orch reached it at.
	Address string
}

// ClusterMember is Cluster that also says which member answered. A non-empty target
// restricts the candidates to the inventory host of that member (its node name or host
// name), so that a request lands on that member itself.
func ClusterMember(ctx context.Context, opts Options, target string) (*Member, func(), error) {
	s, err := openSession(opts)
	if err != nil {
		return nil, nil, err
	}
	hosts, err := s.clusterHosts(opts.Limit, target)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	var errs []error
	for _, h := range hosts {
		m, err := s.reach(ctx, h)
		if err == nil {
			return m, func() { m.Close(); s.close() }, nil
		}
		errs = append(errs, err)
	}
	s.close()
	return nil, nil, fmt.Errorf("no cluster member answered: %w", errors.Join(errs...))
}

// clusterHosts are the inventory hosts to try, in inventory order: --limit applied, then
// only target's host when target is set.
func (s *session) clusterHosts(limit, target string) ([]playbooks.Host, error) {
	hosts, _, err := s.hosts()
	if err != nil {
		return nil, err
	}
	keep := func(playbooks.Host) bool { return true }
	if limit != "" {
		sel, _, err := s.inv.Select(limit)
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for _, h := range sel {
			names[h.Name] = true
		}
		keep = func(h playbooks.Host) bool { return names[h.Name] }
	}
	var out []playbooks.Host
	for _, h := range hosts {
		if keep(h) && (target == "" || target == s.agents[h.Name].NodeName || target == h.Name) {
			out = append(out, h)
		}
	}
	if target != "" && len(out) == 0 {
		return nil, fmt.Errorf("--target %s: %w in %s", target, ErrNoSuchMember, s.opts.Inventory)
	}
	return out, nil
}

// reach opens a client of host h and checks orch's certificate is trusted there.
func (s *session) reach(ctx context.Context, h playbooks.Host) (*Member, error) {
	addr, node := s.agents[h.Name].ClientAddress, s.agents[h.Name].NodeName
	cl, err := s.store.ClientAny(addr)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", h.Name, addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	srv, _, err := cl.Server(cctx)
	cancel()
	if err == nil && srv.Auth == "trusted" {
		return &Member{Client: cl, Host: h.Name, Name: node, Address: addr}, nil
	}
	if err == nil {
		err = errors.New("orch's certificate is not trusted there: run `orch up`")
	}
	cl.Close()
	return nil, fmt.Errorf("%s (%s): %w", h.Name, addr, err)
}
