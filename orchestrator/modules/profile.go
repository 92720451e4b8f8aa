package modules

import (
	"context"
	"fmt"
	"maps"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// profileSteps creates a missing profile, replaces one that differs from the declared one,
// and deletes one declared absent.
func profileSteps(state string, want api.Profile, cur *api.Profile) []step {
	switch {
	case state == "absent" && cur != nil:
		return []step{{"delete profile " + want.Name, func(ctx context.Context, cl *api.Client) error { return cl.DeleteProfile(ctx, want.Name) }}}
	case state == "absent":
		return nil
	case cur == nil:
		return []step{{"create profile " + want.Name, func(ctx context.Context, cl *api.Client) error { return cl.CreateProfile(ctx, want) }}}
	case !sameProfile(want, *cur):
		return []step{{"update profile " + want.Name, func(ctx context.Context, cl *api.Client) error { return cl.UpdateProfile(ctx, want) }}}
	}
	return nil
}

// sameProfile compares description, config and devices (nil and empty maps alike).
func sameProfile(a, b api.Profile) bool {
	if a.Description != b.Description || !maps.Equal(a.Config, b.Config) || len(a.Devices) != len(b.Devices) {
		return false
	}
	for name, d := range a.Devices {
		if e, ok := b.Devices[name]; !ok || !maps.Equal(d, e) {
			return false
		}
	}
	return true
}

// profile is the profile module.
func (d Deps) profile(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	c, err := commonArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	want := api.Profile{Name: c.name}
	if want.Description, err = t.Args.String("description", ""); err != nil {
		return playbooks.Result{}, err
	}
	if want.Config, err = stringMap(t.Args, "config"); err != nil {
		return playbooks.Result{}, err
	}
	if want.Devices, err = nestedMaps(t.Args, "devices"); err != nil {
		return playbooks.Result{}, err
	}
	cl, err := d.apiClient(c.via, c.fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	cur, err := cl.Profile(ctx, c.name)
	if isNotFound(err) {
		cur, err = nil, nil
	}
	if err != nil {
		return playbooks.Result{}, fmt.Errorf("profile %s: %w", c.name, err)
	}
	return run(ctx, t, cl, "profile", c.name, profileSteps(c.state, want, cur))
}
