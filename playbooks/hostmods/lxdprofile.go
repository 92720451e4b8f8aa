package hostmods

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"

	"orch/playbooks"
)

// lxdProfileArgNames are community.general.lxd_profile's arguments.
var lxdProfileArgNames = append([]string{"name", "new_name", "config", "description", "devices", "merge_profile", "state"},
	lxdConnArgs...)

// ErrProfileRename means new_name was given where Ansible's module refuses it.
var ErrProfileRename = errors.New("new_name")

// lxdProfile is one lxd_profile task.
type lxdProfile struct {
	c             *lxdClient
	name, newName string
	state         string
	merge         bool
	given         map[string]any // config, description, devices as given
	old           map[string]any // the profile's metadata
	oldState      string
	actions       []string
	hasNewName    bool
}

// lxdProfileModule is community.general.lxd_profile: it reads the profile (one GET), then
// creates, renames, replaces (PUT with only the given sections: the others are emptied, as
// Ansible's "discarded"; or, with merge_profile, the given ones deep-merged over the
// profile's) or deletes it, each action one request through TaskContext.Change (so check
// mode reports would-change without calling the API; Ansible's module does not support
// check mode and is skipped there). It returns changed, old_state and actions.
func lxdProfileModule(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	if err := playbooks.AllowArgs("lxd_profile", t.Args, lxdProfileArgNames...); err != nil {
		return playbooks.Result{}, err
	}
	m, err := lxdProfileArgs(t)
	if err != nil {
		return playbooks.Result{}, err
	}
	err = m.run(ctx)
	return m.result(err)
}

func lxdProfileArgs(t *playbooks.TaskContext) (*lxdProfile, error) {
	a := t.Args
	c, err := lxdClientArgs(t)
	if err != nil {
		return nil, err
	}
	m := &lxdProfile{c: c, given: map[string]any{}, hasNewName: a.Has("new_name")}
	if m.name, err = a.Required("name"); err != nil {
		return nil, err
	}
	if m.newName, err = a.String("new_name", ""); err != nil {
		return nil, err
	}
	if m.state, err = a.String("state", "present"); err != nil {
		return nil, err
	}
	if err := choice("state", m.state, "present", "absent"); err != nil {
		return nil, err
	}
	if m.merge, err = a.Bool("merge_profile", false); err != nil {
		return nil, err
	}
	return m, readSections(a, m.given, configSection("config"), devicesSection("devices"), stringSection("description"))
}

func (m *lxdProfile) profilePath() string { return m.c.path("/1.0/profiles/" + m.name) }

// run reads the profile and does what state asks (Ansible's _update_profile).
func (m *lxdProfile) run(ctx context.Context) error {
	if err := m.c.authenticateIfAsked(ctx); err != nil {
		return err
	}
	rs, err := m.c.gets(ctx, m.profilePath())
	if err != nil {
		return err
	}
	m.oldState = "absent"
	if !rs[0].notFound() {
		if err := rs[0].err(); err != nil {
			return err
		}
		m.oldState = "present"
		if err := json.Unmarshal(rs[0].Metadata, &m.old); err != nil {
			return fmt.Errorf("profile %s: %w", m.name, err)
		}
	}
	switch {
	case m.state == "present" && m.oldState == "absent":
		if m.hasNewName {
			return fmt.Errorf("%w must not be set when the profile does not exist and the state is present", ErrProfileRename)
		}
		return m.step(ctx, "create")
	case m.state == "present":
		if m.hasNewName && m.newName != m.name {
			if err := m.step(ctx, "rename"); err != nil {
				return err
			}
		}
		if m.needsApply() {
			return m.step(ctx, "apply_profile_configs")
		}
	case m.oldState == "present":
		if m.hasNewName {
			return fmt.Errorf("%w must not be set when the profile exists and the specified state is absent", ErrProfileRename)
		}
		return m.step(ctx, "delete")
	}
	return nil
}

// step does one action through TaskContext.Change and records it.
func (m *lxdProfile) step(ctx context.Context, action string) error {
	var method, path string
	var body any
	desc := fmt.Sprintf("%s profile %s", action, m.name)
	switch action {
	case "create":
		b := maps.Clone(m.given)
		b["name"] = m.name
		method, path, body = "POST", m.c.path("/1.0/profiles"), b
	case "rename":
		method, path, body = "POST", m.profilePath(), map[string]any{"name": m.newName}
		desc = fmt.Sprintf("rename profile %s to %s", m.name, m.newName)
	case "apply_profile_configs":
		method, path, body = "PUT", m.profilePath(), m.putBody()
	case "delete":
		method, path = "DELETE", m.profilePath()
	}
	if err := m.c.t.Change(desc, func() error { return m.c.send(ctx, method, path, body) }); err != nil {
		return err
	}
	m.actions = append(m.actions, action)
	if action == "rename" {
		m.name = m.newName
	}
	return nil
}

// needsApply is Ansible's comparison: a given section that differs from the profile's.
func (m *lxdProfile) needsApply() bool {
	for name, want := range m.given {
		if !reflect.DeepEqual(m.oldSection(name), want) {
			return true
		}
	}
	return false
}

// oldSection is a section of the profile in the given sections' types (absent and empty
// maps compare equal: LXD answers {} for an empty map, Ansible's null is read as {}).
func (m *lxdProfile) oldSection(name string) any {
	raw, _ := json.Marshal(m.old[name])
	switch name {
	case "config":
		cfg := map[string]string{}
		_ = json.Unmarshal(raw, &cfg)
		return cfg
	case "devices":
		devs := map[string]map[string]string{}
		_ = json.Unmarshal(raw, &devs)
		return devs
	}
	s, _ := m.old[name].(string)
	return s
}

// putBody is what Ansible PUTs: the given sections (the others left out, so the server
// empties them), or with merge_profile the profile's sections with the given ones
// deep-merged over them (a device's keys merged, not replaced).
func (m *lxdProfile) putBody() map[string]any {
	if !m.merge {
		return maps.Clone(m.given)
	}
	body := map[string]any{}
	for _, name := range []string{"config", "description", "devices"} {
		body[name] = m.oldSection(name)
	}
	if cfg, ok := m.given["config"].(map[string]string); ok {
		maps.Copy(body["config"].(map[string]string), cfg)
	}
	if devs, ok := m.given["devices"].(map[string]map[string]string); ok {
		have := body["devices"].(map[string]map[string]string)
		for dev, keys := range devs {
			if have[dev] == nil {
				have[dev] = map[string]string{}
			}
			maps.Copy(have[dev], keys)
		}
	}
	if d, ok := m.given["description"]; ok {
		body["description"] = d
	}
	return body
}

// result is Ansible's answer: changed when an action was taken, old_state, actions; a
// failure names the profile.
func (m *lxdProfile) result(err error) (playbooks.Result, error) {
	if lxdAborted(err) {
		return playbooks.Result{}, err
	}
	res := lxdResult(m.actions, m.oldState)
	if err != nil {
		res, ferr := lxdFailure(res, "profile "+m.name, err)
		if errors.Is(err, ErrProfileRename) {
			res.Msg = lxdMessage(err) // names both profiles already
		}
		return res, ferr
	}
	return res, nil
}
