package storage

import (
	"fmt"
	"path/filepath"
)

// VolumeType is what a volume holds, as LXD types them: custom volumes hold users' data,
// container volumes hold one instance's root filesystem. Each type has its own folder of
// the pool (custom/, containers/), LV prefix (custom_, containers_) or dataset parent, so a
// custom volume and a container may share a name.
type VolumeType string

// The volume types.
const (
	// VolumeCustom is a user's volume (`storage volume create`).
	VolumeCustom VolumeType = "custom"
	// VolumeContainer is an instance's root filesystem, made at launch and removed with
	// the instance.
	VolumeContainer VolumeType = "container"
)

// folder is the type's folder under the mount point, its LV prefix and dataset parent.
func (t VolumeType) folder() (string, error) {
	switch t {
	case VolumeCustom:
		return "custom", nil
	case VolumeContainer:
		return "containers", nil
	}
	return "", fmt.Errorf("%w: volume type %q (custom or container)", ErrBadConfig, t)
}

// VolumePathOf is where a volume of type typ is reachable: MOUNTPOINT/custom/NAME or
// MOUNTPOINT/containers/NAME ("" for an unknown type).
func (p Pool) VolumePathOf(typ VolumeType, name string) string {
	f, err := typ.folder()
	if err != nil {
		return ""
	}
	return filepath.Join(p.MountPoint(), f, name)
}

// checkVolume refuses an unknown type or a bad name, and returns the type's folder.
func checkVolume(typ VolumeType, name string) (string, error) {
	f, err := typ.folder()
	if err != nil {
		return "", err
	}
	return f, CheckName("volume", name)
}
