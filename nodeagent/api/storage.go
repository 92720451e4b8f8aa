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
	Config map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
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
	_, err := c.Call(ctx, http.MethodGet, "/1.0/storage-pools", nil, &out, "")
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
	_, err := c.Call(ctx, http.MethodGet, poolPath(pool)+"/volumes", nil, &out, "")
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
