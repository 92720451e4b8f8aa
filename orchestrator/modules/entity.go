package modules

// The entity modules declare instances, storage pools, storage volumes, networks, profiles
// and images through the cluster API, idempotently (state present or absent; an instance
// also running or stopped, see instance.go):
//
//   - storage_pool: {via: node1, fingerprint: "...", name: data, driver: btrfs,
//     config: {volume.size: 1GiB}, members: {node1: {size: 5GiB}, node2: {source: /dev/sdb}},
//     state: present}
//   - storage_volume: {via: node1, fingerprint: "...", pool: data, name: v1, target: node2,
//     config: {size: 1GiB}, state: present}
//   - network: {via: node1, fingerprint: "...", name: br0, config: {ipv4.address: auto,
//     ipv4.nat: "true"}, members: {node1: {bridge.external_interfaces: eth1}}, state: present}
//   - profile: {via: node1, fingerprint: "...", name: web, description: "...",
//     config: {limits.memory: 256MiB}, devices: {eth0: {type: nic, network: br0, name: eth0}},
//     state: present}
//   - image: {via: node1, fingerprint: "...", alias: busybox, src: busybox.tar.xz,
//     state: present}
//
// A pool or network is defined on every member (with that member's keys from members, if
// any) and then created; nothing is changed when it already exists with the same global
// keys. A profile is created, or replaced when its description, config or devices differ.
// An image is imported from src (a controller-side tarball, relative to the playbook) when
// no image has the alias; an existing alias is left as it is, whatever image it names.
// Every change goes through TaskContext.Change, so --check only describes it. Each reaches
// the cluster through the via host's client address with orch's certificate, the cluster
// certificate pinned by fingerprint (Deps.apiClient).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// ErrDiffers is returned when a pool or network exists with other global keys: changing
// them in place is not supported.
var ErrDiffers = errors.New("exists with a different configuration")

// step is one API call a module makes.
type step struct {
	what string
	do   func(ctx context.Context, cl *api.Client) error
}

// viaArgs reads the arguments of every module that acts through the cluster API: via, the
// inventory host whose client address to reach, and fingerprint, the cluster certificate
// to pin.
func viaArgs(a playbooks.Args) (via, fp string, err error) {
	if via, err = a.Required("via"); err != nil {
		return "", "", err
	}
	fp, err = a.Required("fingerprint")
	return via, fp, err
}

// common are the arguments every entity module takes.
type common struct{ via, fp, name, state string }

func commonArgs(a playbooks.Args) (common, error) {
	var c common
	var err error
	if c.via, c.fp, err = viaArgs(a); err != nil {
		return c, err
	}
	if c.name, err = a.Required("name"); err != nil {
		return c, err
	}
	if c.state, err = a.String("state", "present"); err != nil {
		return c, err
	}
	if c.state != "present" && c.state != "absent" {
		return c, fmt.Errorf("state: %q (present or absent)", c.state)
	}
	return c, nil
}

// stringMap reads a map argument of string values (numbers and booleans are formatted).
func stringMap(a playbooks.Args, name string) (map[string]string, error) {
	out := map[string]string{}
	switch v := a[name].(type) {
	case nil:
	case map[string]any:
		for k, x := range v {
			switch x.(type) {
			case string, bool, int, int64, float64:
				out[k] = fmt.Sprint(x)
			default:
				return nil, fmt.Errorf("%s.%s: want a string, got %T", name, k, x)
			}
		}
	case map[string]string:
		for k, x := range v {
			out[k] = x
		}
	default:
		return nil, fmt.Errorf("%s: want a map of key: value, got %T", name, v)
	}
	return out, nil
}

// memberMaps reads members: {member: {key: value}}.
func memberMaps(a playbooks.Args) (map[string]map[string]string, error) {
	return nestedMaps(a, "members")
}

// nestedMaps reads a map argument of maps of string values: name: {outer: {key: value}}.
func nestedMaps(a playbooks.Args, name string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	v, ok := a[name].(map[string]any)
	if a[name] != nil && !ok {
		return nil, fmt.Errorf("%s: want a map of name: {key: value}, got %T", name, a[name])
	}
	for m := range v {
		cfg, err := stringMap(playbooks.Args(v), m)
		if err != nil {
			return nil, fmt.Errorf("%s.%w", name, err)
		}
		out[m] = cfg
	}
	return out, nil
}

// run applies steps through the --check gate.
func run(ctx context.Context, t *playbooks.TaskContext, cl *api.Client, kind, name string, steps []step) (playbooks.Result, error) {
	for _, s := range steps {
		if err := t.Change(s.what, func() error { return s.do(ctx, cl) }); err != nil {
			return playbooks.Result{}, fmt.Errorf("%s %s: %w", kind, name, err)
		}
	}
	return playbooks.Result{Changed: len(steps) > 0, Msg: fmt.Sprintf("%s %s is as declared", kind, name), Data: map[string]any{"name": name}}, nil
}

func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Code == http.StatusNotFound
}

// diffKey names the first declared global key whose value differs from the current one.
func diffKey(want, have map[string]string) string {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want[k] != have[k] && !(want[k] == "auto" && have[k] != "") {
			return k
		}
	}
	return ""
}

func memberNames(ms []api.ClusterMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ServerName
	}
	return out
}
