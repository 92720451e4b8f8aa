package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirPoolAndVolumes(t *testing.T) {
	dir := t.TempDir()
	d, err := New("dir", Pool{Name: "p1", AgentDir: dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "v1", nil); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "v1", nil); !errors.Is(err, ErrVolumeExists) {
		t.Fatalf("second create: %v, want ErrVolumeExists", err)
	}
	if err := d.CreateVolume(ctx, "../x", nil); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
	if !exists(filepath.Join(dir, "storage-pools/p1/custom/v1")) {
		t.Fatal("volume directory missing")
	}
	if err := d.DeleteVolume(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dir, "storage-pools/p1")) {
		t.Fatal("pool directory left behind")
	}
}

func TestDirPoolWithSourceKeepsTheSource(t *testing.T) {
	dir, src := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "user-file"), []byte("x"), 0o600)
	d, _ := New("dir", Pool{Name: "p", AgentDir: dir, Config: map[string]string{"source": src}}, Options{})
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "v", nil); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(src, "custom/v")) {
		t.Fatal("volume not in the source directory")
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(src, "user-file")) || exists(filepath.Join(src, "custom")) {
		t.Fatal("delete removed the user's file or left the pool's")
	}
}

func TestUnknownDriver(t *testing.T) {
	if _, err := New("ceph", Pool{Name: "p", AgentDir: t.TempDir()}, Options{}); !errors.Is(err, ErrUnknownDriver) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "500MB": 500e6, "2G": 2 << 30, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseSize("lots"); !errors.Is(err, ErrBadConfig) {
		t.Errorf("bad size: %v", err)
	}
}

// TestBtrfsOnLoopFile makes a real btrfs pool on a loop file, a subvolume, and deletes
// both, checking that no mount, loop device or file is left.
func TestBtrfsOnLoopFile(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"mkfs.btrfs", "btrfs", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install btrfs-progs and util-linux", tool)
		}
	}
	if err := kernelHas("btrfs"); err != nil {
		t.Skipf("%v", err)
	}
	dir := t.TempDir()
	p := Pool{Name: "bt", AgentDir: dir, Config: map[string]string{"size": "128MiB"}}
	t.Cleanup(func() { cleanupMount(t, p.MountPoint(), p.LoopFile()) })
	d, err := New("btrfs", p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if !mounted(p.MountPoint()) {
		t.Fatal("pool not mounted")
	}
	if err := d.Create(ctx); err != nil { // idempotent
		t.Fatalf("second Create: %v", err)
	}
	if err := d.CreateVolume(ctx, "v1", nil); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("btrfs", "subvolume", "list", p.MountPoint()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "custom/v1") {
		t.Fatalf("subvolume not listed: %s %v", out, err)
	}
	if err := d.DeleteVolume(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if mounted(p.MountPoint()) || exists(p.LoopFile()) || loopAttached(t, p.LoopFile()) {
		t.Fatal("mount, loop file or loop device left behind")
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount, loop devices)")
	}
}

// cleanupMount unmounts and detaches whatever a failed test left.
func cleanupMount(t *testing.T, mp, file string) {
	for i := 0; i < 4 && mounted(mp); i++ {
		_ = exec.Command("umount", "-l", mp).Run()
	}
	out, _ := exec.Command("losetup", "--noheadings", "--output", "NAME", "--associated", file).Output()
	for _, dev := range strings.Fields(string(out)) {
		_ = exec.Command("losetup", "--detach", dev).Run()
	}
}

func loopAttached(t *testing.T, file string) bool {
	out, _ := exec.Command("losetup", "--associated", file).Output()
	return strings.TrimSpace(string(out)) != ""
}
