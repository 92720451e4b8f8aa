package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// standIn puts recording stand-ins for tools on PATH (and nothing else): each appends its
// name and arguments to the returned log and exits with the status the probe table gives
// ("lvm vgs" → 5 means "not found"), printing stdout[name] if set.
func standIn(t *testing.T, tools []string, fail []string, stdout map[string]string) string {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls.log")
	for _, tool := range tools {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + log + "\n"
		for _, f := range fail {
			if w := strings.Fields(f); w[0] == tool {
				script += "case \"$1\" in " + w[1] + ") exit 5;; esac\n"
			}
		}
		if s := stdout[tool]; s != "" {
			script += "echo " + s + "\n"
		}
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script+"exit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	return log
}

func calls(t *testing.T, log, agentDir string) []string {
	b, _ := os.ReadFile(log)
	s := strings.ReplaceAll(strings.TrimSpace(string(b)), agentDir, "DIR")
	return strings.Split(s, "\n")
}

func noKernelCheck(string) error { return nil }

func wantCalls(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands run:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestLVMCommands(t *testing.T) {
	log := standIn(t, []string{"lvm", "losetup", "mkfs.ext4", "mount", "umount"},
		[]string{"lvm vgs", "lvm lvs", "losetup --noheadings"}, map[string]string{"losetup": "/dev/loop9"})
	dir := t.TempDir()
	p := Pool{Name: "lv", AgentDir: dir, Config: map[string]string{"size": "64MiB"}}
	d, err := New("lvm", p, Options{Kernel: noKernelCheck})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "v1", map[string]string{"size": "10MiB"}); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, calls(t, log, dir), []string{
		"lvm vgs --noheadings lv",
		"losetup --noheadings --output NAME --associated DIR/disks/lv.img",
		"losetup --find --show DIR/disks/lv.img",
		"lvm pvcreate -y /dev/loop9",
		"lvm vgcreate lv /dev/loop9",
		"lvm lvs --noheadings lv/OrchThinPool",
		"lvm lvcreate -y --type thin-pool --extents 100%FREE --name OrchThinPool lv",
		"lvm lvcreate -y --type thin --virtualsize 10485760b --thinpool OrchThinPool --name custom_v1 lv",
		"mkfs.ext4 -q /dev/lv/custom_v1",
		"mount /dev/lv/custom_v1 DIR/storage-pools/lv/custom/v1",
	})
	if st, err := os.Stat(p.LoopFile()); err != nil || st.Size() != 64<<20 {
		t.Fatalf("loop file: %v %v", st, err)
	}
}

func TestLVMDeleteCommands(t *testing.T) {
	log := standIn(t, []string{"lvm", "losetup", "mkfs.ext4", "mount", "umount"}, nil, map[string]string{"losetup": "/dev/loop9"})
	dir := t.TempDir()
	d, err := New("lvm", Pool{Name: "lv", AgentDir: dir, Config: map[string]string{"lvm.vg_name": "vg0", "lvm.thinpool_name": "tp"}}, Options{Kernel: noKernelCheck})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.DeleteVolume(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, calls(t, log, dir), []string{
		"lvm lvs --noheadings vg0/custom_v1",
		"lvm lvremove -y vg0/custom_v1",
		"lvm vgs --noheadings vg0",
		"lvm vgremove -y vg0",
		"losetup --noheadings --output NAME --associated DIR/disks/lv.img",
		"lvm pvremove -y /dev/loop9",
		"losetup --detach /dev/loop9",
	})
}

func TestZFSCommands(t *testing.T) {
	log := standIn(t, []string{"zfs", "zpool"}, []string{"zfs list"}, nil)
	dir := t.TempDir()
	p := Pool{Name: "zp", AgentDir: dir, Config: map[string]string{"zfs.pool_name": "tank", "size": "64MiB"}}
	d, err := New("zfs", p, Options{Kernel: noKernelCheck})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "v1", map[string]string{"size": "1GiB"}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteVolume(ctx, "v1"); err != nil { // "zfs list" fails: already gone
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, calls(t, log, dir), []string{
		"zfs list -H -o name tank",
		"zpool create -f -m none -O compression=on tank DIR/disks/zp.img",
		"zfs create -p -o mountpoint=none tank/custom",
		"zfs create -o mountpoint=DIR/storage-pools/zp/custom/v1 -o quota=1073741824 tank/custom/v1",
		"zfs list -H -o name tank/custom/v1",
		"zpool list -H tank",
		"zpool destroy -f tank",
	})
	if exists(p.LoopFile()) || exists(p.MountPoint()) {
		t.Fatal("loop file or mount point left behind")
	}
}

