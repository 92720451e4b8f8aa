package instances

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"

	"orch/nodeagent/api"
	"orch/nodeagent/daemon/rest"
	"orch/nodeagent/store"
)

// This file is PUT and PATCH /1.0/instances/{name} as LXD's clients send them (`lxc
// config set/unset/edit`, an operation): the keys that are only read from the database
// (user.*, boot.autostart, boot.host_shutdown_timeout) can change; profiles, devices and
// the other fields of LXD's InstancePut cannot (refused naming the field or key), since
// they are applied when the container is made. Volatile keys stay the agent's.

// instancePut is LXD's InstancePut.
type instancePut struct {
	Architecture string                       `json:"architecture"`
	Config       map[string]string            `json:"config"`
	Devices      map[string]map[string]string `json:"devices"`
	Ephemeral    bool                         `json:"ephemeral"`
	Profiles     []string                     `json:"profiles"`
	Stateful     bool                         `json:"stateful"`
	Description  string                       `json:"description"`
}

// editableKey reports whether an instance's config key may change after creation.
func editableKey(k string) bool {
	return strings.HasPrefix(k, "user.") || k == keyAutostart || k == keyShutdownTimeout
}

// putInstance is PUT and PATCH /1.0/instances/{name}.
func (s *Service) putInstance(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	name, err := rest.PathName(r)
	if err != nil {
		return err
	}
	rows, err := s.instances(ctx, name)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return rest.NotFound("no instance named %q", name)
	}
	live, _ := s.instanceViews(ctx, rows)
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
		put.Config = maps.Clone(rows[0].config)
	}
	if err := rest.DecodeBody(r, &put); err != nil {
		return err
	}
	if r.Method == http.MethodPatch {
		put.Config = mergeConfig(rows[0].config, put.Config)
	}
	next, err := checkInstancePut(cur, rows[0].config, put)
	if err != nil {
		return err
	}
	op, err := s.ops.Start(r, rest.Task{Description: "Updating instance", Resources: resources(name),
		Run: func(ctx context.Context, _ rest.Op) error {
			return s.writeInstanceConfig(ctx, name, next)
		}})
	if err != nil {
		return err
	}
	return rest.WriteAsync(w, op)
}

// mergeConfig is cur overlaid with patch (PATCH keeps what the body leaves out).
func mergeConfig(cur, patch map[string]string) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
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
	case len(put.Devices) > 0:
		return nil, rest.BadRequest("devices: instance devices are not supported (use a profile's)")
	case put.Ephemeral, put.Stateful:
		return nil, rest.BadRequest("ephemeral, stateful: not supported")
	case put.Description != "":
		return nil, rest.BadRequest("description: instance descriptions are not supported")
	case !slices.Equal(put.Profiles, cur.Profiles):
		return nil, rest.BadRequest("profiles: changing an instance's profiles is not supported (%s)", strings.Join(cur.Profiles, ","))
	}
	next := map[string]string{}
	for k, v := range put.Config {
		if !strings.HasPrefix(k, "volatile.") {
			next[k] = v
		}
	}
	for k, v := range curConfig {
		if strings.HasPrefix(k, "volatile.") {
			next[k] = v
		}
	}
	if k, ok := rest.ChangedKey(curConfig, next, editableKey); ok {
		return nil, rest.BadRequest("config key %q cannot change after the instance was made (only user.*, %s and %s)", k, keyAutostart, keyShutdownTimeout)
	}
	user := maps.Clone(next)
	for k := range user {
		if strings.HasPrefix(k, "volatile.") {
			delete(user, k)
		}
	}
	return next, validInstanceConfig(user)
}

// writeInstanceConfig replaces the instance's non-volatile config keys with next's, in one
// statement that keeps the volatile keys the row holds when it applies (a power state
// recorded meanwhile survives).
func (s *Service) writeInstanceConfig(ctx context.Context, name string, next map[string]string) error {
	user := map[string]string{}
	for k, v := range next {
		if !strings.HasPrefix(k, "volatile.") {
			user[k] = v
		}
	}
	_, err := s.db.Exec(ctx, store.Statement{SQL: `UPDATE instances SET config = (SELECT json_group_object(key, value) FROM (
			SELECT key, value FROM json_each(instances.config) WHERE key LIKE 'volatile.%'
			UNION ALL SELECT key, value FROM json_each(?))) WHERE name = ?`,
		Args: []any{configJSON(user), name}, Expect: store.Int64(1)})
	if rest.IsConflict(err) {
		return rest.NotFound("no instance named %q", name)
	}
	if err == nil {
		s.events.Lifecycle("instance-updated", source(name), nil)
	}
	return err
}
