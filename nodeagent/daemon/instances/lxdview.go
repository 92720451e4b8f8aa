package instances

import (
	"context"
	"maps"
	"net/http"
	"strings"

	"golang.org/x/sys/unix"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
)

// This file gives instances LXD's shape for LXD's clients: the fields of LXD's Instance
// (type, project, status_code, expanded_config and expanded_devices from the profiles),
// the state (GET /1.0/instances/NAME/state), the collection at recursion 0, 1 and 2, and
// ?filter=.

// addLXDFields fills LXD's fields of views; profiles are the cluster's, by name.
func addLXDFields(views []api.Instance, profiles map[string]api.Profile) {
	for i := range views {
		v := &views[i]
		v.Type, v.Project, v.StatusCode = "container", "default", api.InstanceStatusCode(v.Status)
		if v.Devices == nil {
			v.Devices = map[string]map[string]string{}
		}
		v.ExpandedConfig, v.ExpandedDevices = map[string]string{}, map[string]map[string]string{}
		for _, name := range v.Profiles {
			p := profiles[name]
			maps.Copy(v.ExpandedConfig, p.Config)
			for dev, cfg := range p.Devices {
				v.ExpandedDevices[dev] = maps.Clone(cfg)
			}
		}
		for dev, cfg := range v.Devices {
			v.ExpandedDevices[dev] = maps.Clone(cfg)
		}
		maps.Copy(v.ExpandedConfig, v.Config)
		if v.Config == nil {
			v.Config = map[string]string{}
		}
		v.LastUsedAt = v.CreatedAt
	}
}

// withLXDFields reads the profiles and fills LXD's fields of views.
func (s *Service) withLXDFields(ctx context.Context, views []api.Instance) ([]api.Instance, error) {
	ps, err := s.profiles(ctx, "")
	if err != nil {
		return nil, err
	}
	byName := make(map[string]api.Profile, len(ps))
	for _, p := range ps {
		byName[p.Name] = p
	}
	addLXDFields(views, byName)
	return views, nil
}

// stateOf is an instance's state as LXD's: its status, init's PID and its addresses (on
// eth0, the only interface orch gives a container), with what its owner measured of it
// (usage: CPU, memory, processes, interfaces' counters; nil when not running). Disk usage
// is not measured.
func stateOf(v api.Instance, usage *api.InstanceState) *api.InstanceState {
	st := &api.InstanceState{Status: v.Status, StatusCode: v.StatusCode, Pid: int64(v.PID),
		Disk: map[string]any{}, Network: map[string]api.InstanceStateNetwork{}}
	if usage != nil {
		st.CPU, st.Memory, st.Processes = usage.CPU, usage.Memory, usage.Processes
		for dev, nic := range usage.Network {
			nic.Addresses = []api.InstanceStateNetworkAddress{}
			st.Network[dev] = nic
		}
	}
	if len(v.IPv4)+len(v.IPv6) == 0 {
		return st
	}
	nic, ok := st.Network["eth0"]
	if !ok {
		nic = api.InstanceStateNetwork{Addresses: []api.InstanceStateNetworkAddress{}, Counters: map[string]int64{}, State: "up", Type: "broadcast"}
	}
	for _, a := range v.IPv4 {
		nic.Addresses = append(nic.Addresses, address("inet", a))
	}
	for _, a := range v.IPv6 {
		nic.Addresses = append(nic.Addresses, address("inet6", a))
	}
	st.Network["eth0"] = nic
	return st
}

// address is one address of an interface ("10.0.3.5" or "10.0.3.5/24").
func address(family, a string) api.InstanceStateNetworkAddress {
	addr, mask, _ := strings.Cut(a, "/")
	scope := "global"
	if strings.HasPrefix(addr, "fe80:") {
		scope = "link"
	}
	return api.InstanceStateNetworkAddress{Family: family, Address: addr, Netmask: mask, Scope: scope}
}

// full is an instance with its state (recursion=2).
func full(v api.Instance, usage *api.InstanceState) api.InstanceFull {
	return api.InstanceFull{Instance: v, State: stateOf(v, usage)}
}

// writeInstances answers GET /1.0/instances (and /1.0/containers) at the recursion asked,
// with ?filter= applied to the objects.
func (s *Service) writeInstances(w http.ResponseWriter, r *http.Request, prefix string, views []api.Instance, usage map[string]*api.InstanceState) error {
	level, err := rest.Recursion(r)
	if err != nil {
		return err
	}
	f, err := rest.ParseFilter(r)
	if err != nil {
		return err
	}
	fulls := make([]api.InstanceFull, 0, len(views))
	for _, v := range views {
		if fv := full(v, usage[v.Name]); f.Match(fv) {
			fulls = append(fulls, fv)
		}
	}
	if level == rest.RecursionFull {
		return rest.WriteOK(w, fulls, "")
	}
	out := make([]api.Instance, len(fulls))
	for i := range fulls {
		out[i] = fulls[i].Instance
	}
	return rest.WriteList(w, r, prefix, out, func(v api.Instance) string { return v.Name })
}

// instanceWritable is the editable part of an instance (LXD's InstancePut), whose hash is
// its ETag.
func instanceWritable(v api.Instance) any {
	return []any{v.Architecture, v.Config, v.Devices, v.Ephemeral, v.Profiles, v.Stateful, v.Description}
}

// machine is the kernel's architecture name (uname -m), as LXD reports it.
func machine() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Machine[:])
}
