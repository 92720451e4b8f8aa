package instances

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// This file is PUT and PATCH /1.0/instances/{name} as LXD's clients send them (`lxc
// config set/unset/edit`, `lxc profile add/remove/assign`), handled by the member that owns
// the instance: the config keys that are only read from the database (user.*,
// boot.autostart, boot.host_shutdown_timeout), the limits (applied to a running container
// at once), the instance's own devices and its profiles can change (devices reach a running
// container at once: modules/lxc's hotplug), and a change that would move the root disk or
// change eth0 is refused, naming what. The container is changed first, then the record;
// if the record cannot be written the container gets its old settings back. The other
// fields of LXD's InstancePut are refused naming the field. Volatile keys stay the agent's.

// instancePut is LXD's InstancePut.
type instancePut struct {
	Architecture string                       `json:"architecture"`
	Config       map[string]string            `json:"config"`
	Devices      map[string]map[string]string `json:"devices"`
	Ephemeral    bool                         `json:"ephemeral"`
	Profiles     []string                     `json:"profiles"`
	Stateful     bool                         `json:"stateful"`
	Description  string                       `json:"description"`
	// Restore names a snapshot to put back (`lxc restore`); the rest is then ignored.
	Restore string `json:"restore"`
	readOnlyInstance
}

// readOnlyInstance are the fields of LXD's Instance a client may send back in a PUT (pylxd
// saves the whole object); they change nothing, as in LXD.
type readOnlyInstance struct {
	Name            json.RawMessage `json:"name"`
	Status          json.RawMessage `json:"status"`
	StatusCode      json.RawMessage `json:"status_code"`
	CreatedAt       json.RawMessage `json:"created_at"`
	LastUsedAt      json.RawMessage `json:"last_used_at"`
	Location        json.RawMessage `json:"location"`
	Type            json.RawMessage `json:"type"`
	Project         json.RawMessage `json:"project"`
	ExpandedConfig  json.RawMessage `json:"expanded_config"`
	ExpandedDevices json.RawMessage `json:"expanded_devices"`
	State           json.RawMessage `json:"state"`
	Snapshots       json.RawMessage `json:"snapshots"`
	Backups         json.RawMessage `json:"backups"`
}

// editableKey reports whether an instance's config key may change after creation.
func editableKey(k string) bool {
	return strings.HasPrefix(k, "user.") || k == keyAutostart || k == keyShutdownTimeout || limitsKey(k)
}

// putInstance is PUT and PATCH /1.0/instances/{name}, on the instance's owner.
func (s *Service) putInstance(w http.ResponseWriter, r *http.Request, row instanceRow) error {
	ctx := r.Context()
	live, _ := s.instanceViews(ctx, []instanceRow{row})
	views, err := s.withLXDFields(ctx, live)
	if err != nil {
		return err
	}
	cur := views[0]
	if err := rest.CheckIfMatch(r, instanceWritable(cur)); err != nil {
		return err
	}
	put := instancePut{Profiles: cur.Profiles}
	if r.Method == http.MethodPatch {
		put.Config, put.Devices = maps.Clone(row.config), maps.Clone(row.devices)
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if put.Restore != "" {
		return s.putRestore(w, r, row, strings.TrimPrefix(put.Restore, row.name+"/")) // lxc sends c1/snap0
	}
	if r.Method == http.MethodPatch {
		put.Config = merged(row.config, put.Config)
		put.Devices = merged(row.devices, put.Devices)
	}
	next, err := checkInstancePut(cur, row.config, put)
	if err != nil {
		return err
	}
	m, _, err := s.drivers()
	if err != nil {
		return err
	}
	old, err := s.expand(ctx, cur.Profiles, userConfig(row.config), row.devices)
	if err != nil {
		return err
	}
	ex, err := s.expand(ctx, put.Profiles, userConfig(next), put.Devices)
	if err != nil {
		return err
	}
	if err := fixedAtLaunch(old.launchSpec, ex.launchSpec); err != nil {
		return err
	}
	set, err := s.settingsHere(ctx, ex)
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Updating instance", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error {
			if err := m.Apply(ctx, row.name, set); err != nil {
				return driverError(err)
			}
			err := s.writeInstanceConfig(ctx, row.name, next, put.Profiles, put.Devices)
			if err != nil {
				if rerr := s.refreshSettings(context.WithoutCancel(ctx), m, row); rerr != nil {
					s.log.Warn("giving an instance its settings back after a failed update", "instance", row.name, "err", rerr)
				}
			}
			return err
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// putRestore restores a snapshot of the instance, in an operation.
func (s *Service) putRestore(w http.ResponseWriter, r *http.Request, row instanceRow, snap string) error {
	if err := s.haveSnapshot(r.Context(), row.name, snap); err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Restoring snapshot", Resources: resources(row.name),
		Run: func(ctx context.Context, _ rest.Op) error { return s.restoreSnapshot(ctx, row, snap) }})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// fixedAtLaunch refuses a change of what the container was made with: the root disk's
// pool and eth0's network, bridge and MAC address.
func fixedAtLaunch(old, next launchSpec) error {
	switch {
	case old.pool != next.pool:
		return rest.BadRequest("profiles: the root disk would move from pool %q to %q (an instance's root disk stays where it was made)", old.pool, next.pool)
	case old.network != next.network || old.parent != next.parent || old.hwaddr != next.hwaddr:
		return rest.BadRequest("profiles: eth0 would change (network %q, parent %q → network %q, parent %q); eth0 stays as the instance was made", old.network, old.parent, next.network, next.parent)
	}
	return nil
}

// merged is cur overlaid with patch, a key of patch replacing the same key of cur (PATCH
// keeps what the body leaves out: config keys, whole devices).
func merged[V any](cur, patch map[string]V) map[string]V {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, patch)
	return out
}

