package modules

import (
	"context"
	"errors"
	"fmt"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// instance declares an instance through the cluster API, idempotently:
//
//   - instance: {via: node1, fingerprint: "...", name: c1, image: busybox,
//     state: running, target: node2, profiles: [default]}
//
// state is running (default), stopped, present (created, state left alone) or absent.
// Nothing is changed when the instance already matches; --check only describes changes.
func (d Deps) instance(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	spec, err := instanceArgs(t.Args)
	if err != nil {
		return playbooks.Result{}, err
	}
	cl, err := d.apiClient(spec.via, spec.fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	cur, err := cl.Instance(ctx, spec.name)
	exists := err == nil
	if err != nil && !isNotFound(err) {
		return playbooks.Result{}, fmt.Errorf("instance %s: %w", spec.name, err)
	}
	res, err := run(ctx, t, cl, "instance", spec.name, instanceSteps(spec, exists, cur))
	if err == nil {
		res.Msg = fmt.Sprintf("instance %s is %s", spec.name, spec.state)
	}
	return res, err
}

// instanceSpec is the instance module's arguments.
type instanceSpec struct {
	via, fp, name, image, state, target string
	profiles                            []string
}

func instanceArgs(a playbooks.Args) (instanceSpec, error) {
	var s instanceSpec
	var err error
	if s.via, s.fp, err = viaArgs(a); err != nil {
		return s, err
	}
	for _, f := range []struct {
		dst      *string
		name     string
		required bool
		def      string
	}{{&s.name, "name", true, ""},
		{&s.image, "image", false, ""}, {&s.state, "state", false, "running"}, {&s.target, "target", false, ""}} {
		if f.required {
			*f.dst, err = a.Required(f.name)
		} else {
			*f.dst, err = a.String(f.name, f.def)
		}
		if err != nil {
			return s, err
		}
	}
	if s.profiles, err = a.StringList("profiles"); err != nil {
		return s, err
	}
	switch s.state {
	case "running", "stopped", "present", "absent":
	default:
		return s, fmt.Errorf("state: %q (running, stopped, present or absent)", s.state)
	}
	if s.state != "absent" && s.image == "" {
		return s, errors.New("image: required unless state is absent")
	}
	return s, nil
}

// instanceSteps decides what to do to bring the instance to the wanted state.
func instanceSteps(s instanceSpec, exists bool, cur *api.Instance) []step {
	state := func(action string) step {
		return step{action + " " + s.name, func(ctx context.Context, cl *api.Client) error {
			return cl.SetInstanceState(ctx, s.name, api.InstanceStatePut{Action: action})
		}}
	}
	switch {
	case s.state == "absent" && exists:
		return []step{{"delete " + s.name, func(ctx context.Context, cl *api.Client) error {
			return cl.DeleteInstance(ctx, s.name, true)
		}}}
	case s.state == "absent":
		return nil
	case !exists:
		return []step{{fmt.Sprintf("launch %s from %s", s.name, s.image), func(ctx context.Context, cl *api.Client) error {
			_, err := cl.Launch(ctx, api.InstancesPost{Name: s.name, Source: s.image, Profiles: s.profiles, NoStart: s.state != "running"}, s.target)
			return err
		}}}
	case s.state == "running" && cur.Status != api.InstanceRunning:
		return []step{state("start")}
	case s.state == "stopped" && cur.Status == api.InstanceRunning:
		return []step{state("stop")}
	}
	return nil
}
