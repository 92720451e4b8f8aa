package api

import (
	"context"
	"net/http"
	"net/url"
)

// Statuses of a storage pool or network, as LXD shows them.
const (
	// StatusPending: defined (on some members, with --target) but not yet created.
	StatusPending = "Pending"
	// StatusCreated: created on every member.
	StatusCreated = "Created"
	// StatusErrored: the last create failed; Message says why.
	StatusErrored = "Errored"
)

// StoragePoolInfo is GET /1.0/storage-pools/{name}: the definition, its status and the
// members where it exists. With ?target=MEMBER, Config also holds that member's
// node-specific keys and Status is that member's.
type StoragePoolInfo struct {
	StoragePool `yaml:",inline"`
	// Status is Pending, Created or Errored.
	Status string `json:"status" yaml:"status"`
	// Locations are the members where the pool is defined or created.
	Locations []string `json:"locations" yaml:"locations"`
	// Message explains an Errored status.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// UsedBy lists the URLs of what uses the pool, as LXD's: its volumes (an instance's as the
	// instance) and the profiles that name it.
	UsedBy []string `json:"used_by" yaml:"used_by"`
}

// StoragePoolPut is the editable part of a pool (PUT/PATCH /1.0/storage-pools/NAME), as LXD's.
type StoragePoolPut struct {
	Description string            `json:"description" yaml:"description"`
	Config      map[string]string `json:"config" yaml:"config"`
}

// Writable is the editable part of p.
func (p StoragePoolInfo) Writable() StoragePoolPut {
	return StoragePoolPut{Description: p.Description, Config: p.Config}
}

// StorageVolume is one custom volume: it lives on one member of one pool.
type StorageVolume struct {
	// Name of the volume; the same name may exist on several members.
	Name string `json:"name" yaml:"name"`
	// Type is "custom" (the only type orch makes through this API).
	Type string `json:"type" yaml:"type"`
	// Pool is the storage pool the volume lives in.
	Pool string `json:"pool" yaml:"pool"`
	// Location is the member holding the volume (the NODE column).
	Location string `json:"location" yaml:"location"`
	// Description is free text.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Config are the volume's keys (e.g. size).
	Config map[string]string `json:"config" yaml:"config"`
	// UsedBy lists the URLs of instances using the volume, as LXD's (not tracked: []).
	UsedBy []string `json:"used_by" yaml:"used_by"`
	// ContentType is "filesystem" (block volumes are not supported).
	ContentType string `json:"content_type" yaml:"content_type"`
	// Project is always "default".
	Project string `json:"project" yaml:"project"`
}

// StorageVolumePut is the editable part of a volume (PUT/PATCH), as LXD's.
type StorageVolumePut struct {
	Description string            `json:"description" yaml:"description"`
	Config      map[string]string `json:"config" yaml:"config"`
}

// Writable is the editable part of v.
func (v StorageVolume) Writable() StorageVolumePut {
	return StorageVolumePut{Description: v.Description, Config: v.Config}
}