// checkInstancePut refuses what cannot change, naming it, and returns the new config: the
// body's keys with the current volatile keys.
func checkInstancePut(cur api.Instance, curConfig map[string]string, put instancePut) (map[string]string, error) {
	switch {
	case put.Architecture != "" && put.Architecture != cur.Architecture:
		return nil, rest.BadRequest("architecture %q: an instance's architecture cannot change", put.Architecture)
	case put.Ephemeral, put.Stateful:
		return nil, rest.BadRequest("ephemeral, stateful: not supported")
	case put.Description != "":
		return nil, rest.BadRequest("description: instance descriptions are not supported")
	case slices.Contains(put.Profiles, "") || len(put.Profiles) != len(slices.Compact(slices.Sorted(slices.Values(put.Profiles)))):
		return nil, rest.BadRequest("profiles: %q names a profile twice or an empty one", strings.Join(put.Profiles, ","))
	}
	if err := checkDevices(put.Devices); err != nil {
		return nil, err
	}
	user := userConfig(put.Config)
	next := maps.Clone(user)
	for k, v := range curConfig {
		if strings.HasPrefix(k, "volatile.") {
			next[k] = v
		}
	}
	if k, ok := rest.ChangedKey(curConfig, next, editableKey); ok {
		return nil, rest.BadRequest("config key %q cannot change after the instance was made (only user.*, limits.cpu, limits.memory, limits.processes, %s and %s)", k, keyAutostart, keyShutdownTimeout)
	}
	return next, validInstanceConfig(user)
}

// writeInstanceConfig replaces the instance's non-volatile config keys with next's and its
// profiles, in one statement that keeps the volatile keys the row holds when it applies (a
// power state recorded meanwhile survives) and that writes nothing if one of the profiles
// was deleted meanwhile.
func (s *Service) writeInstanceConfig(ctx context.Context, name string, next map[string]string, profiles []string, devices map[string]map[string]string) error {
	plist, nprof := profileSet(profiles)
	_, err := s.db.Exec(ctx, store.Statement{SQL: `UPDATE instances SET config = (SELECT json_group_object(key, value) FROM (
			SELECT key, value FROM json_each(instances.config) WHERE key LIKE 'volatile.%'
			UNION ALL SELECT key, value FROM json_each(?))), profiles = ?, devices = ?
			WHERE name = ? AND (SELECT count(*) FROM profiles p WHERE instr(?, ',' || p.name || ',') > 0) = ?`,
		Args: []any{configJSON(userConfig(next)), strings.Join(profiles, ","), devicesJSON(devices), name, plist, nprof}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.Conflict("instance %q: it or one of the profiles %s was deleted meanwhile", name, strings.Join(profiles, ", "))
	}
	if err == nil {
		s.events.Lifecycle("instance-updated", source(name), nil)
	}
	return err
}
