package entity

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net/http"

	"orch/modules/bridge"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// bridgeManager is what the daemon needs of modules/bridge.
type bridgeManager interface {
	Create(ctx context.Context, name string, cfg map[string]string) error
	Delete(ctx context.Context, name string) error
	AutoIPv4() (string, error)
	State(name string) (bridge.State, error)
}

// networkKind is the network flavour of the cluster-wide flow (bridge networks only).
var networkKind = &entityKind{
	noun: "network", entity: NetworkEntity,
	table: "networks", config: "networks_config", members: "networks_members",
	idCol: "network_id", typeCol: "type", internal: "/internal/networks",
	create: func(s *Service, ctx context.Context, req entityRequest) error {
		m, err := s.bridges()
		if err != nil {
			return err
		}
		return m.Create(ctx, req.Name, req.Config)
	},
	delete: func(s *Service, ctx context.Context, req entityRequest) error {
		m, err := s.bridges()
		if err != nil {
			return err
		}
		return m.Delete(ctx, req.Name)
	},
	prepare: func(s *Service, global map[string]string) error { return s.resolveAuto(global) },
}

// bridges is this member's bridge manager (made on first use).
func (s *Service) bridges() (bridgeManager, error) {
	s.netOnce.Do(func() {
		m, err := bridge.New(bridge.Options{Dir: s.dir, Logger: s.log.With("component", "bridge")})
		if err != nil {
			s.netErr = err
			return
		}
		s.net = m
	})
	return s.net, s.netErr
}

// resolveAuto fills LXD's defaults for unset keys (ipv4.address=auto, ipv4.nat=true) and
// turns ipv4.address=auto (a free 10.x.y.1/24 as this member sees it) and
// ipv6.address=auto (a random fd42::/64) into addresses. It runs once per network, on the
// member that handles the final create, and the result is stored cluster-wide as LXD does:
// every member's bridge gets the same subnet.
func (s *Service) resolveAuto(global map[string]string) error {
	bridge.FillDefaults(global)
	if global["ipv4.address"] == "auto" {
		m, err := s.bridges()
		if err != nil {
			return err
		}
		if global["ipv4.address"], err = m.AutoIPv4(); err != nil {
			return err
		}
	}
	if global["ipv6.address"] == "auto" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		global["ipv6.address"] = fmt.Sprintf("fd42:%x:%x:%x::1/64", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]), uint16(b[4])<<8|uint16(b[5]))
	}
	_, err := bridge.ParseConfig(global)
	return err
}

func (s *Service) postNetwork(w http.ResponseWriter, r *http.Request) error {
	var req api.Network
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	if err := bridge.CheckName(req.Name); err != nil {
		return rest.BadRequest("%v", err)
	}
	if req.Type == "" {
		req.Type = "bridge"
	}
	if req.Type != "bridge" {
		return rest.BadRequest("network %q: type %q is not supported (bridge)", req.Name, req.Type)
	}
	var e *entityRow
	var err error
	if t := rest.Target(r); t != "" {
		if err = s.defineOn(r.Context(), networkKind, req.Name, req.Type, req.Description, req.Config, t); err == nil {
			e, err = s.loadEntity(r.Context(), networkKind, req.Name)
		}
	} else {
		e, err = s.createEverywhere(r.Context(), networkKind, req.Name, req.Type, req.Description, req.Config)
	}
	if err != nil {
		return err
	}
	return writeNetwork(w, e, rest.Target(r))
}

func networkInfo(e *entityRow, target string) (api.NetworkInfo, error) {
	status, cfg, locs, err := e.info(target)
	return api.NetworkInfo{
		Network: api.Network{Name: e.name, Type: e.typ, Description: e.description, Config: cfg},
		Managed: true, Status: status, Locations: locs, Message: e.message, UsedBy: []string{},
	}, err
}

func writeNetwork(w http.ResponseWriter, e *entityRow, target string) error {
	n, err := networkInfo(e, target)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, n, rest.ETag(n.Writable()))
}

func (s *Service) getNetworks(w http.ResponseWriter, r *http.Request) error {
	es, err := s.listEntities(r.Context(), networkKind)
	if err != nil {
		return err
	}
	users, err := s.networkUsers(r.Context())
	if err != nil {
		return err
	}
	out := make([]api.NetworkInfo, 0, len(es))
	for _, e := range es {
		if t := rest.Target(r); t != "" && e.members[t] == nil {
			continue
		}
		n, err := networkInfo(e, rest.Target(r))
		if err != nil {
			return err
		}
		n.UsedBy = nonNil(users[e.name])
		out = append(out, n)
	}
	return rest.WriteList(w, r, "/1.0/networks", out, func(n api.NetworkInfo) string { return n.Name })
}

func (s *Service) getNetwork(w http.ResponseWriter, r *http.Request) error {
	e, err := s.namedEntity(r, networkKind)
	if err != nil {
		return err
	}
	n, err := networkInfo(e, rest.Target(r))
	if err != nil {
		return err
	}
	users, err := s.networkUsers(r.Context())
	if err != nil {
		return err
	}
	n.UsedBy = nonNil(users[e.name])
	return rest.WriteOK(w, n, rest.ETag(n.Writable()))
}

func (s *Service) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	if err := s.deleteEverywhere(r.Context(), networkKind, name); err != nil {
		return err
	}
	return rest.WriteOK(w, nil, "")
}

// joinerNetworkConfig is a joining member's declaration of a network as the cluster stored
// it: LXD's defaults filled in, and "auto" addresses matching the address the cluster chose.
func joinerNetworkConfig(joiner, cluster map[string]string) map[string]string {
	out := maps.Clone(joiner)
	if out == nil {
		out = map[string]string{}
	}
	bridge.FillDefaults(out)
	for _, k := range []string{"ipv4.address", "ipv6.address"} {
		if out[k] == "auto" && cluster[k] != "" && cluster[k] != "none" {
			out[k] = cluster[k]
		}
	}
	return out
}