// StorageVolumeSource is where a new volume's content comes from, as LXD's body carries
// it; only an empty source (a new empty volume) is supported.
type StorageVolumeSource struct {
	Name        string            `json:"name,omitempty" yaml:"name,omitempty"`
	Type        string            `json:"type,omitempty" yaml:"type,omitempty"`
	Pool        string            `json:"pool,omitempty" yaml:"pool,omitempty"`
	Certificate string            `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	Location    string            `json:"location,omitempty" yaml:"location,omitempty"`
	Mode        string            `json:"mode,omitempty" yaml:"mode,omitempty"`
	Operation   string            `json:"operation,omitempty" yaml:"operation,omitempty"`
	Secrets     map[string]string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	VolumeOnly  bool              `json:"volume_only,omitempty" yaml:"volume_only,omitempty"`
	Refresh     bool              `json:"refresh,omitempty" yaml:"refresh,omitempty"`
	Project     string            `json:"project,omitempty" yaml:"project,omitempty"`
}

// Empty reports whether the source names nothing (a new empty volume).
func (s StorageVolumeSource) Empty() bool {
	return s.Name == "" && s.Type == "" && s.Pool == "" && s.Certificate == "" && s.Location == "" &&
		s.Mode == "" && s.Operation == "" && len(s.Secrets) == 0 && !s.VolumeOnly && !s.Refresh && s.Project == ""
}

// StorageVolumesPost is the body of POST /1.0/storage-pools/{pool}/volumes[?target=MEMBER].
type StorageVolumesPost struct {
	// Name of the new volume.
	Name string `json:"name" yaml:"name"`
	// Type must be "custom" or empty.
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// Description is free text.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Config are the volume's keys (e.g. size).
	Config map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
	// ContentType is "filesystem" or empty (LXD's field; block volumes are refused).
	ContentType string `json:"content_type,omitempty" yaml:"content_type,omitempty"`
	// Source must be empty (LXD's field: copies and migrations are not supported).
	Source *StorageVolumeSource `json:"source,omitempty" yaml:"source,omitempty"`
}

func withTarget(path, target string) string {
	if target != "" {
		return path + "?target=" + url.QueryEscape(target)
	}
	return path
}

func poolPath(name string) string { return "/1.0/storage-pools/" + url.PathEscape(name) }

func volumePath(pool, name string) string {
	return poolPath(pool) + "/volumes/custom/" + url.PathEscape(name)
}

// CreateStoragePool defines a pool on target (node-specific keys only; the pool stays
// Pending) or, with target "", creates it on every member.
func (c *Client) CreateStoragePool(ctx context.Context, pool StoragePool, target string) error {
	_, err := c.Call(ctx, http.MethodPost, withTarget("/1.0/storage-pools", target), pool, nil, "")
	return err
}

// StoragePools lists the cluster's pools with status and locations.
func (c *Client) StoragePools(ctx context.Context) ([]StoragePoolInfo, error) {
	var out []StoragePoolInfo
	_, err := c.Call(ctx, http.MethodGet, "/1.0/storage-pools?recursion=1", nil, &out, "")
	return out, err
}

// StoragePool returns one pool; target shows that member's keys and status.
func (c *Client) StoragePool(ctx context.Context, name, target string) (*StoragePoolInfo, error) {
	var out StoragePoolInfo
	_, err := c.Call(ctx, http.MethodGet, withTarget(poolPath(name), target), nil, &out, "")
	return &out, err
}

// DeleteStoragePool deletes a pool on every member.
func (c *Client) DeleteStoragePool(ctx context.Context, name string) error {
	_, err := c.Call(ctx, http.MethodDelete, poolPath(name), nil, nil, "")
	return err
}

// CreateStorageVolume creates a custom volume on target ("" : the member answering).
func (c *Client) CreateStorageVolume(ctx context.Context, pool string, vol StorageVolumesPost, target string) (*StorageVolume, error) {
	var out StorageVolume
	_, err := c.Call(ctx, http.MethodPost, withTarget(poolPath(pool)+"/volumes/custom", target), vol, &out, "")
	return &out, err
}

// StorageVolumes lists a pool's custom volumes on every member.
func (c *Client) StorageVolumes(ctx context.Context, pool string) ([]StorageVolume, error) {
	var out []StorageVolume
	_, err := c.Call(ctx, http.MethodGet, poolPath(pool)+"/volumes/custom?recursion=1", nil, &out, "")
	return out, err
}

// StorageVolume returns one volume; target is required when the name exists on several members.
func (c *Client) StorageVolume(ctx context.Context, pool, name, target string) (*StorageVolume, error) {
	var out StorageVolume
	_, err := c.Call(ctx, http.MethodGet, withTarget(volumePath(pool, name), target), nil, &out, "")
	return &out, err
}

// DeleteStorageVolume deletes a volume; target is required when the name exists on several members.
func (c *Client) DeleteStorageVolume(ctx context.Context, pool, name, target string) error {
	_, err := c.Call(ctx, http.MethodDelete, withTarget(volumePath(pool, name), target), nil, nil, "")
	return err
}
