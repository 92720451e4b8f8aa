package entity

import (
	"errors"
	"net/http"

	"orch/modules/bridge"
	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// getNetworkState is GET /1.0/networks/{name}/state (`lxc network info NAME [--target
// MEMBER]`): the interface's live state on the member asked (this one without a target),
// as LXD's, for a network orch made or any other interface of that member.
func (s *Service) getNetworkState(w http.ResponseWriter, r *http.Request) error {
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	var st api.NetworkState
	local := func() (err error) { st, err = s.localNetworkState(name); return err }
	if err := s.onTarget(r, local, "/internal/networks/state", entityRequest{Name: name}, &st); err != nil {
		return err
	}
	return rest.WriteOK(w, st, "")
}

// onTarget runs local when the request has no ?target= or names this member; otherwise it
// posts req to path on the target member (ONLINE) and decodes its answer into out.
func (s *Service) onTarget(r *http.Request, local func() error, path string, req, out any) error {
	target := rest.Target(r)
	if target == "" || target == s.members.Self() {
		return local()
	}
	ms, err := s.members.All(r.Context())
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Name != target {
			continue
		}
		if err := s.members.RequireOnline(r.Context(), target); err != nil {
			return err
		}
		return s.peers.Post(r.Context(), m.Address, path, req, out)
	}
	return rest.NotFound("no cluster member named %q", target)
}

// postInternalNetworkState answers another member with this member's state of a network.
func (s *Service) postInternalNetworkState(w http.ResponseWriter, r *http.Request) error {
	var req entityRequest
	if err := rest.DecodeBody(r, &req); err != nil {
		return err
	}
	st, err := s.localNetworkState(req.Name)
	if err != nil {
		return err
	}
	return rest.WriteOK(w, st, "")
}

// localNetworkState reads interface name on this member.
func (s *Service) localNetworkState(name string) (api.NetworkState, error) {
	m, err := s.bridges()
	if err != nil {
		return api.NetworkState{}, err
	}
	st, err := m.State(name)
	if errors.Is(err, bridge.ErrNoLink) {
		return api.NetworkState{}, rest.NotFound("network %q: no interface %q on member %s", name, name, s.members.Self())
	}
	if err != nil {
		return api.NetworkState{}, err
	}
	return networkState(st), nil
}

// networkState is st in LXD's shape.
func networkState(st bridge.State) api.NetworkState {
	out := api.NetworkState{Addresses: []api.NetworkStateAddress{}, Hwaddr: st.Hwaddr, Mtu: st.MTU, State: "down", Type: st.Type,
		Counters: api.NetworkStateCounters{BytesReceived: int64(st.BytesReceived), BytesSent: int64(st.BytesSent),
			PacketsReceived: int64(st.PacketsReceived), PacketsSent: int64(st.PacketsSent)}}
	if st.Up {
		out.State = "up"
	}
	for _, a := range st.Addresses {
		out.Addresses = append(out.Addresses, api.NetworkStateAddress{Family: a.Family, Address: a.Address, Netmask: a.Netmask, Scope: a.Scope})
	}
	if b := st.Bridge; b != nil {
		out.Bridge = &api.NetworkStateBridge{VLANDefault: uint64(b.VlanDefault), VLANFiltering: b.VlanFiltering, UpperDevices: b.UpperDevices}
	}
	return out
}
