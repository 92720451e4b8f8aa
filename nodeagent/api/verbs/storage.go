package verbs

import (
	"context"
	"fmt"
	"strings"

	"orch/nodeagent/api"
	"orch/output"
)

// StorageCmd is `storage`: pools and their custom volumes, as `lxc storage`.
type StorageCmd struct {
	Create StorageCreateCmd `cmd:"" help:"Define a pool on a member (--target) or create it on every member."`
	List   StorageListCmd   `cmd:"" help:"List pools with their state and locations."`
	Show   StorageShowCmd   `cmd:"" help:"Show a pool (--target: that member's keys and state)."`
	Delete StorageDeleteCmd `cmd:"" help:"Delete a pool on every member."`
	Volume VolumeCmd        `cmd:"" help:"Manage custom volumes."`
}

// StorageCreateCmd is `storage create NAME DRIVER [key=value...] [--target MEMBER]`.
type StorageCreateCmd struct {
	Name        string   `arg:"" help:"Pool name."`
	Driver      string   `arg:"" help:"dir, btrfs, lvm or zfs."`
	Config      []string `arg:"" optional:"" help:"key=value settings (with --target: node-specific keys only)."`
	Target      string   `help:"Member to define the pool on (node-specific keys: source, size, zfs.pool_name, lvm.vg_name, lvm.thinpool_name)."`
	Description string   `help:"Description."`
}

// Run defines or creates the pool.
func (c *StorageCreateCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		cfg, err := clusterKeyValues(c.Config)
		if err != nil {
			return err
		}
		pool := api.StoragePool{Name: c.Name, Driver: c.Driver, Description: c.Description, Config: cfg}
		if err := cl.CreateStoragePool(ctx, pool, c.Target); err != nil {
			return err
		}
		if c.Target != "" {
			fmt.Fprintf(e.Stdout, "Storage pool %s pending on member %s\n", c.Name, c.Target)
		} else {
			fmt.Fprintf(e.Stdout, "Storage pool %s created\n", c.Name)
		}
		return nil
	})
}

// StorageListCmd is `storage list`.
type StorageListCmd struct {
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the pools.
func (c *StorageListCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := c.Format.Validate(); err != nil {
			return err
		}
		ps, err := cl.StoragePools(ctx)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, ps, func() ([]string, [][]string) { return output.StoragePoolTable(ps) })
	})
}

// StorageShowCmd is `storage show NAME [--target]`.
type StorageShowCmd struct {
	Name   string        `arg:""`
	Target string        `help:"Show this member's node-specific keys and state."`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows the pool.
func (c *StorageShowCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		p, err := cl.StoragePool(ctx, c.Name, c.Target)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, oneFormat(c.Format), p, nil)
	})
}

// StorageDeleteCmd is `storage delete NAME`.
type StorageDeleteCmd struct {
	Name string `arg:""`
}

// Run deletes the pool.
func (c *StorageDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.DeleteStoragePool(ctx, c.Name)
	})
}

// VolumeCmd is `storage volume`.
type VolumeCmd struct {
	Create VolumeCreateCmd `cmd:"" help:"Create a custom volume on a member (--target; default: this one)."`
	List   VolumeListCmd   `cmd:"" help:"List a pool's custom volumes with their NODE."`
	Show   VolumeShowCmd   `cmd:"" help:"Show a volume (--target when the name exists on several members)."`
	Delete VolumeDeleteCmd `cmd:"" help:"Delete a volume (--target when the name exists on several members)."`
}

// VolumeCreateCmd is `storage volume create POOL NAME [key=value...] [--target]`.
type VolumeCreateCmd struct {
	Pool   string   `arg:""`
	Name   string   `arg:""`
	Config []string `arg:"" optional:"" help:"key=value settings (e.g. size=1GiB)."`
	Target string   `help:"Member to create the volume on."`
}

// Run creates the volume.
func (c *VolumeCreateCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		cfg, err := clusterKeyValues(c.Config)
		if err != nil {
			return err
		}
		v, err := cl.CreateStorageVolume(ctx, c.Pool, api.StorageVolumesPost{Name: c.Name, Config: cfg}, c.Target)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.Stdout, "Storage volume %s created on %s\n", v.Name, v.Location)
		return nil
	})
}

// VolumeListCmd is `storage volume list POOL`.
type VolumeListCmd struct {
	Pool   string        `arg:""`
	Format output.Format `help:"table, json or yaml." default:"table"`
}

// Run lists the volumes.
func (c *VolumeListCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		if err := c.Format.Validate(); err != nil {
			return err
		}
		vs, err := cl.StorageVolumes(ctx, c.Pool)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, c.Format, vs, func() ([]string, [][]string) { return output.StorageVolumeTable(vs) })
	})
}

// VolumeShowCmd is `storage volume show POOL NAME [--target]`.
type VolumeShowCmd struct {
	Pool   string        `arg:""`
	Name   string        `arg:""`
	Target string        `help:"Member holding the volume."`
	Format output.Format `help:"yaml or json." default:"yaml"`
}

// Run shows the volume.
func (c *VolumeShowCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		v, err := cl.StorageVolume(ctx, c.Pool, c.Name, c.Target)
		if err != nil {
			return err
		}
		return output.Render(e.Stdout, oneFormat(c.Format), v, nil)
	})
}

// VolumeDeleteCmd is `storage volume delete POOL NAME [--target]`.
type VolumeDeleteCmd struct {
	Pool   string `arg:""`
	Name   string `arg:""`
	Target string `help:"Member holding the volume."`
}

// Run deletes the volume.
func (c *VolumeDeleteCmd) Run(e *Env) error {
	return e.with("", func(ctx context.Context, cl *api.Client) error {
		return cl.DeleteStorageVolume(ctx, c.Pool, c.Name, c.Target)
	})
}

// clusterKeyValues reads key=value arguments (none is fine).
func clusterKeyValues(args []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", a)
		}
		out[k] = v
	}
	return out, nil
}

// oneFormat makes "table" (meaningless for one object) mean yaml.
func oneFormat(f output.Format) output.Format {
	if f == output.FormatJSON {
		return f
	}
	return output.FormatYAML
}
