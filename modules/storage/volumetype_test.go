package storage

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestContainerAndCustomVolumesShareANameOnDir(t *testing.T) {
	dir := t.TempDir()
	d, err := New("dir", Pool{Name: "p1", AgentDir: dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTypedVolume(ctx, VolumeContainer, "c1", nil); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "c1", nil); err != nil {
		t.Fatalf("custom volume named like a container: %v", err)
	}
	if err := d.CreateTypedVolume(ctx, VolumeContainer, "c1", nil); !errors.Is(err, ErrVolumeExists) {
		t.Fatalf("second container volume c1: %v, want ErrVolumeExists", err)
	}
	if err := d.CreateTypedVolume(ctx, "image", "c2", nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("unknown type: %v, want ErrBadConfig", err)
	}
	if err := d.CreateTypedVolume(ctx, VolumeContainer, "../c", nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v, want ErrBadName", err)
	}
	p := Pool{Name: "p1", AgentDir: dir}
	if got := p.VolumePathOf(VolumeContainer, "c1"); got != filepath.Join(dir, "storage-pools/p1/containers/c1") || !exists(got) {
		t.Fatalf("container volume path %s", got)
	}
	if err := d.DeleteTypedVolume(ctx, VolumeContainer, "c1"); err != nil {
		t.Fatal(err)
	}
	if exists(p.VolumePathOf(VolumeContainer, "c1")) || !exists(p.VolumePath("c1")) {
		t.Fatal("deleting the container volume touched the wrong one")
	}
}

func TestContainerVolumeCommands(t *testing.T) {
	cases := []struct {
		driver string
		tools  []string
		fail   []string
		config map[string]string
		want   []string
	}{
		{"btrfs", []string{"btrfs", "mkfs.btrfs", "mount", "umount"}, nil, nil, []string{
			"btrfs subvolume create DIR/storage-pools/p/containers/c1",
		}},
		{"lvm", []string{"lvm", "losetup", "mkfs.ext4", "mount", "umount"}, nil, map[string]string{"lvm.vg_name": "vg0"}, []string{
			"lvm lvcreate -y --type thin --virtualsize 1073741824b --thinpool OrchThinPool --name containers_c1 vg0",
			"mkfs.ext4 -q /dev/vg0/containers_c1",
			"mount /dev/vg0/containers_c1 DIR/storage-pools/p/containers/c1",
			"lvm lvs --noheadings vg0/containers_c1",
			"lvm lvremove -y vg0/containers_c1",
		}},
		{"zfs", []string{"zfs", "zpool"}, nil, map[string]string{"zfs.pool_name": "tank"}, []string{
			"zfs create -p -o mountpoint=none tank/containers",
			"zfs create -o mountpoint=DIR/storage-pools/p/containers/c1 tank/containers/c1",
			"zfs list -H -o name tank/containers/c1",
			"zfs destroy -r tank/containers/c1",
		}},
	}
	for _, c := range cases {
		t.Run(c.driver, func(t *testing.T) {
			log := standIn(t, c.tools, c.fail, nil)
			dir := t.TempDir()
			d, err := New(c.driver, Pool{Name: "p", AgentDir: dir, Config: c.config}, Options{Kernel: noKernelCheck})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := d.CreateTypedVolume(ctx, VolumeContainer, "c1", nil); err != nil {
				t.Fatal(err)
			}
			if c.driver == "btrfs" { // the stand-in made no subvolume: delete finds nothing
				wantCalls(t, calls(t, log, dir), c.want)
				return
			}
			if err := d.DeleteTypedVolume(ctx, VolumeContainer, "c1"); err != nil {
				t.Fatal(err)
			}
			wantCalls(t, calls(t, log, dir), c.want)
		})
	}
}
