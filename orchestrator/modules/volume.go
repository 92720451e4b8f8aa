package modules

import (
	"context"
	"fmt"

	"orch/nodeagent/api"
	"orch/playbooks"
)

// volumeSpec is a declared custom volume.
type volumeSpec struct {
	common
	pool, target string
	config       map[string]string
}

// volumeSteps creates a missing volume or deletes one declared absent.
func volumeSteps(s volumeSpec, exists bool) []step {
	switch {
	case s.state == "present" && !exists:
		return []step{{fmt.Sprintf("create volume %s/%s on %s", s.pool, s.name, orAny(s.target)), func(ctx context.Context, cl *api.Client) error {
			_, err := cl.CreateStorageVolume(ctx, s.pool, api.StorageVolumesPost{Name: s.name, Config: s.config}, s.target)
			return err
		}}}
	case s.state == "absent" && exists:
		return []step{{fmt.Sprintf("delete volume %s/%s on %s", s.pool, s.name, orAny(s.target)), func(ctx context.Context, cl *api.Client) error {
			return cl.DeleteStorageVolume(ctx, s.pool, s.name, s.target)
		}}}
	}
	return nil
}

func orAny(target string) string {
	if target == "" {
		return "the member answering"
	}
	return target
}

// storageVolume is the storage_volume module.
func (d Deps) storageVolume(ctx context.Context, t *playbooks.TaskContext) (playbooks.Result, error) {
	var s volumeSpec
	var err error
	if s.common, err = commonArgs(t.Args); err != nil {
		return playbooks.Result{}, err
	}
	if s.pool, err = t.Args.Required("pool"); err != nil {
		return playbooks.Result{}, err
	}
	if s.target, err = t.Args.String("target", ""); err != nil {
		return playbooks.Result{}, err
	}
	if s.config, err = stringMap(t.Args, "config"); err != nil {
		return playbooks.Result{}, err
	}
	cl, err := d.apiClient(s.via, s.fp)
	if err != nil {
		return playbooks.Result{}, err
	}
	defer cl.Close()
	_, err = cl.StorageVolume(ctx, s.pool, s.name, s.target)
	if err != nil && !isNotFound(err) {
		return playbooks.Result{}, fmt.Errorf("volume %s/%s: %w", s.pool, s.name, err)
	}
	return run(ctx, t, cl, "volume", s.pool+"/"+s.name, volumeSteps(s, err == nil))
}
