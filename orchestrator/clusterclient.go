package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orch/nodeagent/api"
)

// Cluster returns an API client of the first reachable member named by the inventory (in
// inventory order, --limit applied), authenticated with orch's client certificate and
// pinned to a cluster certificate orch saved during `orch up`.
func Cluster(ctx context.Context, opts Options) (*api.Client, func(), error) {
	s, err := openSession(opts)
	if err != nil {
		return nil, nil, err
	}
	hosts, _, err := s.hosts()
	if err != nil {
		return nil, nil, err
	}
	if opts.Limit != "" {
		sel, _, err := s.inv.Select(opts.Limit)
		if err != nil {
			return nil, nil, err
		}
		keep := map[string]bool{}
		for _, h := range sel {
			keep[h.Name] = true
		}
		filtered := hosts[:0]
		for _, h := range hosts {
			if keep[h.Name] {
				filtered = append(filtered, h)
			}
		}
		hosts = filtered
	}
	var errs []error
	for _, h := range hosts {
		addr, _ := h.Vars["client_address"].(string)
		cl, err := s.store.ClientAny(addr)
		if err != nil {
			return nil, nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		srv, _, err := cl.Server(cctx)
		cancel()
		if err == nil && srv.Auth == "trusted" {
			return cl, func() { cl.Close(); s.close() }, nil
		}
		if err == nil {
			err = errors.New("orch's certificate is not trusted there: run `orch up`")
		}
		cl.Close()
		errs = append(errs, fmt.Errorf("%s (%s): %w", h.Name, addr, err))
	}
	s.close()
	return nil, nil, fmt.Errorf("no cluster member answered: %w", errors.Join(errs...))
}