// TestZFSFailedCreateLeavesNothing: a zpool create that fails removes the loop file.
func TestZFSFailedCreateLeavesNothing(t *testing.T) {
	standIn(t, []string{"zfs", "zpool"}, []string{"zfs list", "zpool create"}, nil)
	dir := t.TempDir()
	p := Pool{Name: "zp", AgentDir: dir}
	d, _ := New("zfs", p, Options{Kernel: noKernelCheck})
	err := d.Create(context.Background())
	if err == nil || !strings.Contains(err.Error(), "zpool create -f -m none") {
		t.Fatalf("err = %v, want the failed zpool command", err)
	}
	if exists(p.LoopFile()) {
		t.Fatal("loop file left behind")
	}
}

func TestMissingToolsNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for driver, want := range map[string]string{"lvm": "install lvm2", "zfs": "install zfsutils-linux", "btrfs": "install btrfs-progs"} {
		_, err := New(driver, Pool{Name: "p", AgentDir: t.TempDir()}, Options{Kernel: noKernelCheck})
		if !errors.Is(err, ErrMissingTool) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrMissingTool saying %q", driver, err, want)
		}
	}
}

// TestMissingKernelSupport runs the real kernel check where this kernel lacks the feature
// (here: device-mapper and zfs) and a refusing check elsewhere.
func TestMissingKernelSupport(t *testing.T) {
	standIn(t, []string{"lvm", "losetup", "mkfs.ext4", "mount", "umount", "zfs", "zpool"}, nil, nil)
	for driver, feature := range map[string]string{"lvm": "device-mapper", "zfs": "zfs"} {
		check := func(f string) error {
			if err := kernelHas(f); err != nil {
				return err
			}
			return kernelHasNot(f)
		}
		_, err := New(driver, Pool{Name: "p", AgentDir: t.TempDir()}, Options{Kernel: check})
		if !errors.Is(err, ErrNoKernelSupport) || !strings.Contains(err.Error(), feature) {
			t.Errorf("%s: err = %v, want ErrNoKernelSupport naming %s", driver, err, feature)
		}
	}
}

func kernelHasNot(f string) error {
	return errors.Join(ErrNoKernelSupport, errors.New("test: no "+f))
}

// TestRealLVMAndZFS skips naming what this machine lacks; elsewhere it would exercise the
// drivers for real.
func TestRealLVMAndZFS(t *testing.T) {
	requireRoot(t)
	for _, f := range []string{"device-mapper", "zfs"} {
		if err := kernelHas(f); err != nil {
			t.Skipf("real lvm/zfs pools: %v", err)
		}
	}
	for _, driver := range []string{"lvm", "zfs"} {
		p := Pool{Name: "orchtest" + driver, AgentDir: t.TempDir(), Config: map[string]string{"size": "256MiB"}}
		d, err := New(driver, p, Options{})
		if err != nil {
			t.Skipf("%s: %v", driver, err)
		}
		ctx := context.Background()
		t.Cleanup(func() { _ = d.Delete(ctx) })
		if err := d.Create(ctx); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		if err := d.CreateVolume(ctx, "v", nil); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		if err := d.DeleteVolume(ctx, "v"); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
		if err := d.Delete(ctx); err != nil {
			t.Fatalf("%s: %v", driver, err)
		}
	}
}

// TestLVMFailedVolumeRemovesTheLV: when mkfs fails the new thin LV is removed again.
func TestLVMFailedVolumeRemovesTheLV(t *testing.T) {
	log := standIn(t, []string{"lvm", "losetup", "mkfs.ext4", "mount", "umount"}, []string{"mkfs.ext4 -q"}, nil)
	dir := t.TempDir()
	d, _ := New("lvm", Pool{Name: "lv", AgentDir: dir}, Options{Kernel: noKernelCheck})
	if err := d.CreateVolume(context.Background(), "v1", nil); err == nil || !strings.Contains(err.Error(), "mkfs.ext4 -q /dev/lv/custom_v1") {
		t.Fatalf("err = %v", err)
	}
	wantCalls(t, calls(t, log, dir), []string{
		"lvm lvcreate -y --type thin --virtualsize 1073741824b --thinpool OrchThinPool --name custom_v1 lv",
		"mkfs.ext4 -q /dev/lv/custom_v1",
		"lvm lvremove -y lv/custom_v1",
	})
}
